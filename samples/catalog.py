"""Write small static catalogs laid out like the real Maxar and Umbra open-data catalogs.

Used by the demo and the tests: given GeoTIFFs and their acquisition metadata, write

- Maxar Open Data (STAC 1.1): ``events/catalog.json`` → ``events/<event>/collection.json`` →
  ``events/<event>/ard/acquisition_collections/<catalog_id>_collection.json`` → items at
  ``events/<event>/ard/<utm_zone>/<quadkey>/<YYYY-MM-DD>/<catalog_id>.json`` with the ``visual``
  COG and a ``data-mask`` GeoPackage beside them; item ids ``<zone>/<quadkey>/<catalog_id>``,
  properties as in Maxar's ARD items (``catalog_id``, ``utm_zone``, ``quadkey`` (Bing tile,
  level 12), ``grid:code``, ``view:*``, ``proj:*``, ``tile:*``);
- Umbra Open Data: ``stac/catalog.json`` → ``stac/YYYY/`` → ``YYYY-MM/`` → ``YYYY-MM-DD/``
  sub-catalogs → items at ``stac/YYYY/YYYY-MM/YYYY-MM-DD/<uuid>/<uuid>.json`` with the
  ``asset-GEC`` GeoTIFF, ``sar:*``, ``sat:*``, ``view:*`` and ``umbra:*`` properties;
- an Umbra v2 sidecar: ``sar-data/tasks/<task>/<task id>/<acquisition>/<acquisition>.stac.v2.json``
  whose assets are keyed by file name and point at the private processing bucket.

Every asset carries ``file:checksum`` (multihash sha2-256) and ``file:size``. Documents use
relative links (self-contained, relocatable) and validate against the STAC 1.1 schemas.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
from pyproj import CRS
from shapely.geometry import mapping, shape

from core.errors import InputError
from core.files import atomic_path, copy_atomic, write_atomic
from core.grid import Grid, reproject_geometry, utm_crs_for
from stac.fetch import file_checksum

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
RGB_BANDS = [
    {"name": "BAND_R", "common_name": "red", "description": "Red"},
    {"name": "BAND_G", "common_name": "green", "description": "Green"},
    {"name": "BAND_B", "common_name": "blue", "description": "Blue"},
]
UMBRA_PRIVATE_BUCKET = "s3://prod-prod-processed-sar-data"


def quadkey(lon: float, lat: float, level: int = 12) -> str:
    """The Bing Maps tile quadkey containing a point (Maxar ARD tiles are level-12 quadkeys)."""
    s = min(max(math.sin(math.radians(lat)), -0.9999), 0.9999)
    n = 2**level
    tx = min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))
    ty = min(n - 1, max(0, int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)))
    return "".join(str(((tx >> i) & 1) + 2 * ((ty >> i) & 1)) for i in range(level - 1, -1, -1))


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


def raster_geometry(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], list[float], dict[str, Any]]:
    """WGS84 geometry, bbox and ``proj:*`` fields of a raster (see :func:`raster_facts`)."""
    f = raster_facts(path)
    return f.geometry, f.bbox, f.proj


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(doc, indent=1).encode())


def _link(rel: str, target: Path, start: Path, media: str = "application/json") -> dict[str, str]:
    return {"rel": rel, "href": _rel(target, start), "type": media}


def _rel(target: Path, start: Path) -> str:
    rel = os.path.relpath(target, start.parent).replace(os.sep, "/")
    return rel if rel.startswith("../") else "./" + rel


def _time(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise InputError(f"acquisition time {t.isoformat()} needs a time zone")
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _place(image: Path, dest: Path, copy: bool) -> Path:
    if not Path(image).is_file():
        raise InputError(f"image to catalogue not found: {image}")
    if not copy:
        return Path(image).resolve()
    copy_atomic(Path(image), dest)
    return dest


def _asset(path: Path, item_path: Path, copy: bool, **fields: Any) -> dict[str, Any]:
    return {
        "href": _rel(path, item_path) if copy else str(path),
        **fields,
        "file:checksum": file_checksum(path),
        "file:size": path.stat().st_size,
    }


def _extent(bboxes: list[list[float]], times: list[dt.datetime]) -> dict[str, Any]:
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
        "temporal": {"interval": [[_time(min(times)), _time(max(times))]]},
    }


def _merge_children(cat_path: Path, doc: dict[str, Any], child: Path) -> dict[str, Any]:
    """``doc`` with the child links of an existing catalog at ``cat_path`` kept (several events per
    root)."""
    links = [link for link in doc["links"] if link["rel"] != "child"]
    children = {link["href"] for link in doc["links"] if link["rel"] == "child"}
    if cat_path.exists():
        children |= {
            link["href"]
            for link in json.loads(cat_path.read_text()).get("links", [])
            if link.get("rel") == "child"
        }
    children.add(_rel(child, cat_path))
    return {
        **doc,
        "links": links
        + [{"rel": "child", "href": h, "type": "application/json"} for h in sorted(children)],
    }


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


def _data_mask(facts: RasterFacts, path: Path) -> None:
    import geopandas as gpd

    crs = facts.proj["proj:code"] or facts.proj.get("proj:wkt2")
    frame = gpd.GeoDataFrame({"value": [1]}, geometry=[shape(facts.native_geometry)], crs=crs)
    with atomic_path(path) as tmp:
        tmp.unlink()  # the GeoPackage driver creates the file itself
        frame.to_file(tmp, driver="GPKG", layer="data-mask")


def write_maxar_catalog(
    root: Path,
    event: str,
    scenes: list[SampleScene],
    copy_assets: bool = True,
    data_mask: bool = True,
) -> Path:
    """A Maxar-Open-Data-like static catalog of one event; returns ``<root>/events/catalog.json``.

    An existing root catalog keeps its other events.
    """
    if not scenes:
        raise InputError(f"no scenes to catalogue for event {event}")
    root = Path(root)
    cat_path = root / "events" / "catalog.json"
    col_path = root / "events" / event / "collection.json"
    acq_dir = root / "events" / event / "ard" / "acquisition_collections"
    by_acquisition: dict[str, list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    seen: set[str] = set()
    for s in scenes:
        facts = raster_facts(s.image)
        centre = shape(facts.geometry).centroid
        zone_crs = utm_crs_for(centre.x, centre.y)
        zone = int(str(zone_crs.to_epsg())[-2:])
        qk = quadkey(centre.x, centre.y)
        item_id = f"{zone}/{qk}/{s.id}"
        if item_id in seen:
            raise InputError(
                f"two images of acquisition {s.id} fall in the same tile {qk}: one image per tile"
            )
        seen.add(item_id)
        day = s.datetime.astimezone(dt.UTC).strftime("%Y-%m-%d")
        item_path = root / "events" / event / "ard" / str(zone) / qk / day / f"{s.id}.json"
        visual = _place(Path(s.image), item_path.parent / f"{s.id}-visual.tif", copy_assets)
        utm_area = reproject_geometry(shape(facts.geometry), "EPSG:4326", zone_crs).area
        props = {
            "datetime": _time(s.datetime),
            "platform": s.platform,
            "gsd": s.gsd,
            "ard_metadata_version": "0.0.1",
            "catalog_id": s.id,
            "utm_zone": zone,
            "quadkey": qk,
            "proj:geometry": facts.native_geometry,
            "grid:code": f"MXRA-Z{zone}-{qk}",
            "proj:bbox": facts.proj["proj:bbox"],
            "tile:data_area": round(utm_area / 1e6, 1),
            "tile:clouds_area": 0.0,
            "tile:clouds_percent": 0,
            "proj:code": facts.proj["proj:code"],
            **s.properties,
        }
        acq_path = acq_dir / f"{s.id}_collection.json"
        assets = {
            "visual": _asset(
                visual,
                item_path,
                copy_assets,
                type=COG,
                title="Visual Image",
                **{k: facts.proj[k] for k in ("proj:bbox", "proj:shape", "proj:transform")},
                **({"eo:bands": RGB_BANDS} if facts.count == 3 else {}),
                roles=["visual"],
            )
        }
        if data_mask and copy_assets:
            mask = item_path.parent / f"{s.id}-data-mask.gpkg"
            _data_mask(facts, mask)
            assets["data-mask"] = _asset(
                mask,
                item_path,
                True,
                type="application/geopackage+sqlite3",
                title="Data Mask",
                roles=["data-mask"],
            )
        item = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [
                EXT["view"],
                EXT["proj"],
                EXT["eo"],
                EXT["raster"],
                EXT["grid"],
                EXT["file"],
            ],
            "id": item_id,
            "geometry": facts.geometry,
            "bbox": facts.bbox,
            "properties": props,
            "links": [
                _link("collection", acq_path, item_path),
                _link("parent", acq_path, item_path),
                _link("root", cat_path, item_path),
            ],
            "assets": assets,
            "collection": s.id,
        }
        _write_json(item_path, item)
        by_acquisition[s.id].append((item_path, item))
    for catalog_id, items in by_acquisition.items():
        acq_path = acq_dir / f"{catalog_id}_collection.json"
        times = [
            dt.datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00"))
            for _, i in items
        ]
        _write_json(
            acq_path,
            {
                "type": "Collection",
                "stac_version": STAC_VERSION,
                "id": catalog_id,
                "description": f"Maxar ARD acquisition {catalog_id}",
                "license": "CC-BY-NC-4.0",
                "extent": _extent([i["bbox"] for _, i in items], times),
                "links": [
                    _link("root", cat_path, acq_path),
                    _link("parent", col_path, acq_path),
                    *(_link("item", p, acq_path) for p, _ in items),
                ],
            },
        )
    all_items = [i for items in by_acquisition.values() for _, i in items]
    times = [
        dt.datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00"))
        for i in all_items
    ]
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": event,
        "title": event.replace("-", " "),
        "description": f"Maxar Open Data event {event} (sample)",
        "license": "CC-BY-NC-4.0",
        "extent": _extent([i["bbox"] for i in all_items], times),
        "links": [
            _link("root", cat_path, col_path),
            _link("parent", cat_path, col_path),
            *(_link("child", acq_dir / f"{c}_collection.json", col_path) for c in by_acquisition),
        ],
    }
    _write_json(col_path, collection)
    catalog = {
        "type": "Catalog",
        "id": "maxar-opendata",
        "stac_version": STAC_VERSION,
        "description": "Maxar ARD Open Data Catalog (sample)",
        "license": "CC-BY-NC-4.0",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    _write_json(cat_path, _merge_children(cat_path, catalog, col_path))
    return cat_path


def _umbra_acquisition(s: SampleScene) -> str:
    return f"{s.datetime.astimezone(dt.UTC):%Y-%m-%d-%H-%M-%S}_{s.platform.upper()}"


def _umbra_properties(s: SampleScene, facts: RasterFacts) -> dict[str, Any]:
    t = s.datetime.astimezone(dt.UTC)
    ids = uuid.uuid5(uuid.NAMESPACE_URL, f"umbra-sample/{s.id}")
    return {
        "datetime": _time(t),
        "start_datetime": _time(t - dt.timedelta(seconds=6)),
        "end_datetime": _time(t + dt.timedelta(seconds=6)),
        "created": _time(t + dt.timedelta(hours=20)),
        "platform": s.platform,
        "constellation": "umbra",
        "processing:software": {"coalign sample_catalog": "1"},
        "sar:instrument_mode": "SPOTLIGHT",
        "sar:frequency_band": "X",
        "sar:center_frequency": 9.6,
        "sar:polarizations": ["VV"],
        "sar:product_type": "GEC",
        "sar:resolution_range": s.gsd,
        "sar:resolution_azimuth": s.gsd,
        "sar:looks_range": 1,
        "sar:looks_azimuth": 1,
        "sar:observation_direction": "right",
        "sat:orbit_state": "descending",
        "umbra:task_id": str(uuid.uuid5(ids, "task")),
        "umbra:collect_id": str(uuid.uuid5(ids, "collect")),
        "proj:code": facts.proj["proj:code"],
        "proj:shape": facts.proj["proj:shape"],
        "proj:transform": facts.proj["proj:transform"],
        **s.properties,
    }


def write_umbra_catalog(root: Path, scenes: list[SampleScene], copy_assets: bool = True) -> Path:
    """An Umbra-Open-Data-like static catalog; returns ``<root>/stac/catalog.json``.

    Sub-catalogs per year, month and day (``stac/2023/2023-02/2023-02-12/``); existing
    sub-catalogs keep their other children.
    """
    if not scenes:
        raise InputError("no SAR scenes to catalogue")
    root = Path(root)
    cat_path = root / "stac" / "catalog.json"
    for s in scenes:
        t = s.datetime.astimezone(dt.UTC)
        day_dir = root / "stac" / f"{t:%Y}" / f"{t:%Y-%m}" / f"{t:%Y-%m-%d}"
        item_path = day_dir / s.id / f"{s.id}.json"
        facts = raster_facts(s.image)
        gec = _place(
            Path(s.image), item_path.parent / f"{_umbra_acquisition(s)}_GEC.tif", copy_assets
        )
        item = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [
                EXT["view"],
                EXT["sar"],
                EXT["sat"],
                EXT["proj"],
                EXT["processing"],
                EXT["file"],
                EXT["umbra"],
            ],
            "id": s.id,
            "bbox": facts.bbox,
            "geometry": facts.geometry,
            "properties": _umbra_properties(s, facts),
            "collection": "umbra-sar",
            "links": [
                _link("root", cat_path, item_path),
                _link("parent", day_dir / "catalog.json", item_path),
            ],
            "assets": {
                "asset-GEC": _asset(
                    gec,
                    item_path,
                    copy_assets,
                    type=COG,
                    title="GEC",
                    description="Geocoded Ellipsoid Corrected image",
                    roles=["data"],
                )
            },
        }
        _write_json(item_path, item)
        # day -> month -> year -> root, each keeping the children it already had
        child, child_rel = item_path, "item"
        for folder in (day_dir, day_dir.parent, day_dir.parent.parent):
            path = folder / "catalog.json"
            doc = (
                json.loads(path.read_text())
                if path.exists()
                else {
                    "type": "Catalog",
                    "id": folder.name,
                    "stac_version": STAC_VERSION,
                    "description": f"Umbra Open Data {folder.name} (sample)",
                    "links": [
                        _link("root", cat_path, path),
                        _link("parent", folder.parent / "catalog.json", path),
                    ],
                }
            )
            link = _link(child_rel, child, path)
            if link["href"] not in {
                link["href"] for link in doc["links"] if link["rel"] == child_rel
            }:
                doc["links"].append(link)
            _write_json(path, doc)
            child, child_rel = path, "child"
        root_doc = {
            "type": "Catalog",
            "id": "umbra-open-data-catalog",
            "stac_version": STAC_VERSION,
            "description": "Umbra Open Data (sample)",
            "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
        }
        _write_json(cat_path, _merge_children(cat_path, root_doc, child))
    return cat_path


def write_umbra_sidecar(root: Path, scene: SampleScene, task: str = "Sample Task") -> Path:
    """An Umbra v2 product folder under ``<root>/sar-data/tasks/<task>/<task id>/<acquisition>/``:
    the image as ``<acquisition>_MM.tif`` and its ``<acquisition>.stac.v2.json`` sidecar, whose
    assets are keyed by file name and point at the private bucket (as Umbra's do)."""
    facts = raster_facts(scene.image)
    props = _umbra_properties(scene, facts)
    acq = _umbra_acquisition(scene)
    folder = Path(root) / "sar-data" / "tasks" / task / props["umbra:task_id"] / acq
    image = _place(Path(scene.image), folder / f"{acq}_MM.tif", True)
    private = (
        f"{UMBRA_PRIVATE_BUCKET}/{scene.datetime:%Y-%m-%d}/{props['umbra:collect_id']}/{scene.id}"
    )

    def asset(
        name: str, title: str, media: str, roles: list[str], path: Path | None = None
    ) -> dict[str, Any]:
        a = {
            "href": f"{private}/{name}",
            "title": title,
            "type": media,
            "roles": roles,
            "description": f"MONOSTATIC {title}",
        }
        if path is not None:
            a.update({"file:checksum": file_checksum(path), "file:size": path.stat().st_size})
        return a

    sidecar = folder / f"{acq}.stac.v2.json"
    doc = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [
            EXT["view"],
            EXT["sar"],
            EXT["sat"],
            EXT["processing"],
            EXT["file"],
            EXT["umbra"],
        ],
        "id": scene.id,
        "bbox": facts.bbox,
        "geometry": facts.geometry,
        "collection": "umbra-sar",
        "properties": {k: v for k, v in props.items() if not k.startswith("proj:")},
        "links": [{"rel": "collection", "href": "umbra-sar", "type": "application/json"}],
        "assets": {
            f"{acq}_CSI_MM.tif": asset(f"{acq}_CSI_MM.tif", "CSI_TIFF", COG, ["data"]),
            f"{acq}_MM.tif": asset(f"{acq}_MM.tif", "TIFF", COG, ["data", "overview"], image),
            f"{acq}_MM.json": asset(f"{acq}_MM.json", "METADATA", "application/json", ["metadata"]),
            f"{acq}.stac.v2.json": asset(
                f"{acq}.stac.v2.json", "STAC_METADATA", "application/geo+json", ["metadata"]
            ),
        },
    }
    _write_json(sidecar, doc)
    return sidecar
