"""Grids, windowed reads onto working grids, rotated SAR grids, CRS handling."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from core.errors import InputError
from core.grid import Grid, metric_crs_for, north_up_grid
from models.raster import _source_window, footprint_overlap, open_raster, read_on_grid


def write(path, data, crs, transform, nodata=None):
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=str(data.dtype),
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)
    return path


def ramp(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx * 1.0 + yy * 1000.0).astype(np.float32)


def test_rotated_grid_round_trip():
    t = Affine.translation(500000, 4100000) @ Affine.rotation(23) @ Affine.scale(0.6, -0.6)
    g = Grid(CRS.from_epsg(32637), t, 100, 80)
    assert g.is_rotated
    assert g.pixel_size == pytest.approx((0.6, 0.6))
    cols, rows = np.array([0.0, 10.5, 99.0]), np.array([0.0, 3.25, 79.0])
    x, y = g.pixel_to_map(cols, rows)
    c2, r2 = g.map_to_pixel(x, y)
    np.testing.assert_allclose(c2, cols, atol=1e-9)
    np.testing.assert_allclose(r2, rows, atol=1e-9)
    assert g.footprint().area == pytest.approx(100 * 80 * 0.36, rel=1e-9)


def rotated_index_raster(tmp_path):
    """A raster on a grid rotated 30° whose bands hold each pixel's column and row, and a north-up
    grid inside it."""
    crs = CRS.from_epsg(32637)
    t = Affine.translation(500000, 4100000) @ Affine.rotation(30) @ Affine.scale(0.5, -0.5)
    yy, xx = np.mgrid[0:200, 0:200]
    src = open_raster(
        write(tmp_path / "rot.tif", np.stack([xx, yy]).astype(np.float32), crs, t), "raster"
    )
    return src, north_up_grid(crs, (500050, 4099965, 500080, 4099995), 0.5)


def test_read_rotated_sar_onto_north_up_grid(tmp_path):
    src, dst = rotated_index_raster(tmp_path)
    out = read_on_grid(src, dst, resampling=rasterio.enums.Resampling.bilinear)
    x, y = dst.pixel_centres()
    col, row = src.grid.map_to_pixel(x, y)
    assert np.isfinite(out).all()
    # each destination pixel holds the source pixel index found through the rotated geotransform
    np.testing.assert_allclose(out[0], col - 0.5, atol=0.1)
    np.testing.assert_allclose(out[1], row - 0.5, atol=0.1)


def test_read_is_windowed(tmp_path):
    crs = CRS.from_epsg(32637)
    src = open_raster(
        write(tmp_path / "big.tif", ramp(1000, 1000), crs, Affine(1, 0, 0, 0, -1, 1000)), "raster"
    )
    dst = north_up_grid(crs, (100, 100, 150, 150), 1.0)
    w = _source_window(src, dst)
    assert w.width <= 60 and w.height <= 60  # only the window under the grid is read


def test_decimated_read_matches_block_mean(tmp_path):
    crs = CRS.from_epsg(32637)
    data = np.random.default_rng(0).random((400, 400)).astype(np.float32)
    src = open_raster(
        write(tmp_path / "n.tif", data, crs, Affine(0.5, 0, 0, 0, -0.5, 200)), "raster"
    )
    dst = north_up_grid(crs, (0, 0, 200, 200), 4.0)
    out = read_on_grid(src, dst)[0]
    assert out.shape == (50, 50)
    assert abs(float(np.nanmean(out)) - float(data.mean())) < 0.01
    assert float(np.nanstd(out)) < float(data.std()) / 3  # averaged, not point-sampled


def test_read_next_to_no_data_weighs_only_valid_pixels(tmp_path):
    # a rotated raster, constant but for a no-data hole: destination pixels whose kernel
    # reaches into the hole keep the constant (the hole's pixels get no weight), and a
    # raster without no-data reads the same values through the fast path
    crs = CRS.from_epsg(32637)
    t = Affine.translation(1000, 2000) @ Affine.rotation(14) @ Affine.scale(0.65, -0.65)
    data = np.full((200, 200), 7.0, np.float32)
    full = open_raster(write(tmp_path / "full.tif", data, crs, t), "raster")
    data[80:120, 80:120] = 0.0
    holed = open_raster(write(tmp_path / "hole.tif", data, crs, t, nodata=0.0), "raster")
    cx, cy = t * (100, 100)  # the hole's centre; the box lies inside the raster
    dst = north_up_grid(crs, (cx - 35, cy - 35, cx + 35, cy + 35), 1.3)
    with_hole = read_on_grid(holed, dst)[0]
    without = read_on_grid(full, dst)[0]
    col, row = holed.grid.map_to_pixel(*dst.pixel_centres())
    near = (col > 78) & (col < 122) & (row > 78) & (row < 122)  # the hole and 2 pixels around
    assert np.isnan(with_hole[near]).any() and np.isfinite(with_hole[~near]).all()
    assert np.isfinite(without).all()
    np.testing.assert_allclose(with_hole[np.isfinite(with_hole)], 7.0, rtol=1e-6)
    np.testing.assert_allclose(without, 7.0, rtol=1e-6)


def test_geographic_crs_works_in_local_utm(tmp_path):
    p = write(
        tmp_path / "geo.tif",
        np.ones((3, 50, 50), np.uint8) * 100,
        "EPSG:4326",
        Affine(1e-5, 0, 37.0, 0, -1e-5, 37.1),
    )
    src = open_raster(p, "optical")
    assert metric_crs_for(src.grid) == CRS.from_epsg(32637)


def test_different_utm_zones_overlap(tmp_path):
    a = write(
        tmp_path / "a.tif",
        np.ones((3, 100, 100), np.uint8),
        "EPSG:32637",
        Affine(1, 0, 216000, 0, -1, 4110000),
    )
    # the same ground in zone 36
    from pyproj import Transformer

    x, y = Transformer.from_crs(32637, 32636, always_xy=True).transform(216000, 4110000)
    b = write(
        tmp_path / "b.tif",
        np.ones((1, 100, 100), np.uint8),
        "EPSG:32636",
        Affine(1, 0, x, 0, -1, y),
    )
    crs, overlap = footprint_overlap(open_raster(a, "optical"), open_raster(b, "sar"))
    assert crs == CRS.from_epsg(32637)
    assert overlap.area > 0.8 * 100 * 100


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "not found"),
        ("not_raster", "not a readable raster"),
        ("no_crs", "has no CRS"),
        ("two_bands", r"expected 1 \(panchromatic\) or 3\+"),
        ("all_nodata", "no valid pixels"),
    ],
)
def test_bad_optical_inputs(tmp_path, case, message):
    p = tmp_path / "x.tif"
    if case == "not_raster":
        p.write_text("hello")
    elif case == "no_crs":
        with rasterio.open(
            p, "w", driver="GTiff", width=10, height=10, count=3, dtype="uint8"
        ) as ds:
            ds.write(np.ones((3, 10, 10), np.uint8))
    elif case == "two_bands":
        write(p, np.ones((2, 10, 10), np.uint8), "EPSG:32637", Affine(1, 0, 0, 0, -1, 10))
    elif case == "all_nodata":
        write(
            p, np.zeros((3, 10, 10), np.uint8), "EPSG:32637", Affine(1, 0, 0, 0, -1, 10), nodata=0
        )
    with pytest.raises(InputError, match=message):
        open_raster(p, "optical")


def test_sar_band_count_and_no_overlap(tmp_path):
    p = write(
        tmp_path / "s.tif", np.ones((2, 10, 10), np.uint8), "EPSG:32637", Affine(1, 0, 0, 0, -1, 10)
    )
    with pytest.raises(InputError, match="expected 1 amplitude band"):
        open_raster(p, "sar")
    a = write(
        tmp_path / "a.tif", np.ones((3, 10, 10), np.uint8), "EPSG:32637", Affine(1, 0, 0, 0, -1, 10)
    )
    b = write(
        tmp_path / "b.tif",
        np.ones((1, 10, 10), np.uint8),
        "EPSG:32637",
        Affine(1, 0, 5000, 0, -1, 10),
    )
    with pytest.raises(InputError, match="do not overlap"):
        footprint_overlap(open_raster(a, "optical"), open_raster(b, "sar"))


def test_sample_points_through_a_rotated_grid_and_decimated(tmp_path):
    from models.sampling import sample_points

    src, dst = rotated_index_raster(tmp_path)
    crs = src.grid.crs
    x, y = dst.pixel_centres()
    col, row = src.grid.map_to_pixel(x, y)
    np.testing.assert_allclose(
        sample_points(src, x, y, crs), col - 0.5, atol=0.05
    )  # first band: the column index
    # a coarse lattice reads block averages of the full-resolution pixels (never nearest-neighbour
    # overviews)
    data = np.random.default_rng(0).random((400, 400)).astype(np.float32)
    noisy = open_raster(
        write(tmp_path / "n.tif", data, crs, Affine(0.5, 0, 0, 0, -0.5, 200)), "raster"
    )
    coarse = north_up_grid(crs, (0, 0, 200, 200), 4.0)
    out = sample_points(noisy, *coarse.pixel_centres(), crs)
    assert out.shape == (50, 50)
    assert abs(float(np.nanmean(out)) - float(data.mean())) < 0.01
    assert float(np.nanstd(out)) < float(data.std()) / 3


def test_sample_points_decimated_luminance_is_the_block_mean_and_no_data_blocks_are_nan(tmp_path):
    from models.sampling import sample_points

    crs = CRS.from_epsg(32637)
    rgb = np.random.default_rng(3).integers(1, 256, (3, 90, 90)).astype(np.uint8)
    rgb[:, 45, 10] = 0  # one no-data pixel, in block (row 11, column 2) of 4 × 4 blocks
    src = open_raster(
        write(tmp_path / "rgb.tif", rgb, crs, Affine(0.5, 0, 0, 0, -0.5, 44), nodata=0), "optical"
    )
    coarse = north_up_grid(crs, (0, 0, 44, 44), 2.0)  # pixel centres on 4 × 4 block centres
    weights = (0.25, 0.5, 0.25)
    out = sample_points(src, *coarse.pixel_centres(), crs, weights)
    blocks = rgb[:, :88, :88].astype(np.float64).reshape(3, 22, 4, 22, 4).mean(axis=(2, 4))
    expected = np.tensordot(np.array(weights), blocks, axes=1)
    assert np.isnan(out[11, 2])
    # bilinear sampling at a block centre still touches the next block: leave out the no-data
    # block's neighbours and the last row and column (next to the partial blocks at the end)
    far = np.ones(out.shape, bool)
    far[10:13, 1:4] = False
    far[-1, :] = far[:, -1] = False
    np.testing.assert_allclose(out[far], expected[far], atol=1e-3)
