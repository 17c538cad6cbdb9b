"""Scene discovery: static STAC catalogs (Maxar Open Data, Umbra Open Data) and STAC APIs.

Everything is normalised into :class:`stac.scene.Scene` (STAC Item spec 1.x
fields plus the ``view``, ``proj`` and ``sar`` extensions). Static catalogs are
crawled lazily: a child collection whose ``extent`` misses the AOI or the time
window is never opened (the Maxar Turkey event alone has 2115 items).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from shapely.geometry import box, shape

from models.errors import CatalogError
from stac.scene import Scene

log = logging.getLogger(__name__)

# Umbra's newer per-product sidecars point at a private bucket; the same files are public under this prefix.
UMBRA_PRIVATE_PREFIX = "s3://prod-prod-processed-sar-data/"
UMBRA_PUBLIC_PREFIX = os.environ.get("COALIGN_UMBRA_PUBLIC_PREFIX", "s3://umbra-open-data-catalog/sar-data/tasks/")
GEOTIFF = "image/tiff"


def load_json(href: str, retries: int = 3) -> dict[str, Any]:
    """A JSON document from a path, ``file://`` or ``http(s)://`` URL (retried on transient errors)."""
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https"):
        for attempt in range(retries):
            try:
                r = requests.get(href, timeout=30)
                if r.status_code >= 500:
                    raise requests.ConnectionError(f"HTTP {r.status_code}")
                if r.status_code != 200:
                    raise CatalogError(f"cannot read STAC document {href}: HTTP {r.status_code}")
                return r.json()
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == retries - 1:
                    raise CatalogError(f"cannot reach STAC document {href}: {exc}") from exc
                time.sleep(0.5 * 2**attempt)
    path = parsed.path if parsed.scheme == "file" else href
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CatalogError(f"STAC document not found: {href}") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"STAC document {href} is not valid JSON ({exc})") from exc


def resolve(base: str, href: str) -> str:
    """An href made absolute against the document it appears in."""
    if urlparse(href).scheme or href.startswith("/"):
        return href
    if urlparse(base).scheme in ("http", "https", "file"):
        return urljoin(base, href)
    return str((Path(base).parent / href).resolve())


