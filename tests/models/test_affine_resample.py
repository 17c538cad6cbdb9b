"""OpenCV's bilinear resampling where GDAL's warp is plain bilinear (models/affine_resample.py)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from core.grid import north_up_grid
from models import raster
from models.raster import open_raster, read_on_grid


def _speckled(tmp_path, rotation: float) -> raster.RasterSource:
    """A rotated 0.65 m raster of speckle (no data nowhere)."""
    rng = np.random.default_rng(2)
    data = (rng.gamma(1.0, 60.0, (400, 400))).astype(np.float32)
    t = Affine.translation(1000, 2000) @ Affine.rotation(rotation) @ Affine.scale(0.65, -0.65)
    path = tmp_path / f"sar{rotation}.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=400,
        height=400,
        count=1,
        dtype="float32",
        crs=CRS.from_epsg(32637),
        transform=t,
    ) as ds:
        ds.write(data[None])
    return open_raster(path, "sar")


@pytest.mark.parametrize(
    ("rotation", "res", "plain"),
    [
        (18.8, 0.5, True),  # finer than the rotated source's window: plain bilinear
        (0.0, 0.6, True),  # finer, north-up
        (18.8, 0.65, False),  # the rotation widens the window: GDAL widens its kernel
        (0.0, 1.0, False),  # coarser: GDAL's kernel widens
    ],
)
def test_reads_equal_gdal_warps_and_take_opencv_only_where_plain(
    tmp_path, monkeypatch, rotation, res, plain
):
    src = _speckled(tmp_path, rotation)
    cx, cy = src.grid.transform * (200, 200)
    dst = north_up_grid(src.grid.crs, (cx - 60, cy - 60, cx + 60, cy + 60), res)
    taken = []
    real = raster.warp_affine

    def spy(*args):
        taken.append(True)
        return real(*args)

    monkeypatch.setattr(raster, "warp_affine", spy)
    fast = read_on_grid(src, dst)[0]
    assert bool(taken) == plain
    monkeypatch.setattr(raster, "plain_bilinear", lambda *args: False)
    gdal = read_on_grid(src, dst)[0]
    assert np.isfinite(fast).all() and np.isfinite(gdal).all()
    if plain:  # the same values as GDAL's warper, to float rounding
        np.testing.assert_allclose(fast, gdal, rtol=1e-4, atol=1e-3)


def test_a_window_at_the_raster_edge_keeps_gdal(tmp_path, monkeypatch):
    src = _speckled(tmp_path, 18.8)
    called = []
    monkeypatch.setattr(raster, "warp_affine", lambda *args: called.append(True))
    # a destination over the raster's corner: its pixels there lack neighbours
    x0, y0 = src.grid.transform * (0, 0)
    dst = north_up_grid(src.grid.crs, (x0 - 20, y0 - 40, x0 + 40, y0 + 20), 0.5)
    out = read_on_grid(src, dst)[0]
    assert not called and np.isnan(out).any() and np.isfinite(out).any()


def test_a_window_with_no_data_keeps_gdal(tmp_path, monkeypatch):
    crs = CRS.from_epsg(32637)
    t = Affine.translation(1000, 2000) @ Affine.rotation(18.8) @ Affine.scale(0.65, -0.65)
    data = np.full((200, 200), 7.0, np.float32)
    data[90:110, 90:110] = 0.0
    path = tmp_path / "hole.tif"
    profile = {"driver": "GTiff", "width": 200, "height": 200, "count": 1, "dtype": "float32"}
    with rasterio.open(path, "w", crs=crs, transform=t, nodata=0.0, **profile) as ds:
        ds.write(data[None])
    src = open_raster(path, "sar")
    called = []
    monkeypatch.setattr(raster, "warp_affine", lambda *args: called.append(True))
    cx, cy = t * (100, 100)
    out = read_on_grid(src, north_up_grid(crs, (cx - 20, cy - 20, cx + 20, cy + 20), 0.5))[0]
    # GDAL weighs only the valid pixels next to the hole
    assert not called and np.isnan(out).any()
    np.testing.assert_allclose(out[np.isfinite(out)], 7.0, rtol=1e-6)
