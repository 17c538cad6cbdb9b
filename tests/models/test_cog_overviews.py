"""COG overviews computed by NumPy (models/cog_overviews.py) against GDAL's own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.shutil import copy as rio_copy

from core.grid import Grid
from models.cog import CogSpec, write_cog
from models.cog_overviews import halve, overview_sizes

UTM = CRS.from_epsg(32637)


def test_levels_halve_rounding_up_until_one_block_holds_them():
    assert overview_sizes(10000, 10000, 512) == [
        (5000, 5000),
        (2500, 2500),
        (1250, 1250),
        (625, 625),
        (313, 313),
    ]
    assert overview_sizes(1300, 300, 512) == [(650, 150), (325, 75)]
    assert overview_sizes(512, 512, 512) == []


def test_average_is_the_mean_of_valid_pixels_per_cell():
    data = np.array([[[1, 2, 3], [3, np.nan, 5], [-9, -9, 7]]], np.float32)
    out = halve(data, -9.0, average=True)
    np.testing.assert_array_equal(out, [[[2.0, 4.0], [-9.0, 7.0]]])
    nan_nodata = halve(np.full((2, 2, 2), np.nan, np.float32), math.nan, average=True)
    assert nan_nodata.shape == (2, 1, 1) and np.isnan(nan_nodata).all()


def test_nearest_takes_each_cells_top_left_pixel():
    data = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    np.testing.assert_array_equal(halve(data, None, average=False), data[:, ::2, ::2])


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("float32", math.nan), ("float64", float(np.finfo(np.float64).min)), ("uint8", 0)],
)
def test_written_overviews_equal_gdals(tmp_path, dtype, nodata):
    side, block = 256, 32  # divisible by every level's factor: GDAL's sizes are the same
    rng = np.random.default_rng(1)
    data = (rng.random((2, side, side)) * 200 + 1).astype(dtype)
    data[:, :40, :24] = nodata
    grid = Grid(UTM, Affine(0.5, 0, 377000, 0, -0.5, 4106000), side, side)
    spec = CogSpec(count=2, dtype=dtype, nodata=nodata, descriptions=("a", "b"), block=block)
    out = write_cog(
        tmp_path / "ours.tif",
        grid,
        spec,
        lambda w: data[:, w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width],
    )
    # GDAL's COG driver building the overviews itself from the same pixels
    plain = tmp_path / "plain.tif"
    with rasterio.open(
        plain, "w", driver="GTiff", width=side, height=side, count=2, dtype=dtype,
        crs=UTM, transform=grid.transform, nodata=nodata,
    ) as ds:  # fmt: skip
        ds.write(data)
    resampling = "AVERAGE" if dtype.startswith("float") else "NEAREST"
    reference = tmp_path / "gdal.tif"
    rio_copy(str(plain), str(reference), driver="COG", BLOCKSIZE=block,
             OVERVIEW_RESAMPLING=resampling)  # fmt: skip
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(str(out))[0]
    with rasterio.open(out) as ours, rasterio.open(reference) as gdal:
        assert ours.overviews(1) == gdal.overviews(1) == [2, 4, 8]
        assert ours.descriptions == ("a", "b")
        np.testing.assert_array_equal(ours.read(), data)
    for level in range(3):
        with (
            rasterio.open(out, overview_level=level) as ours,
            rasterio.open(reference, overview_level=level) as gdal,
        ):
            np.testing.assert_allclose(ours.read(), gdal.read(), rtol=1e-6, equal_nan=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gdal.tif", "ours.tif", "plain.tif"]