def parse_datetime(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


def _crs(props: dict[str, Any]) -> str | None:
    if props.get("proj:code"):
        return str(props["proj:code"])
    if props.get("proj:epsg"):
        return f"EPSG:{props['proj:epsg']}"
    return None


def _sar_asset(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    assets = item.get("assets", {})
    if "asset-GEC" in assets:
        return "asset-GEC", assets["asset-GEC"]
    # v2 sidecars: file names as keys; the GEC GeoTIFF is the data TIFF that is not the CSI product
    for key, a in assets.items():
        if GEOTIFF in a.get("type", "") and "data" in a.get("roles", []) and "CSI" not in key.upper():
            return key, a
    return None


def scene_from_item(item: dict[str, Any], item_href: str = "") -> Scene | None:
    """The optical or SAR scene an Item describes (None when it has no usable image asset)."""
    props = item.get("properties", {})
    assets = item.get("assets", {})
    is_sar = any(k.startswith("sar:") for k in props) or "asset-GEC" in assets
    if is_sar:
        found = _sar_asset(item)
        sensor = "sar"
    elif "visual" in assets:
        found = ("visual", assets["visual"])
        sensor = "optical"
    else:
        found = next(((k, a) for k, a in assets.items() if GEOTIFF in a.get("type", "") and "data" in a.get("roles", [])), None)
        sensor = "optical"
    if found is None or not item.get("geometry"):
        return None
    key, asset = found
    href = resolve(item_href, asset["href"]) if item_href else asset["href"]
    if href.startswith(UMBRA_PRIVATE_PREFIX):
        href = UMBRA_PUBLIC_PREFIX + href[len(UMBRA_PRIVATE_PREFIX):]
    when = parse_datetime(props.get("datetime")) or parse_datetime(props.get("start_datetime"))
    if when is None:
        raise CatalogError(f"STAC item {item.get('id')} ({item_href}) has no datetime")
    gsd = props.get("gsd") or asset.get("gsd")
    if gsd is None and sensor == "sar":
        ra, rr = props.get("sar:resolution_azimuth"), props.get("sar:resolution_range")
        gsd = max(ra, rr) if ra and rr else None
    return Scene(
        id=str(item["id"]),
        sensor=sensor,
        platform=props.get("platform"),
        datetime=when,
        footprint=shape(item["geometry"]),
        href=href,
        crs=_crs(props) or _crs(asset),
        gsd=float(gsd) if gsd is not None else None,
        collection=item.get("collection"),
        item_href=item_href or None,
        view_off_nadir=props.get("view:off_nadir"),
        view_incidence_angle=props.get("view:incidence_angle"),
        view_azimuth=props.get("view:azimuth"),
        sar={k: v for k, v in props.items() if k.startswith("sar:")},
        checksum=asset.get("file:checksum"),
        properties={k: v for k, v in props.items() if not isinstance(v, (dict, list)) or k.startswith("sar:")},
    )


def _extent_matches(doc: dict[str, Any], aoi, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    extent = doc.get("extent")
    if not extent:
        return True
    boxes = extent.get("spatial", {}).get("bbox") or []
    if aoi is not None and boxes and not any(box(*b[:2], *b[2:4]).intersects(aoi) if len(b) == 4 else True for b in boxes):
        return False
    intervals = extent.get("temporal", {}).get("interval") or []
    for lo, hi in intervals:
        lo_d, hi_d = parse_datetime(lo), parse_datetime(hi)
        if (end is None or lo_d is None or lo_d <= end) and (start is None or hi_d is None or hi_d >= start):
            return True
    return not intervals


def _item_matches(scene: Scene, aoi, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    if aoi is not None and not scene.footprint.intersects(aoi):
        return False
    return (start is None or scene.datetime >= start) and (end is None or scene.datetime <= end)


def crawl_static(
    root: str,
    bbox: tuple[float, float, float, float] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    max_documents: int = 100_000,
) -> Iterator[Scene]:
    """Scenes in a static catalog (STAC Catalog/Collection/Item spec 1.x), pruned by extent.

    Follows ``child`` and ``item`` links breadth first; collections whose
    extent misses the AOI/time window are skipped without opening their children.
    """
    aoi = box(*bbox) if bbox else None
    queue: deque[str] = deque([root])
    seen: set[str] = set()
    while queue and len(seen) < max_documents:
        href = queue.popleft()
        if href in seen:
            continue
        seen.add(href)
        doc = load_json(href)
        kind = doc.get("type")
        if kind == "Feature":
            scene = scene_from_item(doc, href)
            if scene and _item_matches(scene, aoi, start, end):
                yield scene
            continue
        if kind == "Collection" and not _extent_matches(doc, aoi, start, end):
            continue
        for link in doc.get("links", []):
            if link.get("rel") in ("child", "item"):
                queue.append(resolve(href, link["href"]))


def search_api(
    url: str,
    bbox: tuple[float, float, float, float] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
    limit: int = 100,
) -> Iterator[Scene]:
    """Scenes from a STAC API ``/search`` (item-search spec), following ``next`` pages (pystac-client)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    datetime = None
    if start or end:
        datetime = f"{start.isoformat() if start else '..'}/{end.isoformat() if end else '..'}"
    try:
        client = Client.open(url)
        search = client.search(bbox=bbox, datetime=datetime, collections=collections, limit=limit)
        for item in search.items_as_dicts():
            self_href = next((l["href"] for l in item.get("links", []) if l.get("rel") == "self"), "")
            scene = scene_from_item(item, self_href)
            if scene:
                yield scene
    except (APIError, requests.RequestException) as exc:
        raise CatalogError(f"STAC API {url} search failed: {exc}") from exc


def discover(
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
) -> list[Scene]:
    """Scenes from every catalog root and STAC API, de-duplicated by id, sorted by time."""
    found: dict[str, Scene] = {}
    for root in catalogs or []:
        for s in crawl_static(root, bbox, start, end):
            found.setdefault(s.id, s)
    for url in stac_apis or []:
        for s in search_api(url, bbox, start, end, collections):
            found.setdefault(s.id, s)
    return sorted(found.values(), key=lambda s: (s.datetime, s.id))
