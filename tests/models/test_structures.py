"""Elevated structures in ``local``: where they, their layover and shadow lie, and rejection."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS

from core.grid import north_up_grid
from models.displacement import DisplacementField
from models.methods.base import RegistrationInput, RegistrationResult
from models.methods.local.config import LocalConfig
from models.methods.local.context import LocalRun
from models.methods.local.cues import share_at, structure_cues
from models.methods.local.structures import StructureMap, structure_map
from models.methods.local.verify import ground_templates
from models.registration import register
from models.sar_geometry import SarGeometry
from samples.synth import SceneSpec, synthesize_pair, write_raster
from samples.urban import UrbanSpec, ground_tiepoints, simulate_urban, write_urban

CRS_UTM = "EPSG:32637"
ORIGIN = (377000.0, 4106000.0)
SIZE = 300.0
CENTRE = (ORIGIN[0] + SIZE / 2, ORIGIN[1] - SIZE / 2)
GEOMETRY = SarGeometry(40.0, 100.0)
BLOCK_HALF_M, BLOCK_M = 10.0, 30.0


def write_heights(path: Path, slope: float = 0.0, block: bool = True) -> Path:
    """A 1 m height GeoTIFF over the scene: a plane rising ``slope`` m/m to the east, with a
    ``BLOCK_M`` tall square block ``2·BLOCK_HALF_M`` across at the centre."""
    m = 100.0
    grid = north_up_grid(
        CRS.from_user_input(CRS_UTM),
        (ORIGIN[0] - m, ORIGIN[1] - SIZE - m, ORIGIN[0] + SIZE + m, ORIGIN[1] + m),
        1.0,
    )
    x, y = grid.pixel_centres()
    heights = (slope * (x - ORIGIN[0])).astype(np.float32)
    if block:
        on = (np.abs(x - CENTRE[0]) < BLOCK_HALF_M) & (np.abs(y - CENTRE[1]) < BLOCK_HALF_M)
        heights[on] += BLOCK_M
    write_raster(path, heights[None], grid, None)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[str, str, Path]:
    out = tmp_path_factory.mktemp("structures")
    spec = SceneSpec(size_m=SIZE, seed=4, crs=CRS_UTM, origin=ORIGIN, n_tiepoints=10)
    pair = synthesize_pair(out, spec, "s")
    return str(pair.optical), str(pair.sar), out


def _share_at(smap, offsets: list[tuple[float, float]]) -> np.ndarray:
    """The map's share over 1 m templates at ``CENTRE + a·u + b·p`` for each ``(a, b)``, with
    ``u`` towards the sensor and ``p`` across the look direction."""
    lx, ly = GEOMETRY.look_vector(CRS.from_user_input(CRS_UTM), CENTRE)
    ux, uy = -lx, -ly
    x = np.array([CENTRE[0] + a * ux - b * uy for a, b in offsets])
    y = np.array([CENTRE[1] + a * uy + b * ux for a, b in offsets])
    return smap.share(x, y, 1.0)


def test_map_covers_the_structure_its_layover_and_its_shadow(images):
    opt, sar, out = images
    dsm, dtm = write_heights(out / "dsm.tif"), write_heights(out / "dtm.tif", block=False)
    pair = RegistrationInput.open(opt, sar, "cpu", str(dsm), str(dtm), geometry=GEOMETRY)
    grid = north_up_grid(pair.crs, (*ORIGIN[:1], ORIGIN[1] - SIZE, ORIGIN[0] + SIZE, ORIGIN[1]), 4)
    smap = structure_map(pair, grid)
    assert not isinstance(smap, str), smap
    layover = BLOCK_M / math.tan(math.radians(GEOMETRY.incidence_deg))  # towards the sensor
    shadow = BLOCK_M * math.tan(math.radians(GEOMETRY.incidence_deg))  # away from it
    edge = BLOCK_HALF_M
    inside = [(0, 0), (edge + layover - 6, 0), (-(edge + shadow - 6), 0), (edge + 10, 5)]
    outside = [
        (edge + layover + 8, 0),
        (-(edge + shadow + 8), 0),
        (0, edge + 8),
        (0, -(edge + 8)),
        (120, 100),
    ]
    np.testing.assert_array_equal(_share_at(smap, inside), 1.0)
    np.testing.assert_array_equal(_share_at(smap, outside), 0.0)
    assert smap.record()["heights"] == "DSM minus DTM"


def test_without_a_dtm_slopes_are_not_structures(images):
    opt, sar, out = images
    slope = write_heights(out / "slope.tif", slope=0.15, block=False)
    pair = RegistrationInput.open(opt, sar, "cpu", str(slope), geometry=GEOMETRY)
    grid = north_up_grid(pair.crs, (*ORIGIN[:1], ORIGIN[1] - SIZE, ORIGIN[0] + SIZE, ORIGIN[1]), 4)
    smap = structure_map(pair, grid)
    assert not isinstance(smap, str)
    assert smap.affected.mean() < 0.01
    sloped_block = write_heights(out / "sloped_block.tif", slope=0.15)
    pair = dataclasses.replace(
        pair, height=RegistrationInput.open(opt, sar, "cpu", str(sloped_block)).height
    )
    smap = structure_map(pair, grid)
    assert not isinstance(smap, str)
    assert _share_at(smap, [(0, 0)])[0] == 1.0
    assert smap.record()["heights"].startswith("DSM minus DSM, 10th percentile")


def test_no_structure_map_without_geometry_or_height(images):
    opt, sar, out = images
    dsm = write_heights(out / "dsm_only.tif")
    bare = RegistrationInput.open(opt, sar, "cpu")
    no_geometry = RegistrationInput.open(opt, sar, "cpu", str(dsm))
    grid = north_up_grid(bare.crs, (*ORIGIN[:1], ORIGIN[1] - SIZE, ORIGIN[0] + SIZE, ORIGIN[1]), 4)
    assert "no height model" in str(structure_map(bare, grid))
    assert "no SAR geometry" in str(structure_map(no_geometry, grid))


CITY = UrbanSpec(
    size_px=1000,
    optical_res=0.3,
    sar_res=0.4,
    incidence_deg=30.0,
    look_azimuth_deg=75.0,
    max_height_m=40.0,
    density=0.7,
    relief_m=20.0,
    seed=8,
)


def _ground_error_px(pair: RegistrationInput, field, scene, tiepoints) -> np.ndarray:
    """Error (optical px) of a field at ground tiepoints against the exact shift."""
    g = pair.optical.grid
    x, y = g.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    tdx, tdy = scene.ground_shift(x, y)
    dx, dy, _ = field.sample(x, y)
    return np.hypot(dx - tdx, dy - tdy) / g.resolution


def test_local_rejects_structures_in_a_simulated_city(tmp_path):
    scene = simulate_urban(CITY)
    files = write_urban(tmp_path, scene)
    opt, sar, dsm, dtm = (str(tmp_path / files[k]) for k in ("optical", "sar", "dsm", "dtm"))
    pair = RegistrationInput.open(opt, sar, "cpu", dsm, dtm)
    assert pair.geometry is not None and pair.geometry.source == "geotiff tags"
    tiepoints = ground_tiepoints(scene, cells=8, clearance_m=12.0, seed=1)
    assert len(tiepoints.optical_col) >= 20
    fast = {"global_prior": "false"}
    on = register(pair, "local", fast)
    off = register(pair, "local", {**fast, "structures": "off"})
    assert isinstance(on.details["structures"], dict)
    assert on.details["structures"]["affected_share"] > 0.2
    rejected = [lv["structures_rejected"] for lv in on.details["levels"] if "skipped" not in lv]
    assert rejected and max(rejected) > 0.3
    assert off.details["structures"] == "not used: switched off (structures=off)"
    assert all("structures_rejected" not in lv for lv in off.details["levels"])
    err_on = _ground_error_px(pair, on.field, scene, tiepoints)
    err_off = _ground_error_px(pair, off.field, scene, tiepoints)
    # without rejection the smoothings chosen level by level are near ties that rounding in the
    # correlation flips (1.58 to 1.95 px here for the same field math, 1.42-1.45 px with
    # rejection; 8-28 % gained, 19 % on seed 9), so the margin asked is one every side clears
    assert err_on.mean() < 0.95 * err_off.mean(), (err_on.mean(), err_off.mean())


def test_image_cues_mark_bright_returns_and_shadows():
    rng = np.random.default_rng(0)
    sar = rng.normal(0.0, 1.0, (200, 200)).astype(np.float32)
    optical = rng.normal(0.5, 0.05, (200, 200)).astype(np.float32)
    sar[20:60, 20:60] += 8.0  # layover / double bounce
    sar[120:160, 20:60] -= 8.0  # radar shadow
    optical[20:60, 120:160] = 0.0  # sun shadow
    mask = structure_cues(sar, optical, smooth_px=5)
    for r, c in ((40, 40), (140, 40), (40, 140)):
        assert mask[r - 10 : r + 10, c - 10 : c + 10].all()
    assert mask[100:, 100:].mean() < 0.05  # noise alone: a few per cent
    centres = np.array([[40.0, 40.0], [140.0, 140.0], [60.0, 40.0]])
    share = share_at(mask, centres, 40)
    assert share[0] > 0.9 and share[1] < 0.1 and 0.3 < share[2] < 0.7


def test_image_cues_without_a_height_model_screen_vectors(tmp_path):
    scene = simulate_urban(dataclasses.replace(CITY, size_px=700))
    files = write_urban(tmp_path, scene)
    pair = RegistrationInput.open(*(str(tmp_path / files[k]) for k in ("optical", "sar")), "cpu")
    result = register(pair, "local", {"global_prior": "false", "structure_cues": "on"})
    assert result.details["structures"].startswith("not used: no height model")
    measured = [lv for lv in result.details["levels"] if "candidates" in lv]
    assert measured and all("structures_rejected" in lv for lv in measured)
    plain = register(pair, "local", {"global_prior": "false"})
    assert all("structures_rejected" not in lv for lv in plain.details["levels"])


def test_verification_judges_templates_off_structures(images):
    opt, sar, out = images
    pair = RegistrationInput.open(opt, sar, "cpu")
    grid = north_up_grid(pair.crs, (*ORIGIN[:1], ORIGIN[1] - SIZE, ORIGIN[0] + SIZE, ORIGIN[1]), 2)
    affected = np.zeros(grid.shape, np.float32)
    affected[:, : grid.width // 2] = 1.0  # the west half is buildings
    conf = LocalConfig()
    result = RegistrationResult("local", "test", {}, DisplacementField.constant(grid))
    run = LocalRun(pair, conf, result, structures=StructureMap(grid, affected, "test"))
    xs = np.linspace(ORIGIN[0] + 40, ORIGIN[0] + SIZE - 40, 12)
    ys = np.linspace(ORIGIN[1] - 40, ORIGIN[1] - SIZE + 40, 6)
    keys = [(int(round(x * 10)), int(round(y * 10))) for x in xs for y in ys]
    ground = ground_templates(run, keys, res=1.0)
    assert ground and all(k[0] / 10 > CENTRE[0] for k in ground)
    assert len(ground) == sum(k[0] / 10 > CENTRE[0] for k in keys)  # half a template or more off
    assert ground_templates(dataclasses.replace(run, structures=None), keys, 1.0) == keys
    few = dataclasses.replace(conf, verify_min_templates=len(keys))
    assert ground_templates(dataclasses.replace(run, conf=few), keys, 1.0) == keys
