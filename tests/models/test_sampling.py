"""Tests of models.sampling: samples of rasters at map points and at a grid's pixel centres."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from affine import Affine
from pyproj import CRS

from core.grid import Grid, north_up_grid
from models.raster import open_raster
from models.sampling import sample_array, sample_grid, sample_points
from tests.conftest import write_geotiff

CRS_UTM = CRS.from_epsg(32637)


def _meshgrid_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres point by point, through the full affine transform."""
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    return grid.pixel_to_map(cols, rows)


def _source(tmp_path, transform: Affine, nodata: float | None = None):
    """A 3-band uint8 raster of noise (some zeros as no-data when ``nodata`` is 0)."""
    rng = np.random.default_rng(5)
    data = rng.integers(0 if nodata is not None else 1, 256, (3, 240, 260)).astype(np.uint8)
    path = write_geotiff(tmp_path / "src.tif", data, transform, "EPSG:32637", nodata)
    return open_raster(path, "optical")


def test_grid_centres_are_the_affine_centres_and_rotated_grids_have_no_axes():
    north = Grid(CRS_UTM, Affine(0.37, 0, 500000.1, 0, -0.53, 4100000.7), 31, 17)
    x, y = north.pixel_centres()
    ex, ey = _meshgrid_centres(north)
    assert np.array_equal(x, ex) and np.array_equal(y, ey)
    ax, ay = north.centre_axes()
    assert np.array_equal(ax, ex[0]) and np.array_equal(ay, ey[:, 0])
    rotated = Grid(CRS_UTM, Affine.rotation(10) @ Affine(0.5, 0, 0, 0, -0.5, 0), 8, 6)
    rx, ry = rotated.pixel_centres()
    ex, ey = _meshgrid_centres(rotated)
    assert np.array_equal(rx, ex) and np.array_equal(ry, ey)
    with pytest.raises(ValueError, match="rotated"):
        rotated.centre_axes()
    assert north.is_north_up and not rotated.is_north_up


@pytest.mark.parametrize("resolution", [0.5, 0.65, 1.3, 2.6])
@pytest.mark.parametrize("nodata", [None, 0])
def test_sample_grid_is_sample_points_at_the_pixel_centres(tmp_path, resolution, nodata):
    # native, finer-than-a-block and decimated grids, partly outside the source
    src = _source(tmp_path, Affine(0.5, 0, 500000, 0, -0.5, 4100000), nodata)
    grid = north_up_grid(CRS_UTM, (500010.3, 3999930.1 + 100000, 500140.9, 4100010.0), resolution)
    luma = (0.299, 0.587, 0.114)
    expected = sample_points(src, *_meshgrid_centres(grid), grid.crs, luma)
    out = sample_grid(src, grid, luma)
    assert out.shape == grid.shape
    assert np.isfinite(out).any() and np.isnan(out).any()
    np.testing.assert_array_equal(out, expected)


def test_sample_grid_through_a_rotated_source_falls_back_to_points(tmp_path):
    src = _source(
        tmp_path,
        Affine.translation(500000, 4100000) @ Affine.rotation(20) @ Affine(0.5, 0, 0, 0, -0.5, 0),
    )
    grid = north_up_grid(CRS_UTM, (500040, 4099930, 500090, 4099980), 0.5)
    expected = sample_points(src, *_meshgrid_centres(grid), grid.crs)
    out = sample_grid(src, grid)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, expected)


def _remap_reference(image: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """OpenCV's bilinear remap at fractional pixel positions, NaN outside (the reference)."""
    return cv2.remap(
        image,
        col.astype(np.float32),
        row.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def test_sample_array_on_a_north_up_grid_is_the_general_transform():
    grid = Grid(CRS_UTM, Affine(0.5, 0, 500000, 0, -0.5, 4100000), 40, 30)
    image = np.random.default_rng(2).random(grid.shape).astype(np.float32)
    x, y = _meshgrid_centres(grid)
    x, y = x + 0.37, y - 0.21
    out = sample_array(image, grid, x, y)
    col, row = grid.map_to_pixel(x, y)
    # the point-by-point transform, with the rotated grids' code path
    expected = _remap_reference(image, col - 0.5, row - 0.5)
    np.testing.assert_array_equal(out, expected)
    # pixel (5, 5) moved 0.74 px right and 0.42 px down: bilinear between its four neighbours
    fx, fy = 0.74, 0.42
    top = (1 - fx) * image[5, 5] + fx * image[5, 6]
    bottom = (1 - fx) * image[6, 5] + fx * image[6, 6]
    assert out[5, 5] == pytest.approx((1 - fy) * top + fy * bottom, abs=0.03)
    assert np.isnan(out[:, -1]).all()
