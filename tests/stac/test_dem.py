"""DEM discovery: the DEM item over a pair is found in a static catalog and fetched like a scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from core.errors import FetchError
from models.height import open_height
from samples.catalog.dem import write_dem_catalog
from stac.dem import find_dem
from stac.fetch import fetch

STEP = 1.0 / 3600.0


def write_cog(path, lon0: float, lat0: float, size: int = 72, value: float = 100.0):
    """A geographic DEM COG (EPSG:4326, 1″ pixels, upper-left corner at lon0, lat0)."""
    data = np.full((1, size, size), value, np.float32)
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
        nodata=-32767.0,
    ) as ds:
        ds.write(data)
    return path


@pytest.fixture
def dem_catalog(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    tiles = [
        write_cog(src / "west.tif", 37.60, 37.10, value=100.0),
        write_cog(src / "east.tif", 37.62, 37.10, value=200.0),  # east half of the pair
        write_cog(src / "far.tif", 20.00, 50.00),
    ]
    other = write_dem_catalog(tmp_path / "other", [write_cog(src / "x.tif", 37.6, 37.1)], "x")
    return write_dem_catalog(tmp_path / "dem", tiles), other


PAIR = box(37.614, 37.085, 37.624, 37.095)  # WGS84: 60 % on "west" (to 37.62 E), 40 % on "east"


def test_the_item_covering_most_of_the_pair_is_found_and_fetched(dem_catalog, tmp_path):
    catalog, other = dem_catalog
    dem = find_dem(PAIR, "cop-dem-glo-30", catalogs=[str(catalog), str(other)])
    assert dem is not None and dem.id == "west" and dem.collection == "cop-dem-glo-30"
    assert (
        dem.coverage == pytest.approx(0.6, abs=0.01)
        and dem.checksum
        and dem.checksum.startswith("1220")
    )
    path = fetch(dem.href, tmp_path / "cache", dem.checksum, source=dem.item_href)
    assert open_height(path).raster.grid.crs.to_epsg() == 4326


def test_no_item_of_the_collection_over_the_pair(dem_catalog):
    catalog, other = dem_catalog
    assert find_dem(box(10.0, 10.0, 10.1, 10.1), catalogs=[str(catalog)]) is None
    assert find_dem(PAIR, "cop-dem-glo-90", catalogs=[str(catalog), str(other)]) is None


def test_a_changed_dem_fails_its_checksum(dem_catalog, tmp_path):
    catalog, _ = dem_catalog
    dem = find_dem(PAIR, catalogs=[str(catalog)])
    write_cog(Path(dem.href), 37.60, 37.10, value=5.0)  # replaced after it was catalogued
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(dem.href, tmp_path / "cache", dem.checksum, source=dem.item_href)
