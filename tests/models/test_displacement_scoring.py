"""The SN9 displacement convention, COG output, tiepoint CSVs and the SN9 score."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from core.errors import InputError
from core.grid import Grid, north_up_grid
from models.displacement import DisplacementField
from models.registration import write_displacement
from models.scoring import (
    Tiepoints,
    read_tiepoints,
    reference_shift,
    score_displacement,
    score_shifts,
)
from tests.conftest import shared_path

UTM = CRS.from_epsg(32637)


def optical_grid(res=0.5):
    return Grid(UTM, Affine(res, 0, 377000, 0, -res, 4106000), 1500, 1100)


def test_sn9_sign_convention_and_cog(tmp_path):
    opt = optical_grid()
    # SAR sees each optical point 3 m east and 2 m north
    field = DisplacementField.constant(
        north_up_grid(UTM, (376900, 4105300, 377800, 4106100), 10.0), 3.0, 2.0, 0.7
    )
    out = write_displacement(field, opt, tmp_path / "d.tif", tmp_path / "c.tif")
    with rasterio.open(out.displacement) as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes[0]) == (1500, 1100, 2, "float32")
        assert ds.transform == opt.transform and ds.crs == opt.crs
        assert ds.descriptions == ("dx", "dy")
        assert ds.tags(1)["units"] == "pixel"
        assert math.isnan(ds.nodata)
        assert ds.overviews(1)  # internal overviews
        assert ds.profile["compress"].lower() in ("deflate", "zstd")
        d = ds.read()
    np.testing.assert_allclose(d[0], 6.0, atol=1e-4)  # +3 m / gt1 (0.5)
    np.testing.assert_allclose(d[1], -4.0, atol=1e-4)  # +2 m north / gt5 (-0.5)
    with rasterio.open(out.confidence) as ds:
        np.testing.assert_allclose(ds.read(1), 0.7, atol=1e-5)
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(str(out.displacement))[0]
    assert not list(tmp_path.glob(".*"))  # no scratch files left behind


def test_cog_writes_bound_gdal_block_cache_and_restore_it():
    from rasterio.env import get_gdal_config

    from models.cog import bounded_gdal_cache

    before = get_gdal_config("GDAL_CACHEMAX")
    limit = 64 * 2**20
    with bounded_gdal_cache(limit):
        assert get_gdal_config("GDAL_CACHEMAX") == min(before, limit)
    assert get_gdal_config("GDAL_CACHEMAX") == before


def test_overlapping_cog_writes_keep_the_cache_bound_until_the_last_one_ends():
    import threading

    from rasterio.env import get_gdal_config, set_gdal_config

    from models.cog import bounded_gdal_cache

    before = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", 512 * 2**20)
    limit = 64 * 2**20
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first() -> None:
        with bounded_gdal_cache(limit):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with bounded_gdal_cache(limit):
            second_in.set()
            first_out.wait(10)
            seen.append(get_gdal_config("GDAL_CACHEMAX"))

    try:
        threads = [threading.Thread(target=f) for f in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert seen == [limit]  # still bounded after the first write ended
        assert get_gdal_config("GDAL_CACHEMAX") == 512 * 2**20
    finally:
        set_gdal_config("GDAL_CACHEMAX", before)


def test_lattice_product_equals_exact_per_pixel_shifts():
    from models.displacement import sn9_lattice

    opt = optical_grid()
    fg = north_up_grid(UTM, (376900, 4105300, 377800, 4106100), 10.0)
    # a field that varies linearly: bilinear interpolation between lattice nodes is exact for it
    field = DisplacementField.from_function(
        fg, lambda x, y: (0.01 * (x - 377000), -0.02 * (y - 4105500)), 0.5
    )
    bands = ("dx", "dy", "confidence")
    fast, exact = (
        [sn9_lattice(field, opt, 37, 53, 300, 200, step).band(b) for b in bands]
        for step in (None, 1)
    )
    assert fast[0].shape == (300, 200)
    for a, b in zip(fast, exact, strict=False):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert np.ptp(fast[0]) > 1.0  # the field really varies over the window


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (7, 9)])
def test_lattice_bilinear_is_map_coordinates_clamped_at_the_edges(shape):
    from scipy.ndimage import map_coordinates

    from models.displacement import lattice_bilinear

    values = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    # points before the first node, between nodes, on nodes and past the last node
    rows = np.linspace(-2.0, shape[0] + 1.5, 23)
    cols = np.linspace(-1.5, shape[1] + 2.0, 19)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    expected = map_coordinates(values.astype(np.float64), [rr, cc], order=1, mode="nearest")
    got = lattice_bilinear(values, rows, cols)
    assert got.shape == (23, 19) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_field_in_another_crs_is_converted_through_map_coordinates(tmp_path):
    # optical in zone 37, field in zone 36: the shift must still be 3 m east, 2 m north
    opt = optical_grid()
    to36 = Transformer.from_crs(UTM, 32636, always_xy=True)
    x, y = to36.transform(377375, 4105725)
    g36 = north_up_grid(CRS.from_epsg(32636), (x - 600, y - 600, x + 600, y + 600), 5.0)
    xx, yy = g36.pixel_centres()
    # the displacement expressed in zone-36 axes (grid convergence rotates it)
    X37, Y37 = Transformer.from_crs(32636, UTM, always_xy=True).transform(xx, yy)
    X36b, Y36b = to36.transform(X37 + 3.0, Y37 + 2.0)
    field = DisplacementField(
        g36,
        (X36b - xx).astype(np.float32),
        (Y36b - yy).astype(np.float32),
        np.ones(g36.shape, np.float32),
    )
    out = write_displacement(field, opt, tmp_path / "d.tif")
    with rasterio.open(out.displacement) as ds:
        d = ds.read()
    np.testing.assert_allclose(d[0], 6.0, atol=0.02)
    np.testing.assert_allclose(d[1], -4.0, atol=0.02)


def test_output_folder_must_exist(tmp_path):
    field = DisplacementField.constant(north_up_grid(UTM, (376900, 4105300, 377800, 4106100), 10.0))
    with pytest.raises(InputError, match="does not exist"):
        write_displacement(field, optical_grid(), tmp_path / "missing" / "d.tif")


def test_reference_shift_and_exact_prediction_scores_zero():
    opt = optical_grid(0.5)
    sar = Grid(
        UTM,
        Affine.translation(376990, 4106020) @ Affine.rotation(15) @ Affine.scale(0.65, -0.65),
        400,
        400,
    )
    rng = np.random.default_rng(1)
    orow, ocol = rng.integers(0, 1100, 20).astype(float), rng.integers(0, 1500, 20).astype(float)
    xo, yo = opt.pixel_to_map(ocol, orow)
    sc, sr = sar.map_to_pixel(xo + 4.0, yo - 1.0)
    tp = Tiepoints(sr, sc, orow, ocol)
    dx, dy = reference_shift(tp, opt, sar, rounding=False)
    np.testing.assert_allclose(dx, 8.0, atol=1e-6)
    np.testing.assert_allclose(dy, 2.0, atol=1e-6)
    s = score_shifts(np.full(20, 8.0), np.full(20, 2.0), tp, opt, sar)
    assert s.summary()["mean_px"] == 0.0
    s = score_shifts(np.full(20, 11.0), np.full(20, 6.0), tp, opt, sar)
    assert s.summary()["mean_px"] == pytest.approx(5.0)
    assert s.summary()["mean_m"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("a,b,c,d\n1,2,3,4\n", "expected exactly sar_row"),
        ("sar_row,sar_col,optical_row,optical_col\n1,2,x,4\n", "non-numeric"),
        ("sar_row,sar_col,optical_row,optical_col\n1,2,3\n", "expected 4 values"),
        ("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n9,2,3,4\n", "two different SAR pixels"),
        ("sar_row,sar_col,optical_row,optical_col\n", "no tiepoints"),
    ],
)
def test_malformed_tiepoint_csv(tmp_path, text, message):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=message):
        read_tiepoints(p)


def test_exact_duplicate_tiepoints(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n1,2,3,4\n5,6,7,8\n")
    assert len(read_tiepoints(p)) == 3  # kept, as the SN9 scorer counts them
    assert len(read_tiepoints(p, duplicates="drop")) == 2
    with pytest.raises(InputError, match="exact duplicate"):
        read_tiepoints(p, duplicates="error")


def test_tiepoints_out_of_bounds(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n5,6,7000,8\n")
    tp = read_tiepoints(p)
    with pytest.raises(InputError, match="outside the optical image"):
        tp.check_bounds(optical_grid(), optical_grid())


def test_real_sn9_zero_shift_statistics():
    """Zero-shift error of the real SN9 tiepoints equals the published offset statistics."""
    stats = json.loads(shared_path("sn9", "derived_geotransforms_and_stats.json").read_text())
    for name, gts in stats["geotransforms_gdal_order"].items():
        tp = read_tiepoints(shared_path("sn9", f"{name}.csv"))
        g = {k: Grid(UTM, Affine.from_gdal(*v), 20000, 20000) for k, v in gts.items()}
        ref_dx, ref_dy = reference_shift(tp, g["optical"], g["sar"])
        expected = stats["stats"][name]["offset_in_optical_px"]
        assert np.mean(ref_dx) == pytest.approx(expected["dx_mean"], abs=0.1)
        assert np.mean(ref_dy) == pytest.approx(expected["dy_mean"], abs=0.1)
        assert [ref_dx.min(), ref_dx.max()] == expected["dx_range"]
        score = score_shifts(
            np.zeros(len(tp)), np.zeros(len(tp)), tp, g["optical"], g["sar"], rounding=False
        )
        assert score.summary()["mean_m"] == pytest.approx(
            stats["stats"][name]["mean_residual_m_after_fitting (in-sample)"]["zero"], abs=0.05
        )


def test_score_displacement_reads_the_map(tmp_path):
    opt = optical_grid(0.5)
    field = DisplacementField.constant(
        north_up_grid(UTM, (376900, 4105300, 377800, 4106100), 10.0), 3.0, 2.0
    )
    out = write_displacement(field, opt, tmp_path / "d.tif")
    rng = np.random.default_rng(2)
    orow, ocol = rng.integers(0, 1100, 30).astype(float), rng.integers(0, 1500, 30).astype(float)
    xo, yo = opt.pixel_to_map(ocol, orow)
    sc, sr = opt.map_to_pixel(xo + 3.0, yo + 2.0)
    s = score_displacement(out.displacement, Tiepoints(sr, sc, orow, ocol), opt, opt)
    assert s.summary()["mean_px"] < 1e-3
