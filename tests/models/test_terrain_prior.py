"""The terrain prior of ``local``: layover from a height model, fitted and offered as a prior."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS

from core.grid import north_up_grid
from models.methods.base import RegistrationInput
from models.methods.local.terrain import fit_terrain, terrain_heights, unavailable
from models.registration import register
from models.sar_geometry import SarGeometry
from samples.synth import SceneSpec, SyntheticPair, synthesize_pair, write_raster

CRS_UTM = "EPSG:32637"
ORIGIN = (377000.0, 4106000.0)
SIZE = 300.0
CENTRE = (ORIGIN[0] + SIZE / 2, ORIGIN[1] - SIZE / 2)
GEOMETRY = SarGeometry(40.0, 100.0)
FAST = {"global_prior": "false"}


def relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Terrain heights (metres): two hills and a hollow over the scene."""
    out = np.zeros(np.shape(x))
    for cx, cy, amp, width in ((60, -80, 9.0, 55), (220, -200, 7.0, 50), (170, -60, -6.0, 45)):
        px, py = ORIGIN[0] + cx, ORIGIN[1] + cy
        out = out + amp * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * width**2))
    return out


@dataclass(frozen=True)
class TerrainShift:
    """Optical→SAR displacement of a ground-projected SAR over ``relief``: offset + layover."""

    offset: tuple[float, float] = (12.0, -8.0)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lx, ly = GEOMETRY.layover_shift_m(relief(x, y), CRS.from_user_input(CRS_UTM), CENTRE)
        return self.offset[0] + lx, self.offset[1] + ly


def write_dem(path: Path, building: bool = False) -> Path:
    """The relief as a 2 m GeoTIFF over the scene and its margins (with a 30 m tall block)."""
    m = 120.0
    grid = north_up_grid(
        CRS.from_user_input(CRS_UTM),
        (ORIGIN[0] - m, ORIGIN[1] - SIZE - m, ORIGIN[0] + SIZE + m, ORIGIN[1] + m),
        2.0,
    )
    x, y = grid.pixel_centres()
    heights = relief(x, y).astype(np.float32)
    if building:
        block = (np.abs(x - CENTRE[0]) < 10) & (np.abs(y - CENTRE[1]) < 10)
        heights[block] += 30.0
    write_raster(path, heights[None], grid, None)
    return path


@pytest.fixture(scope="module")
def terrain_case(tmp_path_factory) -> tuple[SyntheticPair, Path]:
    out = tmp_path_factory.mktemp("terrain")
    spec = SceneSpec(
        size_m=SIZE,
        seed=11,
        crs=CRS_UTM,
        origin=ORIGIN,
        sar_appearance="luminance",
        speckle_looks=100.0,
        shift=TerrainShift(),  # type: ignore[arg-type]
    )
    return synthesize_pair(out, spec, "t"), write_dem(out / "dem.tif")


def test_fit_recovers_gain_and_affine_despite_outliers():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 500, 200), rng.uniform(0, 500, 200)
    tx, ty = np.sin(x / 40) * 5, np.cos(y / 60) * 4
    dx = 3.0 + 0.01 * x + 1.7 * tx + rng.normal(0, 0.1, 200)
    dy = -2.0 - 0.02 * y + 1.7 * ty + rng.normal(0, 0.1, 200)
    dx[:20] += 40.0  # wrong matches
    fit = fit_terrain(x, y, dx, dy, tx, ty)
    assert fit.gain == pytest.approx(1.7, abs=0.05)
    px, py = fit.displacement(x, y, tx, ty)
    assert np.median(np.hypot(px - dx, py - dy)[20:]) < 0.2
    assert fit.r2 > 0.95 > fit.r2_affine


def test_dsm_without_dtm_is_filtered_below_buildings(tmp_path, terrain_case):
    synthetic, _ = terrain_case
    dsm = write_dem(tmp_path / "dsm.tif", building=True)
    pair = RegistrationInput.open(str(synthetic.optical), str(synthetic.sar), "cpu", str(dsm))
    grid = north_up_grid(
        pair.crs, (CENTRE[0] - 40, CENTRE[1] - 40, CENTRE[0] + 40, CENTRE[1] + 40), 4.0
    )
    heights, source = terrain_heights(pair, grid)
    x, y = grid.pixel_centres()
    assert source.startswith("DSM, 10th percentile")
    assert np.nanmax(np.abs(heights - relief(x, y))) < 5.0  # the 30 m block is gone


def test_unavailable_names_what_is_missing(terrain_case):
    synthetic, dem = terrain_case
    bare = synthetic.open()
    with_dsm = RegistrationInput.open(str(synthetic.optical), str(synthetic.sar), "cpu", str(dem))
    slant = dataclasses.replace(with_dsm, geometry=SarGeometry(40.0, 100.0, False))
    assert "no height model" in unavailable(bare) and "no SAR geometry" in unavailable(bare)
    assert "no SAR geometry" in unavailable(with_dsm)
    assert "slant range" in unavailable(slant)
    assert unavailable(dataclasses.replace(with_dsm, geometry=GEOMETRY)) is None


def test_terrain_prior_recovers_layover_field(terrain_case):
    synthetic, dem = terrain_case
    opt, sar = str(synthetic.optical), str(synthetic.sar)
    pair = RegistrationInput.open(opt, sar, "cpu", str(dem), str(dem), geometry=GEOMETRY)
    result = register(pair, "local", FAST)
    record = result.details["terrain_prior"]
    assert isinstance(record, dict), record
    assert record["gain"] == pytest.approx(1.0, abs=0.15)
    assert record["r2"] > record["r2_affine"]
    assert record["vectors"] >= 16 and record["heights"] == "DTM"
    assert "terrain" in result.details["prior_evidence"]
    err = synthetic.field_error_px(result.field)
    assert err.max() < 1.0, err.max()
    off = register(pair, "local", {**FAST, "terrain_prior": "off"})
    assert err.mean() < 0.5 * synthetic.field_error_px(off.field).mean()


def test_without_height_or_switched_off_the_result_is_unchanged(terrain_case):
    synthetic, dem = terrain_case
    opt, sar = str(synthetic.optical), str(synthetic.sar)
    bare = register(RegistrationInput.open(opt, sar, "cpu"), "local", FAST)
    full = RegistrationInput.open(opt, sar, "cpu", str(dem), str(dem), geometry=GEOMETRY)
    off = register(full, "local", {**FAST, "terrain_prior": "off"})
    assert bare.details["terrain_prior"].startswith("not used: no height model")
    assert off.details["terrain_prior"] == "not used: switched off (terrain_prior=off)"
    assert "terrain" not in bare.details["prior_evidence"]
    np.testing.assert_array_equal(bare.field.dx, off.field.dx)
    np.testing.assert_array_equal(bare.field.dy, off.field.dy)
