"""Scene discovery: static STAC catalogs (Maxar Open Data, Umbra Open Data) and STAC APIs.

Everything is normalised into :class:`stac.scene.Scene` (STAC Item spec 1.x
fields plus the ``view``, ``proj`` and ``sar`` extensions).

Static catalogs are crawled lazily, breadth first, a level at a time (documents of
one level are read concurrently). Nothing outside the AOI/time window is opened
when the catalog says where it is:

- a Collection whose ``extent`` misses the AOI or window is not descended into
  (Maxar: ``events/<event>/collection.json`` and its per-acquisition
  ``ard/acquisition_collections/<catalog_id>_collection.json``);
- a link whose path below the root has a date folder (``YYYY``, ``YYYY-MM``,
  ``YYYY-MM-DD``) outside the window is not followed (Umbra
  ``stac/YYYY/YYYY-MM/YYYY-MM-DD/<uuid>/<uuid>.json``, Maxar
  ``ard/<zone>/<quadkey>/<YYYY-MM-DD>/<catalog_id>.json``).

Umbra's per-product ``*.stac.v2.json`` sidecars name files of a private bucket;
their hrefs are rewritten to the public ``sar-data/tasks/...`` copies.

A document read over http(s)/s3 may only link (children, items, assets) to http(s)/s3
resources (:mod:`stac.links`): a catalog that links to a local path or ``file://`` URL stops
the crawl with :class:`stac.links.UntrustedLink`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from core.errors import CatalogError
from stac.aoi import BBox
from stac.fetch import http_url
from stac.links import UntrustedLink, resolve, trusted_link
from stac.scene import Scene

log = logging.getLogger(__name__)

# Umbra's v2 sidecars point at this private bucket; the same files are public under sar-data/tasks/
UMBRA_PRIVATE_BUCKETS = ("prod-prod-processed-sar-data",)
UMBRA_PUBLIC_TASKS = "s3://umbra-open-data-catalog/sar-data/tasks/"
GEOTIFF = "image/tiff"
# a day either side: folder dates are UTC calendar days, item times may sit at either end
_DATE_SLACK = dt.timedelta(days=1)
_DATE_DIR = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
_local = threading.local()


@dataclass
class CrawlStats:
    """What a crawl opened, skipped and could not read (for logs, the CLI and tests)."""

    opened: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _session() -> requests.Session:
    # one keep-alive session per worker thread (requests sessions are not thread-safe)
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def http_status(r: requests.Response) -> str:
    """``HTTP <code> <reason>`` of a response, one line (the body is left out)."""
    return f"HTTP {r.status_code} {r.reason or ''}".strip()


def load_json(href: str, retries: int = 3, backoff: float = 0.5) -> dict[str, Any]:
    """A JSON object from a path, ``file://``, ``http(s)://`` or public ``s3://`` URL.

    Connection errors and HTTP 5xx/429 are retried with exponential backoff;
    other HTTP errors fail at once. A document that is not a JSON object (an array,
    a number) is a :class:`CatalogError`.
    """
    doc = _load_json(href, retries, backoff)
    if not isinstance(doc, dict):
        raise CatalogError(
            f"STAC document {href} is malformed: a JSON {type(doc).__name__} instead of an "
            "object (a Catalog, Collection or Item)"
        )
    return doc


def _load_json(href: str, retries: int, backoff: float) -> Any:
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https", "s3"):
        url = http_url(href)
        for attempt in range(retries):
            try:
                r = _session().get(url, timeout=30)
                if r.status_code >= 500 or r.status_code == 429:
                    raise requests.ConnectionError(http_status(r))
                if r.status_code != 200:
                    raise CatalogError(f"cannot read STAC document {href}: {http_status(r)}")
                try:
                    return r.json()
                except ValueError as exc:
                    raise CatalogError(f"STAC document {href} is not valid JSON ({exc})") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == retries - 1:
                    raise CatalogError(
                        f"cannot reach STAC document {href} after {retries} attempts: {exc}"
                    ) from exc
                time.sleep(backoff * 2**attempt)
    path = unquote(parsed.path) if parsed.scheme == "file" else href
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CatalogError(f"STAC document not found: {href}") from None
    except IsADirectoryError:
        raise CatalogError(
            f"{href} is a folder: give the catalog.json/collection.json/item JSON inside it"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"STAC document {href} is not valid JSON ({exc})") from exc


def parse_datetime(value: str | None) -> dt.datetime | None:
    """An aware datetime from an RFC 3339 string (``Z`` allowed); ``None`` for empty/open values."""
    if not value or value == "..":
        return None
    d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


def _crs(d: dict[str, Any]) -> str | None:
    if d.get("proj:code"):
        return str(d["proj:code"])
    if d.get("proj:epsg"):
        return f"EPSG:{d['proj:epsg']}"
    return None


def _is_geotiff(asset: dict[str, Any], key: str) -> bool:
    return (
        GEOTIFF in asset.get("type", "")
        or key.lower().endswith((".tif", ".tiff"))
        or asset.get("href", "").lower().endswith((".tif", ".tiff"))
    )


def _sar_asset(assets: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The GEC image: ``asset-GEC`` (static catalog), else the v2 sidecar's ``*_GEC.tif`` or plain
    product TIFF (``*_MM.tif``, title TIFF) — not the CSI colour product, not NITF/CPHD/SICD."""
    if "asset-GEC" in assets:
        return "asset-GEC", assets["asset-GEC"]
    for key, a in assets.items():
        if key.upper().endswith("_GEC.TIF") or str(a.get("title", "")).upper() == "GEC":
            return key, a
    for key, a in assets.items():
        if (
            _is_geotiff(a, key)
            and "data" in a.get("roles", ["data"])
            and "CSI" not in key.upper()
            and "CSI" not in str(a.get("title", "")).upper()
        ):
            return key, a
    return None


