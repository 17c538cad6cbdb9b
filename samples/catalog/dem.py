"""A small static DEM catalog laid out like Copernicus DEM items: a collection of tile COGs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from samples.catalog.common import (
    COG,
    EXT,
    STAC_VERSION,
    asset,
    extent,
    link,
    place,
    raster_facts,
    stac_time,
    write_json,
)

# the production date Copernicus DEM items carry as their datetime
DEM_TIME = dt.datetime(2021, 4, 22, tzinfo=dt.UTC)


def write_dem_catalog(
    root: str | os.PathLike[str],
    tiles: list[Path],
    collection: str = "cop-dem-glo-30",
    gsd: float = 30.0,
) -> Path:
    """Write ``<root>/catalog.json`` → ``<collection>/collection.json`` → one item per DEM tile
    (``<collection>/<tile stem>/<tile stem>.json``, its COG copied beside it as the ``data``
    asset with ``file:checksum``); the catalog's path.

    Args:
        root: The folder to write the catalog in.
        tiles: The DEM GeoTIFFs (1 band of heights, any CRS), one item each.
        collection: The collection id the items name (as a STAC API would).
        gsd: The DEM's ground sample distance in metres.
    """
    root = Path(root)
    cat_path, col_path = root / "catalog.json", root / collection / "collection.json"
    items, bboxes = [], []
    for tile in tiles:
        item_path = root / collection / tile.stem / f"{tile.stem}.json"
        image = place(tile, item_path.parent / tile.name, copy=True)
        facts = raster_facts(image)
        bboxes.append(facts.bbox)
        item = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [EXT["proj"], EXT["file"]],
            "id": tile.stem,
            "collection": collection,
            "geometry": facts.geometry,
            "bbox": facts.bbox,
            "properties": {"datetime": stac_time(DEM_TIME), "gsd": gsd, **facts.proj},
            "assets": {
                "data": asset(image, item_path, True, type=COG, roles=["data"], title="DEM")
            },
            "links": [
                link("collection", col_path, item_path),
                link("parent", col_path, item_path),
                link("root", cat_path, item_path),
            ],
        }
        write_json(item_path, item)
        items.append(item_path)
    write_json(
        col_path,
        {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "id": collection,
            "description": "Digital elevation model tiles",
            "license": "proprietary",
            "extent": extent(bboxes, [DEM_TIME]),
            "links": [link("root", cat_path, col_path), link("parent", cat_path, col_path)]
            + [link("item", p, col_path, "application/geo+json") for p in items],
        },
    )
    write_json(
        cat_path,
        {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": f"{collection}-sample",
            "description": "Sample DEM catalog",
            "links": [link("root", cat_path, cat_path), link("child", col_path, cat_path)],
        },
    )
    return cat_path
