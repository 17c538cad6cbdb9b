"""Crawling a static STAC catalog lazily, pruning what lies outside the AOI and time window.

Static catalogs are crawled breadth first, a level at a time (documents of one level are read
concurrently). Nothing outside the AOI/time window is opened when the catalog says where it is:

- a Collection whose ``extent`` misses the AOI or window is not descended into
  (Maxar: ``events/<event>/collection.json`` and its per-acquisition
  ``ard/acquisition_collections/<catalog_id>_collection.json``);
- a link whose path below the root has a date folder (``YYYY``, ``YYYY-MM``,
  ``YYYY-MM-DD``) outside the window is not followed (Umbra
  ``stac/YYYY/YYYY-MM/YYYY-MM-DD/<uuid>/<uuid>.json``, Maxar
  ``ard/<zone>/<quadkey>/<YYYY-MM-DD>/<catalog_id>.json``).

A document read over http(s)/s3 may only link (children, items, assets) to http(s)/s3
resources (:mod:`stac.links`): a catalog that links to a local path or ``file://`` URL stops
the crawl with :class:`stac.links.UntrustedLink`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from core.errors import CatalogError
from stac.aoi import BBox
from stac.licenses import SourceLicense, document_license
from stac.links import UntrustedLink, trusted_link
from stac.readers.documents import load_json, parse_datetime
from stac.readers.items import scene_from_item
from stac.scene import Scene

log = logging.getLogger(__name__)

# a day either side: folder dates are UTC calendar days, item times may sit at either end
_DATE_SLACK = dt.timedelta(days=1)
_DATE_DIR = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


@dataclass
class CrawlStats:
    """What a crawl opened, skipped and could not read (for logs, the CLI and tests)."""

    opened: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """The AOI (WGS84) and time window a crawl keeps; None: unbounded."""

    aoi: BaseGeometry | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def holds(self, scene: Scene) -> bool:
        """Whether ``scene`` meets the AOI and was acquired within the window."""
        if self.aoi is not None and not scene.footprint.intersects(self.aoi):
            return False
        return (self.start is None or scene.datetime >= self.start) and (
            self.end is None or scene.datetime <= self.end
        )

    def misses_span(self, span: tuple[dt.datetime, dt.datetime] | None) -> bool:
        """Whether the time span ``span`` lies wholly outside the window."""
        return span is not None and (
            (self.end is not None and span[0] > self.end)
            or (self.start is not None and span[1] < self.start)
        )


def _bbox_geometry(b: list[float]) -> BaseGeometry:
    minx, miny, maxx, maxy = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b[:4]
    if minx > maxx:  # crosses the antimeridian
        return box(minx, miny, 180.0, maxy).union(box(-180.0, miny, maxx, maxy))
    return box(minx, miny, maxx, maxy)


def _extent_matches(doc: dict[str, Any], window: Window) -> bool:
    """Whether a Collection's extent (first bbox/interval: the overall extent) meets the AOI and
    window; ``True`` when the extent is malformed (it cannot rule the Collection out)."""
    try:
        return _extent_meets(doc.get("extent") or {}, window)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        return True


def _extent_meets(extent: dict[str, Any], window: Window) -> bool:
    boxes = (extent.get("spatial") or {}).get("bbox") or []
    if (
        window.aoi is not None
        and boxes
        and len(boxes[0]) in (4, 6)
        and not _bbox_geometry(boxes[0]).intersects(window.aoi)
    ):
        return False
    intervals = (extent.get("temporal") or {}).get("interval") or []
    start, end = window.start, window.end
    if intervals and (start or end):
        lo, hi = (parse_datetime(v) for v in intervals[0])
        if (end and lo and lo > end) or (start and hi and hi < start):
            return False
    return True


def _posix_path(href: str) -> str:
    parsed = urlparse(href)
    return parsed.path if parsed.scheme else os.path.abspath(href).replace(os.sep, "/")


def _date_span(y: int, mo: int, d: int) -> tuple[dt.datetime, dt.datetime]:
    """The span of a day, a month (``d == 0``) or a year (``mo == 0``); ValueError if no date."""
    if d:
        lo = dt.datetime(y, mo, d, tzinfo=dt.UTC)
        return lo, lo + dt.timedelta(days=1)
    if mo:
        lo = dt.datetime(y, mo, 1, tzinfo=dt.UTC)
        return lo, dt.datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=dt.UTC)
    return dt.datetime(y, 1, 1, tzinfo=dt.UTC), dt.datetime(y + 1, 1, 1, tzinfo=dt.UTC)


def _path_dates(root: str, href: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The time span named by the deepest date folder of ``href`` below the root's folder."""
    root_dir = posixpath.dirname(_posix_path(root))
    path = _posix_path(href)
    if not path.startswith(root_dir + "/"):
        return None
    for part in reversed(path[len(root_dir) + 1 :].split("/")[:-1]):
        m = _DATE_DIR.match(part)
        if not m:
            continue
        try:
            lo, hi = _date_span(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))
        except ValueError:  # "2023-13" is not a date folder
            continue
        return lo - _DATE_SLACK, hi + _DATE_SLACK
    return None


