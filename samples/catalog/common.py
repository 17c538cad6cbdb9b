"""What both sample catalogs share: raster facts, links, assets, extents, atomic JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
from pyproj import CRS
from shapely.geometry import mapping

from core.errors import InputError
from core.files import copy_atomic, write_atomic
from core.grid import Grid
from stac.checksum import file_checksum

STAC_VERSION = "1.1.0"
EXT = {
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "grid": "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "umbra": "https://umbra-space.github.io/umbra-stac-extension/json-schema/v1.0.0/schema.json",
}
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass(frozen=True)
class SampleScene:
    """One image to catalogue, with the metadata a real item would carry.

    ``id`` is the Maxar ``catalog_id`` (tiles of one acquisition share it) or the Umbra item
    UUID; ``properties`` are merged into the item's properties (e.g. ``view:off_nadir``).
    """

    image: Path
    id: str
    datetime: dt.datetime
    platform: str
    gsd: float
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RasterFacts:
    """What an item says about its raster: footprint, ``proj:*`` fields, bands."""

    geometry: dict[str, Any]
    bbox: list[float]
    proj: dict[str, Any]
    native_geometry: dict[str, Any]
    count: int
    dtype: str


def raster_facts(path: str | os.PathLike[str]) -> RasterFacts:
    """Footprint (WGS84 and native), bbox and ``proj:*`` fields of a raster, from its header
    only."""
    with rasterio.open(path) as ds:
        if ds.crs is None:
            raise InputError(
                f"{path} has no CRS: a catalogued image needs one (gdal_edit.py -a_srs EPSG:xxxx)"
            )
        crs = CRS.from_wkt(ds.crs.to_wkt())
        grid = Grid(crs, ds.transform, ds.width, ds.height)
        epsg, count, dtype = ds.crs.to_epsg(), ds.count, ds.dtypes[0]
    native = grid.footprint()
    footprint = grid.footprint_in(CRS.from_epsg(4326), densify=8)
    t = grid.transform
    proj = {
        "proj:code": f"EPSG:{epsg}" if epsg else None,
        "proj:shape": [grid.height, grid.width],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f, 0.0, 0.0, 1.0],
        "proj:bbox": list(native.bounds),
    }
    if not epsg:
        proj["proj:wkt2"] = crs.to_wkt()
    return RasterFacts(
        json.loads(json.dumps(mapping(footprint))),
        list(footprint.bounds),
        proj,
        json.loads(json.dumps(mapping(native))),
        count,
        dtype,
    )


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write a STAC document (indent 1) atomically, creating its folder."""
    write_atomic(path, json.dumps(doc, indent=1).encode())


def link(rel: str, target: Path, start: Path, media: str = "application/json") -> dict[str, str]:
    """A link from the document at ``start`` to ``target``, by relative href."""
    return {"rel": rel, "href": relative(target, start), "type": media}


def relative(target: Path, start: Path) -> str:
    """The href of ``target`` relative to the document at ``start`` (``./`` or ``../``)."""
    rel = os.path.relpath(target, start.parent).replace(os.sep, "/")
    return rel if rel.startswith("../") else "./" + rel


def stac_time(t: dt.datetime) -> str:
    """An aware time as RFC 3339 UTC (``Z``); InputError for a naive one."""
    if t.tzinfo is None:
        raise InputError(f"acquisition time {t.isoformat()} needs a time zone")
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """The time of an item's ``datetime`` property."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def place(image: Path, dest: Path, copy: bool) -> Path:
    """Where the catalogued image lives: copied to ``dest``, or its own absolute path."""
    if not Path(image).is_file():
        raise InputError(f"image to catalogue not found: {image}")
    if not copy:
        return Path(image).resolve()
    copy_atomic(Path(image), dest)
    return dest


def asset(path: Path, item_path: Path, copy: bool, **fields: Any) -> dict[str, Any]:
    """An asset of the item at ``item_path`` with ``file:checksum`` and ``file:size``."""
    return {
        "href": relative(path, item_path) if copy else str(path),
        **fields,
        "file:checksum": file_checksum(path),
        "file:size": path.stat().st_size,
    }


def extent(bboxes: list[list[float]], times: list[dt.datetime]) -> dict[str, Any]:
    """The collection extent covering ``bboxes`` and ``times``."""
    return {
        "spatial": {
            "bbox": [
                [
                    min(b[0] for b in bboxes),
                    min(b[1] for b in bboxes),
                    max(b[2] for b in bboxes),
                    max(b[3] for b in bboxes),
                ]
            ]
        },
        "temporal": {"interval": [[stac_time(min(times)), stac_time(max(times))]]},
    }


def merge_children(cat_path: Path, doc: dict[str, Any], child: Path) -> dict[str, Any]:
    """``doc`` with the child links of an existing catalog at ``cat_path`` kept (several events
    per root)."""
    links = [x for x in doc["links"] if x["rel"] != "child"]
    children = {x["href"] for x in doc["links"] if x["rel"] == "child"}
    if cat_path.exists():
        children |= {
            x["href"]
            for x in json.loads(cat_path.read_text()).get("links", [])
            if x.get("rel") == "child"
        }
    children.add(relative(child, cat_path))
    return {
        **doc,
        "links": links
        + [{"rel": "child", "href": h, "type": "application/json"} for h in sorted(children)],
    }
