"""The urban simulator is exact where it says so: terrain layover, building layover, shadow,
double bounce, tags and ground-only tiepoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Geod, Transformer
from shapely.geometry import Point, Polygon

from core.grid import Grid
from models.sampling import sample_array
from samples.urban import (
    UrbanSpec,
    _radar_frame,
    ground_tiepoints,
    simulate_urban,
    write_urban,
)
from samples.urban_scene import Layout, Terrain

SPEC = UrbanSpec(
    size_px=480,
    optical_res=0.3,
    sar_res=0.42,
    incidence_deg=32.0,
    look_azimuth_deg=250.0,
    max_height_m=30.0,
    relief_m=30.0,
    offset_m=(7.0, -4.0),
    seed=5,
)


def _look_vector(azimuth: float, x: float, y: float) -> tuple[float, float]:
    """The true-north azimuth as a UTM map direction: a 10 m step along it, projected."""
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)
    lon, lat = to_utm.transform(x, y, direction="INVERSE")
    lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, azimuth, 10.0)
    x2, y2 = to_utm.transform(lon2, lat2)
    return (x2 - x) / 10.0, (y2 - y) / 10.0


@pytest.fixture(scope="module")
def scene():
    return simulate_urban(SPEC)


def test_reference_at_ground_tiepoints_is_the_terrain_layover(scene):
    tp = ground_tiepoints(scene, 8, 10.0, seed=1)
    assert len(tp) >= 20
    og, sg = scene.optical_grid, scene.sar_grid
    x, y = og.pixel_to_map(tp.optical_col, tp.optical_row)
    # analytic: h_terrain·cot(θ) towards the sensor, plus the offset
    ex, ey = _look_vector(SPEC.look_azimuth_deg, x.mean(), y.mean())
    lay = scene.terrain(x, y) / math.tan(math.radians(SPEC.incidence_deg))
    ax, ay = -lay * ex + 7.0, -lay * ey - 4.0
    assert np.ptp(lay) > 2.0  # the terrain field is not a constant
    # the stored reference field (pixel centres, bilinear) agrees within 0.05 px
    rx = sample_array(scene.reference[0], og, x, y)
    ry = sample_array(scene.reference[1], og, x, y)
    assert np.max(np.hypot(rx - ax, ry - ay)) / SPEC.optical_res < 0.05
    # and the tiepoints' SAR positions are the analytic ones (the look direction is taken at
    # the scene centre: the meridian convergence varies by millimetres across it)
    sx, sy = sg.pixel_to_map(tp.sar_col, tp.sar_row)
    assert np.max(np.hypot(sx - x - ax, sy - y - ay)) / SPEC.optical_res < 0.05


def test_tiepoints_keep_off_structures(scene):
    tp = ground_tiepoints(scene, 8, 10.0, seed=1)
    x, y = scene.optical_grid.pixel_to_map(tp.optical_col + 0.5, tp.optical_row + 0.5)
    polys = [Polygon(b) for b in scene.layout.buildings]
    near = [min(p.distance(Point(a, b)) for p in polys) for a, b in zip(x, y, strict=True)]
    assert min(near) >= 10.0 - SPEC.optical_res
    # the scene does have buildings close to other pixels
    assert (scene.clearance_m < 10.0).mean() > 0.2


def test_files_and_geometry_tags(scene, tmp_path):
    files = write_urban(tmp_path, scene)
    with rasterio.open(tmp_path / files["sar"]) as ds:
        tags = ds.tags()
        assert ds.transform.b != 0  # rotated grid
    assert float(tags["SAR_INCIDENCE_ANGLE"]) == pytest.approx(32.0)
    assert float(tags["SAR_LOOK_AZIMUTH"]) == pytest.approx(250.0)
    assert tags["SAR_GROUND_PROJECTED"] == "true"
    with rasterio.open(tmp_path / files["dsm"]) as dsm, rasterio.open(tmp_path / "dtm.tif") as dtm:
        above = dsm.read(1) - dtm.read(1)
    assert above.max() > 3.0 and above.min() == pytest.approx(0.0, abs=1e-4)
    assert (above[above > 0] >= 3.0 - 1e-3).all()


def _one_building(h: float) -> tuple[Layout, Terrain, Grid]:
    """A 20 m square building of height ``h`` on flat ground, and a 120 m ground grid."""
    sq = np.array([[490.0, 490.0], [510.0, 490.0], [510.0, 510.0], [490.0, 510.0]])
    layout = Layout(
        (sq,), np.array([h], np.float32), np.array([1.0], np.float32), (), (), np.zeros((0, 3))
    )
    grid = Grid(CRS.from_epsg(32637), Affine(0.5, 0, 440.0, 0, -0.5, 560.0), 240, 240)
    return layout, Terrain((500.0, 500.0), (0.0, 0.0), ()), grid


def test_building_layover_shadow_and_double_bounce():
    h, theta = 20.0, 40.0
    spec = UrbanSpec(
        optical_res=0.25, incidence_deg=theta, look_azimuth_deg=90.0, max_height_m=h, relief_m=0.0
    )
    layout, terrain, grid = _one_building(h)
    frame, image = _radar_frame(spec, layout, terrain, grid, np.random.default_rng(0))
    # range runs east: frame columns go east, rows across; the building spans x 490–510
    col = lambda x: frame.map_to_pixel(np.array([x]), np.array([500.0]))[0][0]  # noqa: E731
    row = int(frame.map_to_pixel(np.array([500.0]), np.array([500.0]))[1][0])
    line = image[row - 4 : row + 5].mean(axis=0)
    cot, tan = 1 / math.tan(math.radians(theta)), math.tan(math.radians(theta))
    lay_px = h * cot / 0.25
    # roof returns (0.5) land h·cot(θ) towards the sensor (west): 490–510 → 490-L … 510-L
    roof = line[int(col(492) - lay_px) : int(col(508) - lay_px)]
    assert roof.min() > 0.4
    # the footprint minus its layover is empty of roof: it is where ground behind lies
    behind = line[int(col(511) + 1) : int(col(510 + h * tan) - 1)]
    assert behind.max() < 0.01  # radar shadow: nothing but the noise floor
    street = line[int(col(510 + h * tan) + 4) : int(col(510 + h * tan) + 30)]
    assert street.mean() == pytest.approx(0.034, abs=0.005)
    # double bounce at the foot of the west wall (x = 490, height 0)
    assert line[int(col(490)) - 1 : int(col(490)) + 2].max() > 2.0
