"""Write small static catalogs laid out like the real Maxar and Umbra open-data catalogs.

Used by the demo and the tests: given GeoTIFFs and their acquisition metadata,
write ``events/catalog.json → <event>/collection.json → ard/<zone>/<quadkey>/<date>/<catalog_id>.json``
(Maxar ARD layout, asset ``visual``) and ``stac/catalog.json → YYYY/YYYY-MM/YYYY-MM-DD/<uuid>/<uuid>.json``
(Umbra layout, asset ``asset-GEC``). Documents follow STAC 1.1 with the view, proj and sar extensions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
from shapely.geometry import mapping

from models.grid import Grid, reproject_geometry

STAC_VERSION = "1.1.0"
EXT = {
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
}


def multihash_sha256(path: str | os.PathLike[str]) -> str:
    """``file:checksum`` of a file: multihash hex (0x12 sha2-256, 0x20 length) of its bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "1220" + h.hexdigest()


def raster_geometry(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[float], dict[str, Any]]:
    """WGS84 geometry, bbox and ``proj:*`` fields of a raster."""
    from pyproj import CRS

    with rasterio.open(path) as ds:
        grid = Grid(CRS.from_wkt(ds.crs.to_wkt()), ds.transform, ds.width, ds.height)
        epsg = ds.crs.to_epsg()
    footprint = reproject_geometry(grid.footprint_in(grid.crs), grid.crs, "EPSG:4326")
    t = grid.transform
    proj = {"proj:code": f"EPSG:{epsg}" if epsg else None, "proj:shape": [grid.height, grid.width],
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f]}
    return json.loads(json.dumps(mapping(footprint))), list(footprint.bounds), proj


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def _link(rel: str, href: str) -> dict[str, str]:
    return {"rel": rel, "href": href, "type": "application/json"}


def _rel(target: Path, start: Path) -> str:
    return os.path.relpath(target, start.parent).replace(os.sep, "/")


@dataclass(frozen=True)
class SampleScene:
    """One image to catalogue, with the metadata a real item would carry."""

    image: Path
    id: str
    datetime: dt.datetime
    platform: str
    gsd: float
    properties: dict[str, Any] = field(default_factory=dict)


def write_maxar_catalog(root: Path, event: str, scenes: list[SampleScene], copy_assets: bool = True) -> Path:
    """A Maxar-Open-Data-like static catalog; returns ``<root>/events/catalog.json``."""
    cat_path = root / "events" / "catalog.json"
    col_path = root / "events" / event / "collection.json"
    item_links, boxes, times = [], [], []
    for s in scenes:
        geometry, bbox, proj = raster_geometry(s.image)
        zone = (proj["proj:code"] or "EPSG:32600")[-2:]
        quadkey = hashlib.md5(s.id.encode()).hexdigest()[:12]
        item_path = root / "events" / event / "ard" / zone / quadkey / s.datetime.strftime("%Y-%m-%d") / f"{s.id}.json"
        item_path.parent.mkdir(parents=True, exist_ok=True)
        asset = item_path.parent / f"{s.id}-visual.tif"
        if copy_assets:
            shutil.copyfile(s.image, asset)
        else:
            asset = Path(s.image)
        item = {
            "type": "Feature", "stac_version": STAC_VERSION, "stac_extensions": [EXT["view"], EXT["proj"], EXT["file"]],
            "id": f"{zone}/{quadkey}/{s.id}", "bbox": bbox, "geometry": geometry,
            "properties": {"datetime": s.datetime.isoformat().replace("+00:00", "Z"), "platform": s.platform, "gsd": s.gsd,
                           "catalog_id": s.id, "utm_zone": int(zone), "quadkey": quadkey, **proj, **s.properties},
            "links": [_link("root", _rel(cat_path, item_path)), _link("parent", _rel(col_path, item_path)),
                      _link("collection", _rel(col_path, item_path))],
            "assets": {"visual": {"href": _rel(asset, item_path) if copy_assets else str(asset),
                                  "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                                  "title": "Visual Image", "roles": ["visual"], "file:checksum": multihash_sha256(asset)}},
            "collection": event,
        }
        _write_json(item_path, item)
        item_links.append(_link("item", _rel(item_path, col_path)))
        boxes.append(bbox)
        times.append(s.datetime)
    collection = {
        "type": "Collection", "stac_version": STAC_VERSION, "id": event, "description": f"Maxar-like sample event {event}",
        "license": "CC-BY-NC-4.0",
        "extent": {"spatial": {"bbox": [[min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]]},
                   "temporal": {"interval": [[min(times).isoformat(), max(times).isoformat()]]}},
        "links": [_link("root", _rel(cat_path, col_path)), _link("parent", _rel(cat_path, col_path)), *item_links],
    }
    _write_json(col_path, collection)
    _write_json(cat_path, {"type": "Catalog", "id": "maxar-opendata", "stac_version": STAC_VERSION,
                           "description": "Maxar ARD Open Data Catalog (sample)",
                           "links": [_link("root", "./catalog.json"), _link("child", _rel(col_path, cat_path))]})
    return cat_path


def write_umbra_catalog(root: Path, scenes: list[SampleScene], copy_assets: bool = True) -> Path:
    """An Umbra-Open-Data-like static catalog; returns ``<root>/stac/catalog.json``."""
    cat_path = root / "stac" / "catalog.json"
    links = [_link("root", "./catalog.json")]
    for s in scenes:
        d = s.datetime
        item_path = root / "stac" / d.strftime("%Y") / d.strftime("%Y-%m") / d.strftime("%Y-%m-%d") / s.id / f"{s.id}.json"
        item_path.parent.mkdir(parents=True, exist_ok=True)
        geometry, bbox, proj = raster_geometry(s.image)
        asset = item_path.parent / f"{s.id}_GEC.tif"
        if copy_assets:
            shutil.copyfile(s.image, asset)
        else:
            asset = Path(s.image)
        props = {"datetime": d.isoformat().replace("+00:00", "Z"), "platform": s.platform, "constellation": "umbra",
                 "sar:instrument_mode": "SPOTLIGHT", "sar:frequency_band": "X", "sar:polarizations": ["VV"],
                 "sar:product_type": "GEC", "sar:resolution_range": s.gsd, "sar:resolution_azimuth": s.gsd,
                 "sar:observation_direction": "right", **proj, **s.properties}
        item = {
            "type": "Feature", "stac_version": STAC_VERSION, "stac_extensions": [EXT["view"], EXT["sar"], EXT["proj"], EXT["file"]],
            "id": s.id, "bbox": bbox, "geometry": geometry, "properties": props, "collection": "umbra-sar",
            "links": [_link("root", _rel(cat_path, item_path)), _link("parent", _rel(cat_path, item_path))],
            "assets": {"asset-GEC": {"href": _rel(asset, item_path) if copy_assets else str(asset),
                                     "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                                     "title": "GEC", "roles": ["data"], "file:checksum": multihash_sha256(asset)}},
        }
        _write_json(item_path, item)
        links.append(_link("item", _rel(item_path, cat_path)))
    _write_json(cat_path, {"type": "Catalog", "id": "umbra-open-data", "stac_version": STAC_VERSION,
                           "description": "Umbra Open Data (sample)", "links": links})
    return cat_path