def _aoi(bbox: BBox | BaseGeometry | None) -> BaseGeometry | None:
    """The AOI as a geometry (a bbox crossing the antimeridian as two boxes)."""
    if bbox is None or isinstance(bbox, BaseGeometry):
        return bbox
    return _bbox_geometry(list(bbox))


def _child_links(doc: dict[str, Any], href: str) -> list[str]:
    """The resolved ``child`` and ``item`` links of a Catalog or Collection read from ``href``.

    Raises:
        CatalogError: ``links`` is not an array of link objects.
        UntrustedLink: A remote document links to a local file (:func:`stac.links.trusted_link`).
    """
    links = doc.get("links") or []
    if not isinstance(links, list) or not all(isinstance(x, dict) for x in links):
        raise CatalogError(
            f"STAC document {href} is malformed: links must be an array of link objects, "
            f"got {str(links)[:100]!r}"
        )
    return [
        trusted_link(href, link["href"], f"{link['rel']} link")
        for link in links
        if link.get("rel") in ("child", "item") and link.get("href")
    ]


@dataclass
class _Crawl:
    """The state of one crawl: what it keeps, what it has seen, what it records."""

    root: str
    window: Window
    strict: bool
    stats: CrawlStats
    seen: set[str]
    licenses: dict[str, SourceLicense] = field(default_factory=dict)

    def tolerate(self, exc: CatalogError, href: str) -> None:
        """Record a child document that cannot be used and go on; raise for the root, in strict
        mode, and for a refused link (a catalog that reaches for local files is not crawled on)."""
        if self.strict or href == self.root or isinstance(exc, UntrustedLink):
            raise exc
        log.warning("skipping %s", exc)
        self.stats.errors.append(str(exc))

    def read(self, href: str, fut: Future[dict[str, Any]]) -> dict[str, Any] | None:
        """The document ``fut`` read from ``href``; None (recorded) when it cannot be read."""
        try:
            doc = fut.result()
        except CatalogError as exc:
            self.tolerate(exc, href)
            return None
        self.stats.opened.append(href)
        return doc

    def next_links(self, doc: dict[str, Any], href: str) -> list[str]:
        """The links of a Catalog or Collection to follow: new, and not outside the window."""
        kind = doc.get("type")
        if kind == "Collection" and href != self.root and not _extent_matches(doc, self.window):
            self.stats.pruned.append(href)
            return []
        try:
            if kind not in ("Catalog", "Collection"):
                raise CatalogError(
                    f"{href} is not a STAC Catalog, Collection or Item (type {kind!r})"
                )
            targets = _child_links(doc, href)
        except CatalogError as exc:
            self.tolerate(exc, href)
            return []
        out = []
        lic = self.licenses.get(href)
        if kind == "Collection":  # its Items and children inherit its license
            lic = document_license(doc, href, lic)
        for target in targets:
            if target in self.seen:
                continue
            self.seen.add(target)
            if lic is not None:
                self.licenses[target] = lic
            if self.window.misses_span(_path_dates(self.root, target)):
                self.stats.pruned.append(target)
                continue
            out.append(target)
        return out


def crawl_static(
    root: str,
    bbox: BBox | BaseGeometry | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    max_documents: int = 20_000,
    workers: int = 8,
    stats: CrawlStats | None = None,
    strict: bool = False,
) -> Iterator[Scene]:
    """Scenes of a static catalog (STAC Catalog/Collection/Item spec 1.x) within an AOI and window.

    Follows ``child`` and ``item`` links breadth first; see the module docstring for
    what is pruned. ``root`` may also be a single Item (an Umbra sidecar). A child
    that cannot be read is logged and skipped (recorded in ``stats.errors``) unless
    ``strict``; the root itself must be readable.
    """
    stats = stats if stats is not None else CrawlStats()
    crawl = _Crawl(root, Window(_aoi(bbox), start, end), strict, stats, {root})
    level = [root]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while level:
            if len(stats.opened) + len(level) > max_documents:
                raise CatalogError(
                    f"crawling {root} would open more than {max_documents} documents: "
                    "narrow the AOI or time window, or point --catalog at the event's collection"
                )
            futures = [(href, pool.submit(load_json, href)) for href in level]
            nxt: list[str] = []
            for href, fut in futures:
                doc = crawl.read(href, fut)
                if doc is None:
                    continue
                if doc.get("type") == "Feature":
                    scene = scene_from_item(doc, href, inherited=crawl.licenses.get(href))
                    if scene and crawl.window.holds(scene):
                        yield scene
                    continue
                nxt += crawl.next_links(doc, href)
            level = nxt
    log.info(
        "crawled %s: %d documents opened, %d pruned, %d unreadable",
        root,
        len(stats.opened),
        len(stats.pruned),
        len(stats.errors),
    )
