"""A sample catalog laid out like Maxar Open Data (ARD tiles of one event)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import CRS
from shapely.geometry import shape

from core.errors import InputError
from core.files import atomic_path
from core.grid import reproject_geometry, utm_crs_for
from samples.catalog.common import (
    COG,
    EXT,
    STAC_VERSION,
    RasterFacts,
    SampleScene,
    asset,
    extent,
    link,
    merge_children,
    parse_time,
    place,
    raster_facts,
    stac_time,
    write_json,
)

RGB_BANDS = [
    {"name": "BAND_R", "common_name": "red", "description": "Red"},
    {"name": "BAND_G", "common_name": "green", "description": "Green"},
    {"name": "BAND_B", "common_name": "blue", "description": "Blue"},
]
LICENSE = "CC-BY-NC-4.0"


def quadkey(lon: float, lat: float, level: int = 12) -> str:
    """The Bing Maps tile quadkey containing a point (Maxar ARD tiles are level-12 quadkeys)."""
    s = min(max(math.sin(math.radians(lat)), -0.9999), 0.9999)
    n = 2**level
    tx = min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))
    ty = min(n - 1, max(0, int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)))
    return "".join(str(((tx >> i) & 1) + 2 * ((ty >> i) & 1)) for i in range(level - 1, -1, -1))


def _data_mask(facts: RasterFacts, path: Path) -> None:
    import geopandas as gpd

    crs = facts.proj["proj:code"] or facts.proj.get("proj:wkt2")
    frame = gpd.GeoDataFrame({"value": [1]}, geometry=[shape(facts.native_geometry)], crs=crs)
    with atomic_path(path) as tmp:
        tmp.unlink()  # the GeoPackage driver creates the file itself
        frame.to_file(tmp, driver="GPKG", layer="data-mask")


@dataclass(frozen=True)
class _Layout:
    """Where the documents of one event go below the root."""

    root: Path
    event: str

    @property
    def catalog(self) -> Path:
        return self.root / "events" / "catalog.json"

    @property
    def collection(self) -> Path:
        return self.root / "events" / self.event / "collection.json"

    def acquisition(self, catalog_id: str) -> Path:
        return (
            self.root
            / "events"
            / self.event
            / "ard"
            / "acquisition_collections"
            / f"{catalog_id}_collection.json"
        )


@dataclass(frozen=True)
class _Tile:
    """The ARD tile of one scene: its raster facts, UTM zone and quadkey."""

    facts: RasterFacts
    zone_crs: CRS
    zone: int
    quadkey: str

    @classmethod
    def of(cls, image: Path) -> _Tile:
        facts = raster_facts(image)
        centre = shape(facts.geometry).centroid
        zone_crs = utm_crs_for(centre.x, centre.y)
        zone = int(str(zone_crs.to_epsg())[-2:])
        return cls(facts, zone_crs, zone, quadkey(centre.x, centre.y))


def _properties(s: SampleScene, tile: _Tile) -> dict[str, Any]:
    facts, zone, qk = tile.facts, tile.zone, tile.quadkey
    utm_area = reproject_geometry(shape(facts.geometry), "EPSG:4326", tile.zone_crs).area
    return {
        "datetime": stac_time(s.datetime),
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


def _assets(
    s: SampleScene, tile: _Tile, item_path: Path, copy_assets: bool, data_mask: bool
) -> dict[str, Any]:
    """The ``visual`` COG (copied or referenced) and, for copied catalogs, the ``data-mask``."""
    facts = tile.facts
    visual = place(Path(s.image), item_path.parent / f"{s.id}-visual.tif", copy_assets)
    assets = {
        "visual": asset(
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
        assets["data-mask"] = asset(
            mask,
            item_path,
            True,
            type="application/geopackage+sqlite3",
            title="Data Mask",
            roles=["data-mask"],
        )
    return assets


def _item(
    s: SampleScene, tile: _Tile, layout: _Layout, copy_assets: bool, data_mask: bool
) -> tuple[Path, dict[str, Any]]:
    """Write the ARD item of one scene (and its assets); its path and document."""
    day = s.datetime.astimezone(dt.UTC).strftime("%Y-%m-%d")
    item_path = (
        layout.root / "events" / layout.event / "ard" / str(tile.zone) / tile.quadkey / day
    ) / f"{s.id}.json"
    assets = _assets(s, tile, item_path, copy_assets, data_mask)
    acq_path = layout.acquisition(s.id)
    extensions = ("view", "proj", "eo", "raster", "grid", "file")
    item = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[k] for k in extensions],
        "id": f"{tile.zone}/{tile.quadkey}/{s.id}",
        "geometry": tile.facts.geometry,
        "bbox": tile.facts.bbox,
        "properties": _properties(s, tile),
        "links": [
            link("collection", acq_path, item_path),
            link("parent", acq_path, item_path),
            link("root", layout.catalog, item_path),
        ],
        "assets": assets,
        "collection": s.id,
    }
    write_json(item_path, item)
    return item_path, item


def _write_acquisition(
    layout: _Layout, catalog_id: str, items: list[tuple[Path, dict[str, Any]]]
) -> None:
    acq_path = layout.acquisition(catalog_id)
    times = [parse_time(i["properties"]["datetime"]) for _, i in items]
    doc = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": catalog_id,
        "description": f"Maxar ARD acquisition {catalog_id}",
        "license": LICENSE,
        "extent": extent([i["bbox"] for _, i in items], times),
        "links": [
            link("root", layout.catalog, acq_path),
            link("parent", layout.collection, acq_path),
            *(link("item", p, acq_path) for p, _ in items),
        ],
    }
    write_json(acq_path, doc)


def _write_event(layout: _Layout, items: list[dict[str, Any]], catalog_ids: list[str]) -> None:
    """The event collection and the root catalog (keeping its other events)."""
    times = [parse_time(i["properties"]["datetime"]) for i in items]
    col_path, cat_path = layout.collection, layout.catalog
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": layout.event,
        "title": layout.event.replace("-", " "),
        "description": f"Maxar Open Data event {layout.event} (sample)",
        "license": LICENSE,
        "extent": extent([i["bbox"] for i in items], times),
        "links": [
            link("root", cat_path, col_path),
            link("parent", cat_path, col_path),
            *(link("child", layout.acquisition(c), col_path) for c in catalog_ids),
        ],
    }
    write_json(col_path, collection)
    catalog = {
        "type": "Catalog",
        "id": "maxar-opendata",
        "stac_version": STAC_VERSION,
        "description": "Maxar ARD Open Data Catalog (sample)",
        "license": LICENSE,
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    write_json(cat_path, merge_children(cat_path, catalog, col_path))


def write_maxar_catalog(
    root: Path,
    event: str,
    scenes: list[SampleScene],
    copy_assets: bool = True,
    data_mask: bool = True,
) -> Path:
    """A Maxar-Open-Data-like static catalog of one event; returns ``<root>/events/catalog.json``.

    An existing root catalog keeps its other events.

    Args:
        root: The catalog folder.
        event: The event (collection id).
        scenes: The optical images, one ARD tile each.
        copy_assets: Copy the images next to their items (else reference them).
        data_mask: Write each tile's ``data-mask`` GeoPackage (copied catalogs only).
    """
    if not scenes:
        raise InputError(f"no scenes to catalogue for event {event}")
    layout = _Layout(Path(root), event)
    by_acquisition: dict[str, list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    seen: set[str] = set()
    for s in scenes:
        tile = _Tile.of(s.image)
        item_id = f"{tile.zone}/{tile.quadkey}/{s.id}"
        if item_id in seen:
            raise InputError(
                f"two images of acquisition {s.id} fall in the same tile {tile.quadkey}: "
                "one image per tile"
            )
        seen.add(item_id)
        by_acquisition[s.id].append(_item(s, tile, layout, copy_assets, data_mask))
    for catalog_id, items in by_acquisition.items():
        _write_acquisition(layout, catalog_id, items)
    all_items = [i for items in by_acquisition.values() for _, i in items]
    _write_event(layout, all_items, list(by_acquisition))
    return layout.catalog
