"""Geographic (EPSG:4326) grids: the SN9 map, its score and the metres are the UTM ones."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS, Geod

from core.grid import Grid, ground_pixel_size, north_up_grid, transform_points
from models.displacement import DisplacementField, sn9_lattice, sn9_lattice_step
from models.registration import register, write_displacement
from models.scoring import (
    Tiepoints,
    read_tiepoints,
    reference_shift,
    score_displacement,
    score_shifts,
)
from samples.synth import SceneSpec, ShiftModel, synthesize_pair

UTM = CRS.from_epsg(32637)
WGS84 = CRS.from_epsg(4326)
CENTRE = (377100.0, 4105900.0)
GEOD = Geod(ellps="WGS84")
SHIFT = ShiftModel(offset=(6.0, -4.0), linear=(0.02, -0.01, 0.015, 0.025), centre=CENTRE)


def geographic_grid(pixel_m: float, width: int = 200, height: int = 160) -> Grid:
    """A north-up EPSG:4326 grid whose pixels are about ``pixel_m`` metres on the ground."""
    lon, lat = transform_points(UTM, WGS84, np.array([CENTRE[0]]), np.array([CENTRE[1]]))
    lon0, lat0 = float(lon[0]), float(lat[0])
    # metres per degree along the parallel and along the meridian, from the ellipsoid
    m_lon = GEOD.inv(lon0, lat0, lon0 + 0.01, lat0)[2] / 0.01
    m_lat = GEOD.inv(lon0, lat0, lon0, lat0 + 0.01)[2] / 0.01
    t = Affine(pixel_m / m_lon, 0.0, lon0, 0.0, -pixel_m / m_lat, lat0)
    return Grid(WGS84, t, width, height)


def affine_field(resolution: float = 10.0) -> DisplacementField:
    """A UTM field around CENTRE that changes across the grid (a constant map would be wrong)."""
    x, y = CENTRE
    grid = north_up_grid(UTM, (x - 200, y - 200, x + 300, y + 200), resolution)
    return DisplacementField.from_function(grid, SHIFT)


def test_ground_pixel_size_of_a_geographic_grid_is_in_metres():
    grid = geographic_grid(0.48)
    gx, gy = ground_pixel_size(grid)
    # UTM metres differ from the ellipsoid's by the zone's scale factor (< 0.05 % here)
    assert gx == pytest.approx(0.48, rel=1e-3) and gy == pytest.approx(0.48, rel=1e-3)
    assert ground_pixel_size(grid, WGS84) == pytest.approx(grid.pixel_size)


def test_lattice_step_on_a_geographic_grid_is_half_a_field_cell():
    fld = affine_field(10.0)
    geo = geographic_grid(0.48)
    utm = north_up_grid(UTM, (CENTRE[0], CENTRE[1] - 80, CENTRE[0] + 100, CENTRE[1]), 0.48)
    # 10 m / 0.48 m / 2 = 10.4: ten optical pixels between lattice nodes, as in UTM
    assert sn9_lattice_step(fld.grid, utm, 100, 80) == 10
    assert sn9_lattice_step(fld.grid, geo, 100, 80) == 10


def test_sn9_map_on_a_geographic_grid_follows_the_field():
    fld = affine_field(10.0)
    geo = geographic_grid(0.48)
    lattices = [sn9_lattice(fld, geo, 0, 0, geo.height, geo.width, step) for step in (None, 1)]
    fast, exact = ([lat.band("dx"), lat.band("dy")] for lat in lattices)
    # the field changes by several pixels across the grid, and the map follows it
    assert np.ptp(exact[0]) > 2.0 and np.ptp(exact[1]) > 2.0
    np.testing.assert_allclose(fast[0], exact[0], atol=0.02)
    np.testing.assert_allclose(fast[1], exact[1], atol=0.02)
    # the convention: dx = (x_sar - x_opt) / gt[1] with both positions in the optical CRS
    col, row = np.array([20.0, 150.0]), np.array([30.0, 120.0])
    xo, yo = geo.pixel_to_map(col, row)
    xw, yw = transform_points(WGS84, UTM, xo, yo)
    ddx, ddy = SHIFT(xw, yw)
    xs, ys = transform_points(UTM, WGS84, xw + ddx, yw + ddy)
    r, c = row.astype(int), col.astype(int)
    np.testing.assert_allclose(fast[0][r, c], (xs - xo) / geo.transform.a, atol=0.05)
    np.testing.assert_allclose(fast[1][r, c], (ys - yo) / geo.transform.e, atol=0.05)


def test_score_in_metres_on_a_geographic_grid():
    geo = geographic_grid(0.48, 400, 400)
    sar = Grid(WGS84, geo.transform, 400, 400)
    rng = np.random.default_rng(3)
    orow, ocol = rng.integers(0, 380, 30).astype(float), rng.integers(0, 380, 30).astype(float)
    tp = Tiepoints(orow + 7, ocol + 5, orow, ocol)
    ref_dx, ref_dy = reference_shift(tp, geo, sar)
    np.testing.assert_allclose((ref_dx, ref_dy), (np.full(30, 5.0), np.full(30, 7.0)))
    s = score_shifts(ref_dx + 3.0, ref_dy + 4.0, tp, geo, sar)
    assert s.summary()["mean_px"] == pytest.approx(5.0)
    # the ground distance between the predicted and the reference SAR positions
    xo, yo = geo.pixel_to_map(ocol, orow)
    a, e = geo.transform.a, geo.transform.e
    lon_p, lat_p = xo + (ref_dx + 3.0) * a, yo + (ref_dy + 4.0) * e
    lon_r, lat_r = xo + ref_dx * a, yo + ref_dy * e
    ground = GEOD.inv(lon_p, lat_p, lon_r, lat_r)[2]
    np.testing.assert_allclose(s.error_m, ground, rtol=1e-3)
    assert s.summary()["mean_m"] == pytest.approx(5 * 0.48, rel=1e-3)


# ------------------------------------------------------------------ one pair, two CRSs


def spec(grid_crs: str | None) -> SceneSpec:
    return SceneSpec(
        size_m=160.0,
        sar_appearance="luminance",
        speckle_looks=200.0,
        shift=ShiftModel(offset=(14.0, -9.0), linear=(0.004, -0.003, 0.002, 0.005), centre=CENTRE),
        origin=(377000.0, 4106000.0),
        grid_crs=grid_crs,
    )


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("geographic")
    return {
        "utm": synthesize_pair(root / "utm", spec(None), "p"),
        "wgs84": synthesize_pair(root / "wgs84", spec("EPSG:4326"), "p"),
    }


def test_synthetic_pair_is_written_on_geographic_grids(pairs):
    import rasterio

    p = pairs["wgs84"]
    for path in (p.optical, p.sar):
        with rasterio.open(path) as ds:
            assert CRS.from_user_input(ds.crs) == WGS84
    gx, gy = ground_pixel_size(p.optical_grid)
    assert gx == pytest.approx(0.5, rel=0.03) and gy == pytest.approx(0.5, rel=0.03)
    assert not p.optical_grid.is_rotated and p.sar_grid.is_rotated


def registered_score(synthetic, method: str, out) -> dict[str, float]:
    pair = synthetic.open()
    overrides = {"workers": "1"} if method == "local" else None
    result = register(pair, method, overrides)
    disp = write_displacement(result.field, pair.optical.grid, out).displacement
    tp = read_tiepoints(synthetic.tiepoints)
    return score_displacement(disp, tp, pair.optical.grid, pair.sar.grid).summary()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["global-affine", "local"])
def test_geographic_pair_scores_as_the_utm_pair(pairs, method, tmp_path):
    utm = registered_score(pairs["utm"], method, tmp_path / "utm.tif")
    geo = registered_score(pairs["wgs84"], method, tmp_path / "wgs84.tif")
    assert utm["mean_px"] < 1.0, utm
    assert abs(geo["mean_px"] - utm["mean_px"]) <= 0.2, (geo, utm)
    # metres on the ground: about half a metre per optical pixel on both grids
    for s in (utm, geo):
        assert s["mean_m"] == pytest.approx(0.5 * s["mean_px"], rel=0.05), s