def _optical_asset(assets: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """Maxar's RGB ``visual`` COG, else the first data GeoTIFF."""
    if "visual" in assets:
        return "visual", assets["visual"]
    return next(
        ((k, a) for k, a in assets.items() if _is_geotiff(a, k) and "data" in a.get("roles", [])),
        None,
    )


def public_umbra_href(href: str, item_href: str, props: dict[str, Any]) -> str:
    """The public copy of a file an Umbra v2 sidecar names in the private processing bucket.

    Public products live in ``sar-data/tasks/<task name>/<task id>/<acquisition>/`` next to
    their ``<acquisition>.stac.v2.json`` sidecar, so a sidecar read from its public location
    resolves the file name against itself. Without that location (a copied sidecar) the
    task name is unknown and the result is a best guess under ``sar-data/tasks/<task id>/``
    (``COALIGN_UMBRA_PUBLIC_TASKS`` overrides the prefix).
    """
    p = urlparse(href)
    if p.scheme != "s3" or p.netloc not in UMBRA_PRIVATE_BUCKETS:
        return href
    name = posixpath.basename(p.path)
    if item_href and urlparse(item_href).netloc not in UMBRA_PRIVATE_BUCKETS:
        return resolve(item_href, name)
    prefix = os.environ.get("COALIGN_UMBRA_PUBLIC_TASKS", UMBRA_PUBLIC_TASKS).rstrip("/") + "/"
    acquisition = re.match(r"^(\d{4}(?:-\d{2}){5}_UMBRA-\d+)", name)
    parts = [str(props.get("umbra:task_id", "")), acquisition.group(1) if acquisition else "", name]
    log.warning(
        "Umbra sidecar without a public location: guessing %s for %s",
        prefix + "/".join(x for x in parts if x),
        href,
    )
    return prefix + "/".join(x for x in parts if x)


def _number(*values: Any) -> float | None:
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _malformed(item: dict[str, Any], item_href: str, what: str) -> CatalogError:
    return CatalogError(
        f"STAC item {str(item.get('id'))[:100]} ({item_href or 'no href'}) is malformed: {what}"
    )


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _item_parts(item: dict[str, Any], item_href: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``properties`` and ``assets`` of an Item, checked for the types this module reads."""
    parts = []
    for name in ("properties", "assets"):
        value = item.get(name)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise _malformed(item, item_href, f"{name} is {_json_type(value)}, not an object")
        parts.append(value)
    props, assets = parts
    for key, asset in assets.items():
        if not isinstance(asset, dict):
            raise _malformed(
                item, item_href, f"asset {key!r} is {_json_type(asset)}, not an object"
            )
        for field_name, kind in (("href", str), ("type", str), ("title", str), ("roles", list)):
            if asset.get(field_name) is not None and not isinstance(asset[field_name], kind):
                raise _malformed(
                    item,
                    item_href,
                    f"asset {key!r} {field_name} is {_json_type(asset[field_name])}",
                )
    if not isinstance(item.get("id"), (str, int)):
        raise _malformed(item, item_href, f"its id is {_json_type(item.get('id'))}")
    return props, assets


def _item_time(item: dict[str, Any], item_href: str, props: dict[str, Any]) -> dt.datetime:
    try:
        when = parse_datetime(props.get("datetime")) or parse_datetime(props.get("start_datetime"))
    except (ValueError, TypeError, AttributeError):
        raise _malformed(
            item,
            item_href,
            f"datetime {str(props.get('datetime'))[:50]!r} / start_datetime "
            f"{str(props.get('start_datetime'))[:50]!r} is not RFC 3339",
        ) from None
    if when is None:
        raise CatalogError(
            f"STAC item {item.get('id')} ({item_href or 'no href'}) has no datetime or "
            "start_datetime"
        )
    return when


def scene_from_item(item: dict[str, Any], item_href: str = "", source: str = "") -> Scene | None:
    """The optical or SAR scene a STAC Item describes; ``None`` when it has no image to read
    (no footprint, no image asset, or an empty href as in Umbra's metadata-only v1 items).

    Args:
        item: The Item (a JSON object).
        item_href: Where the Item was read: relative asset hrefs resolve against it, and an Item
            read over http(s)/s3 may only name http(s)/s3 assets (:func:`stac.links.trusted_link`).
        source: Where an Item without ``item_href`` came from (a STAC API URL), for that check.

    Raises:
        CatalogError: The Item is malformed, or it has no time.
        UntrustedLink: A remote Item names a local asset.
    """
    props, assets = _item_parts(item, item_href)
    is_sar = (
        any(str(k).startswith("sar:") for k in props)
        or "asset-GEC" in assets
        or props.get("constellation") == "umbra"
    )
    found = _sar_asset(assets) if is_sar else _optical_asset(assets)
    if found is None or not item.get("geometry") or not found[1].get("href"):
        log.debug(
            "STAC item %s (%s) has no readable image asset; skipped", item.get("id"), item_href
        )
        return None
    key, asset = found
    base = item_href or source
    href = trusted_link(base, asset["href"], f"asset {key!r}") if base else asset["href"]
    if is_sar:
        href = public_umbra_href(href, item_href, props)
    when = _item_time(item, item_href, props)
    try:
        footprint = shapely.force_2d(shape(item["geometry"]))  # Umbra footprints carry heights
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CatalogError(
            f"STAC item {item.get('id')} ({item_href or 'no href'}) has a bad geometry: {exc}"
        ) from None
    gsd = _number(props.get("gsd"), asset.get("gsd"))
    if gsd is None and is_sar:
        # no gsd in Umbra items: the coarser of the two resolutions stands in for it
        res = [
            v
            for v in (
                _number(props.get("sar:resolution_range")),
                _number(props.get("sar:resolution_azimuth")),
            )
            if v
        ]
        gsd = max(res) if res else None
    return Scene(
        id=str(item["id"]),
        sensor="sar" if is_sar else "optical",
        platform=props.get("platform"),
        datetime=when,
        footprint=footprint,
        href=href,
        crs=_crs(props) or _crs(asset),
        gsd=gsd,
        collection=item.get("collection"),
        item_href=item_href or None,
        view_off_nadir=_number(props.get("view:off_nadir"), asset.get("view:off_nadir")),
        view_incidence_angle=_number(
            props.get("view:incidence_angle"), asset.get("view:incidence_angle")
        ),
        view_azimuth=_number(props.get("view:azimuth"), asset.get("view:azimuth")),
        sar={k: v for k, v in props.items() if k.startswith("sar:")},
        checksum=asset.get("file:checksum"),
        properties={
            k: v
            for k, v in props.items()
            if not isinstance(v, (dict, list)) or k.startswith("sar:")
        },
        asset_key=key,
    )


def _bbox_geometry(b: list[float]) -> BaseGeometry:
    minx, miny, maxx, maxy = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b[:4]
    if minx > maxx:  # crosses the antimeridian
        return box(minx, miny, 180.0, maxy).union(box(-180.0, miny, maxx, maxy))
    return box(minx, miny, maxx, maxy)


def _extent_matches(
    doc: dict[str, Any],
    aoi: BaseGeometry | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> bool:
    """Whether a Collection's extent (first bbox/interval: the overall extent) meets the AOI and
    window; ``True`` when the extent is malformed (it cannot rule the Collection out)."""
    try:
        return _extent_meets(doc.get("extent") or {}, aoi, start, end)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        return True


def _extent_meets(
    extent: dict[str, Any],
    aoi: BaseGeometry | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> bool:
    boxes = (extent.get("spatial") or {}).get("bbox") or []
    if (
        aoi is not None
        and boxes
        and len(boxes[0]) in (4, 6)
        and not _bbox_geometry(boxes[0]).intersects(aoi)
    ):
        return False
    intervals = (extent.get("temporal") or {}).get("interval") or []
    if intervals and (start or end):
        lo, hi = (parse_datetime(v) for v in intervals[0])
        if (end and lo and lo > end) or (start and hi and hi < start):
            return False
    return True


def _path_dates(root: str, href: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The time span named by the deepest date folder of ``href`` below the root's folder."""
    root_dir = posixpath.dirname(
        urlparse(root).path if urlparse(root).scheme else os.path.abspath(root).replace(os.sep, "/")
    )
    path = (
        urlparse(href).path if urlparse(href).scheme else os.path.abspath(href).replace(os.sep, "/")
    )
    if not path.startswith(root_dir + "/"):
        return None
    for part in reversed(path[len(root_dir) + 1 :].split("/")[:-1]):
        m = _DATE_DIR.match(part)
        if not m:
            continue
        y, mo, d = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
        try:
            if d:
                lo = dt.datetime(y, mo, d, tzinfo=dt.UTC)
                hi = lo + dt.timedelta(days=1)
            elif mo:
                lo = dt.datetime(y, mo, 1, tzinfo=dt.UTC)
                hi = dt.datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=dt.UTC)
            else:
                lo, hi = (
                    dt.datetime(y, 1, 1, tzinfo=dt.UTC),
                    dt.datetime(y + 1, 1, 1, tzinfo=dt.UTC),
                )
        except ValueError:  # "2023-13" is not a date folder
            continue
        return lo - _DATE_SLACK, hi + _DATE_SLACK
    return None


def _outside_window(
    span: tuple[dt.datetime, dt.datetime] | None, start: dt.datetime | None, end: dt.datetime | None
) -> bool:
    return span is not None and (
        (end is not None and span[0] > end) or (start is not None and span[1] < start)
    )


def _item_matches(
    scene: Scene, aoi: BaseGeometry | None, start: dt.datetime | None, end: dt.datetime | None
) -> bool:
    if aoi is not None and not scene.footprint.intersects(aoi):
        return False
    return (start is None or scene.datetime >= start) and (end is None or scene.datetime <= end)


def _aoi(bbox: BBox | BaseGeometry | None) -> BaseGeometry | None:
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


def _tolerate(exc: CatalogError, href: str, root: str, strict: bool, stats: CrawlStats) -> None:
    """Record a child document that cannot be used and go on; raise for the root, in strict
    mode, and for a refused link (a catalog that reaches for local files is not crawled on)."""
    if strict or href == root or isinstance(exc, UntrustedLink):
        raise exc
    log.warning("skipping %s", exc)
    stats.errors.append(str(exc))


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
    aoi = _aoi(bbox)
    stats = stats if stats is not None else CrawlStats()
    seen: set[str] = {root}
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
                try:
                    doc = fut.result()
                except CatalogError as exc:
                    _tolerate(exc, href, root, strict, stats)
                    continue
                stats.opened.append(href)
                kind = doc.get("type")
                if kind == "Feature":
                    scene = scene_from_item(doc, href)
                    if scene and _item_matches(scene, aoi, start, end):
                        yield scene
                    continue
                if (
                    kind == "Collection"
                    and href != root
                    and not _extent_matches(doc, aoi, start, end)
                ):
                    stats.pruned.append(href)
                    continue
                try:
                    if kind not in ("Catalog", "Collection"):
                        raise CatalogError(
                            f"{href} is not a STAC Catalog, Collection or Item (type {kind!r})"
                        )
                    targets = _child_links(doc, href)
                except CatalogError as exc:
                    _tolerate(exc, href, root, strict, stats)
                    continue
                for target in targets:
                    if target in seen:
                        continue
                    seen.add(target)
                    if _outside_window(_path_dates(root, target), start, end):
                        stats.pruned.append(target)
                        continue
                    nxt.append(target)
            level = nxt
    log.info(
        "crawled %s: %d documents opened, %d pruned, %d unreadable",
        root,
        len(stats.opened),
        len(stats.pruned),
        len(stats.errors),
    )


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _self_href(item: Any, api: str) -> str:
    """An API Item's ``self`` link, checked against the API's origin; empty without one."""
    links = item.get("links") if isinstance(item, dict) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "self" and link.get("href"):
            return trusted_link(api, link["href"], "self link")
    return ""


def _api_error(exc: Exception) -> str:
    """One line for a pystac-client ``APIError``: its HTTP status, or the first line of its text.

    ``APIError`` carries the response body (often a whole HTML page) as its message.
    """
    from http import HTTPStatus

    status = getattr(exc, "status_code", None)
    if status:
        try:
            return f"HTTP {status} {HTTPStatus(status).phrase}"
        except ValueError:
            return f"HTTP {status}"
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return (lines[0][:200] if lines else type(exc).__name__) + (" …" if len(lines) > 1 else "")


def search_api(
    url: str,
    bbox: BBox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
    limit: int = 100,
    max_items: int | None = None,
) -> Iterator[Scene]:
    """Scenes from a STAC API ``/search`` (STAC API Item Search 1.0: bbox, datetime,
    collections), following ``next`` links page by page (pystac-client)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.warnings import DoesNotConformTo

    datetime = (
        f"{_rfc3339(start) if start else '..'}/{_rfc3339(end) if end else '..'}"
        if (start or end)
        else None
    )
    try:
        client = Client.open(url)
        search = client.search(
            bbox=list(bbox) if bbox else None,
            datetime=datetime,
            collections=collections or None,
            limit=limit,
            max_items=max_items,
        )
        for item in search.items_as_dicts():
            scene = scene_from_item(item, _self_href(item, url), source=url)
            if scene:
                yield scene
    except DoesNotConformTo as exc:
        raise CatalogError(
            f"{url} is not a STAC API with item search ({exc}); give it with --catalog if it is a static catalog"
        ) from None
    except APIError as exc:
        raise CatalogError(f"STAC API {url} search failed: {_api_error(exc)}") from None
    except requests.RequestException as exc:
        raise CatalogError(f"STAC API {url} search failed: {str(exc)[:300]}") from None


def discover(
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
    bbox: BBox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
    stats: CrawlStats | None = None,
) -> list[Scene]:
    """Scenes from every static catalog root and STAC API, de-duplicated by id, sorted by time.

    ``collections`` narrows STAC API searches (static catalogs: point at the collection instead).
    """
    if start and end and start > end:
        from core.errors import InputError

        raise InputError(
            f"the time window starts ({start.isoformat()}) after it ends ({end.isoformat()})"
        )
    found: dict[str, Scene] = {}
    for root in catalogs or []:
        for s in crawl_static(root, bbox, start, end, stats=stats):
            found.setdefault(s.id, s)
    for url in stac_apis or []:
        for s in search_api(url, bbox, start, end, collections):
            found.setdefault(s.id, s)
    return sorted(found.values(), key=lambda s: (s.datetime, s.id))
