"""The activation with a DEM: found through STAC over each pair, fetched, recorded per pair."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from affine import Affine

from flows.activation import activation
from flows.register_pair import register_pair
from samples.catalog.dem import write_dem_catalog
from stac.scene import Scene

STEP = 1.0 / 3600.0


def write_cog(path, lon0: float, lat0: float, size: int = 72):
    """A geographic DEM COG of 1″ pixels whose upper-left corner is at lon0, lat0."""
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(STEP, 0.0, lon0, 0.0, -STEP, lat0),
    ) as ds:
        ds.write(np.full((1, size, size), 700.0, np.float32))
    return path


def records(work) -> list[dict]:
    return [json.loads(p.read_text()) for p in (work / "pairs").rglob("record.json")]


def test_activation_finds_fetches_and_records_the_dem(
    sample, activation_params, new_workdir, tmp_path
):
    src = tmp_path / "src"
    src.mkdir()
    tiles = [write_cog(src / "n37e037.tif", 37.60, 37.10), write_cog(src / "far.tif", 20.0, 50.0)]
    dem_catalog = write_dem_catalog(tmp_path / "dem", tiles, "cop-dem-glo-30")
    work = new_workdir("dem-work")
    params = activation_params(work, catalogs=sample["catalogs"] + [str(dem_catalog)])
    summary = activation(**params, dem_collection="cop-dem-glo-30")
    assert summary["runs"] == 1 and summary["failed"] == 0
    (record,) = records(work)
    dsm = record["height"]["dsm"]
    assert dsm["path"].endswith("n37e037.tif") and dsm["crs"] == "EPSG:4326"
    assert dsm["coverage"] == 1.0


def test_register_pair_without_dem_records_no_height(sample, activation_params, new_workdir):
    from stac.readers import discover

    scenes = discover(sample["catalogs"])
    optical = next(s for s in scenes if s.sensor == "optical")
    sar = next(s for s in scenes if s.sensor == "sar")
    work = new_workdir("no-dem-work")
    record = register_pair(
        Scene.to_record(optical), Scene.to_record(sar), method="zero", workdir=str(work)
    )
    assert record["height"] is None
