"""Benchmark case building: images and tiepoints follow the known field; oracle affine; cache; SRIF;
scale mosaic."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from bench_fixtures import texture, tiny_pair

from bench.build import build_case
from bench.cases import Case, CaseSpec, case_grids, draw_recipe, plan_cases
from bench.pairs import AlignedPair, load_cfog, srif_resample
from bench.references import (
    case_references,
    field_shift_px,
    oracle_affine_shift,
    reference_scores,
)
from bench.scale import Mosaic, build_scale_case, build_scale_files, draw_scale_recipe
from bench.srif import SrifCheckConfig, check_srif_gt, rotation_about_centre
from models.sampling import sample_array
from models.scoring import read_tiepoints, reference_shift


def _case(
    tmp_path: Path, pair: AlignedPair, name: str = "tiny-w0", rotated: bool = True, **shift_changes
):
    recipe = draw_recipe(pair, name, seed=0, rotated=rotated)
    if shift_changes:
        recipe = dataclasses.replace(
            recipe, shift=dataclasses.replace(recipe.shift, **shift_changes)
        )
    return build_case(CaseSpec(name, pair.kind, pair, recipe, 0), tmp_path / "cases"), recipe


def _warped_back(case, shift, grid_sar_path: Path) -> np.ndarray:
    """The written SAR sampled at X = Y + d(Y) for every optical pixel centre Y (NaN outside
    data)."""
    optical, sar_grid = case_grids(case)
    with rasterio.open(grid_sar_path) as ds:
        sar = ds.read(1).astype(np.float32)
        sar[sar == ds.nodata] = np.nan
    x, y = optical.pixel_centres()
    dx, dy = shift(x, y)
    return sample_array(sar, sar_grid, x + dx, y + dy)


def assert_aligned(back: np.ndarray, ground: np.ndarray) -> None:
    """``back`` matches the (speckle-smoothed) ground best at zero shift, not one pixel off."""
    ref = cv2.GaussianBlur(ground, (0, 0), 1.0)
    corr = {}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            moved = np.roll(back, (dy, dx), axis=(0, 1))
            ok = np.isfinite(moved)
            ok[:2], ok[-2:], ok[:, :2], ok[:, -2:] = False, False, False, False
            corr[dy, dx] = np.corrcoef(moved[ok], ref[ok])[0, 1]
    assert max(corr, key=corr.get) == (0, 0), corr
    assert corr[0, 0] > 0.85, corr


def test_tiepoints_and_sar_follow_the_field(tmp_path):
    pair = tiny_pair()
    case, recipe = _case(tmp_path, pair)
    optical, sar_grid = case_grids(case)
    assert case.warped and sar_grid.is_rotated and abs(recipe.rotation_deg) >= 8
    assert 1.2 <= sar_grid.resolution / optical.resolution <= 1.5
    assert 0.04 <= np.hypot(*recipe.shift.offset) / (160 * pair.pixel_m) <= 0.10

    tp = read_tiepoints(case.tiepoint_sets["field"])
    assert len(tp) > 100
    fdx, fdy = field_shift_px(case, tp)
    rdx, rdy = reference_shift(tp, optical, sar_grid, rounding=False)
    # SAR positions are written with 3 decimals: the reference equals the field to ~1e-3 px
    assert np.abs(rdx - fdx).max() < 5e-3 and np.abs(rdy - fdy).max() < 5e-3
    sdx, sdy = reference_shift(tp, optical, sar_grid, rounding=True)
    assert np.abs(sdx - fdx).max() <= 0.5 + 5e-3 and np.abs(sdy - fdy).max() <= 0.5 + 5e-3
    assert np.hypot(fdx, fdy).mean() > 5  # the case is really misaligned

    # the SAR image itself moved with the field: pulling it back through d restores the ground SAR
    back = _warped_back(case, recipe.shift, case.sar)
    assert np.isfinite(back).mean() > 0.7
    assert_aligned(back, pair.sar)


def test_real_tiepoints_go_through_the_field(tmp_path):
    pair = tiny_pair()
    case, recipe = _case(tmp_path, pair)
    optical, sar_grid = case_grids(case)
    tp = read_tiepoints(case.tiepoint_sets["real"])
    assert len(tp) == len(pair.real_tiepoints) - case.meta["real_tiepoints_dropped"] > 20
    rdx, rdy = reference_shift(tp, optical, sar_grid, rounding=False)
    # the real SAR feature sits at ground Y_s (0.3, -0.2 px from the optical one) and moves by
    # d(Y_s)
    keep = np.isin(np.round(pair.real_tiepoints[:, 0], 3), np.round(tp.optical_col, 3))
    xs, ys = optical.pixel_to_map(pair.real_tiepoints[keep, 2], pair.real_tiepoints[keep, 3])
    dx, dy = recipe.shift(xs, ys)
    assert np.allclose(rdx, 0.3 + dx / optical.transform.a, atol=5e-3)
    assert np.allclose(rdy, -0.2 + dy / optical.transform.e, atol=5e-3)


def test_unwarped_case_keeps_the_real_offsets(tmp_path):
    pair = tiny_pair()
    case = build_case(CaseSpec("tiny-unwarped", "cfog", pair, None, 0), tmp_path / "cases")
    optical, sar_grid = case_grids(case)
    assert not case.warped and optical == sar_grid and list(case.tiepoint_sets) == ["real"]
    refs = case_references(case)["real"]
    assert refs["zero_exact"]["mean_px"] == pytest.approx(np.hypot(0.3, 0.2), abs=1e-3)
    assert refs["oracle_affine_exact"]["mean_px"] < 1e-3


def test_oracle_affine_zero_for_affine_field_positive_for_nonrigid(tmp_path):
    pair = tiny_pair(with_tiepoints=False)
    affine_case, _ = _case(tmp_path / "a", pair, nonrigid_m=0.0)
    nonrigid_case, recipe = _case(tmp_path / "n", pair)
    assert recipe.shift.nonrigid_m >= 0.01 * 160
    a = case_references(affine_case)["field"]
    n = case_references(nonrigid_case)["field"]
    assert a["oracle_affine_exact"]["mean_px"] < 1e-3
    assert n["oracle_affine_exact"]["mean_px"] > 0.3
    for refs in (a, n):
        assert refs["zero"]["mean_px"] > 5 * max(refs["oracle_affine"]["mean_px"], 0.5)


def test_oracle_affine_shift_is_least_squares():
    from affine import Affine
    from pyproj import CRS

    from core.grid import Grid
    from models.scoring import Tiepoints

    g = Grid(CRS.from_epsg(32637), Affine(0.5, 0, 1000, 0, -0.5, 2000), 100, 100)
    rng = np.random.default_rng(0)
    rows, cols = rng.uniform(0, 100, 50), rng.uniform(0, 100, 50)
    # SAR pixel = optical pixel + affine shift (2 + 0.01 col, -3 + 0.02 row) + a bump on half of the
    # points
    bump = np.where(cols > 50, 1.0, 0.0)
    tp = Tiepoints(rows - 3 + 0.02 * rows, cols + 2 + 0.01 * cols + bump, rows, cols)
    dx, dy = oracle_affine_shift(tp, g, g)
    exact = oracle_affine_shift(
        Tiepoints(rows - 3 + 0.02 * rows, cols + 2 + 0.01 * cols, rows, cols), g, g
    )
    assert np.allclose(exact[0], 2 + 0.01 * cols) and np.allclose(exact[1], -3 + 0.02 * rows)
    resid = (cols + 2 + 0.01 * cols + bump - cols) - dx
    assert abs(resid.mean()) < 1e-9 and 0.1 < np.abs(resid).mean() < 0.5


def test_exact_reference_scores_the_rounding_floor_and_nothing_without_rounding():
    from affine import Affine
    from pyproj import CRS

    from core.grid import Grid
    from models.scoring import Tiepoints

    g = Grid(CRS.from_epsg(32637), Affine(0.5, 0, 1000, 0, -0.5, 2000), 400, 400)
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 400, 2000).astype(float), rng.integers(0, 400, 2000).astype(float)
    # fractional shifts spread evenly: the SN9 rint of the reference alone costs about 0.38 px on
    # average
    tp = Tiepoints(rows + rng.uniform(-20, 20, 2000), cols + rng.uniform(-20, 20, 2000), rows, cols)
    refs = reference_scores(tp, g, g)
    assert refs["exact_exact"]["mean_px"] < 1e-9
    assert refs["exact"]["mean_px"] == pytest.approx(0.3826, abs=0.02)
    assert refs["exact"]["mean_px"] < refs["zero"]["mean_px"]


def test_cases_are_cached_and_reproducible(tmp_path):
    pair = tiny_pair(with_tiepoints=False)
    spec = plan_cases({"cfog": [pair]}, seed=4)[0]
    assert [s.name for s in plan_cases({"cfog": [pair]}, seed=4)] == [
        "tiny-w0",
        "tiny-w1",
        "tiny-w2",
    ]
    first = build_case(spec, tmp_path)
    stamp = first.sar.stat().st_mtime_ns
    again = build_case(plan_cases({"cfog": [pair]}, seed=4)[0], tmp_path)
    assert again.sar.stat().st_mtime_ns == stamp and again.meta == first.meta
    other = build_case(plan_cases({"cfog": [pair]}, seed=5)[0], tmp_path)
    assert other.meta["recipe"] != first.meta["recipe"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize("mask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_case_folders_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    pair = tiny_pair(with_tiepoints=False)
    case = build_case(plan_cases({"cfog": [pair]}, seed=0)[0], tmp_path / "cases")
    assert stat.S_IMODE(case.folder.stat().st_mode) == mode
    sources = [tiny_pair(600, seed=1, with_tiepoints=False)]
    scale = build_scale_case(sources, seed=0, side=256, cases_root=tmp_path / "cases")
    assert stat.S_IMODE(scale.folder.stat().st_mode) == mode
    assert (scale.folder / "sar.tif").is_file()
    assert not [p for p in (tmp_path / "cases").iterdir() if p.name.startswith(".")]


def test_srif_resample_uses_the_documented_convention():
    """``p_sar = G @ [p_opt * 256 / W_opt, 1]``: a SAR made with a known G is brought back onto the
    chip."""
    w = 320
    chip = texture(256, seed=11, sigma=3.0)
    optical = cv2.resize(chip, (w, w), interpolation=cv2.INTER_LINEAR)
    theta = np.radians(25.0)
    G = np.array([[np.cos(theta), np.sin(theta), -20.0], [-np.sin(theta), np.cos(theta), 40.0]])
    # the SAR shows the chip point q at G @ q: sample the chip at the inverse
    sar = cv2.warpAffine(chip * 200 + 20, G, (256, 256), flags=cv2.INTER_LINEAR, borderValue=0)
    back = srif_resample(optical[None], sar[None], G)
    ok = np.isfinite(back)
    assert ok.mean() > 0.5
    assert np.corrcoef(back[ok], optical[ok])[0, 1] > 0.95
    wrong = srif_resample(optical[None], sar[None], np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    ok2 = np.isfinite(wrong)
    assert np.corrcoef(wrong[ok2], optical[ok2])[0, 1] < 0.5


def _srif_like(true_deg: float, seed: int = 11, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """An optical image and a speckled, contrast-inverted 256² SAR chip rotated by ``true_deg``
    about the centre."""
    chip = texture(256, seed=seed, sigma=3.0)
    optical = cv2.resize(chip, (w, w), interpolation=cv2.INTER_LINEAR) * 220 + 20
    rng = np.random.default_rng(seed)
    ground = (1.0 - chip) * 200 * rng.gamma(6.0, 1 / 6.0, chip.shape) + 30
    sar = cv2.warpAffine(
        ground.astype(np.float32),
        rotation_about_centre(true_deg),
        (256, 256),
        flags=cv2.INTER_LINEAR,
        borderValue=0,
    )
    return optical.astype(np.float32), np.clip(sar, 0, 255)


def test_srif_check_finds_the_rotation_a_wrong_matrix_misses():
    """A matrix 30° off is caught: structure and mutual information agree on the true angle, which
    is then used."""
    optical, sar = _srif_like(-20.0)
    wrong = rotation_about_centre(10.0)
    check = check_srif_gt(optical, sar, wrong, SrifCheckConfig(step_deg=3.0))
    assert check.verified, check.reason
    assert check.gt_deg == pytest.approx(10.0)
    assert check.found_deg == pytest.approx(-20.0, abs=0.5)
    assert check.mi_deg == pytest.approx(-20.0, abs=4.0)
    assert np.hypot(*check.shift_px) < 1.0
    back = srif_resample(optical[None], sar[None], np.array(check.matrix))
    ok = np.isfinite(back)
    assert (
        np.corrcoef(back[ok], optical[ok])[0, 1] < -0.5
    )  # lined up (the SAR's contrast is inverted)


def test_srif_check_rejects_a_pair_without_common_structure():
    optical, _ = _srif_like(0.0, seed=1)
    _, unrelated = _srif_like(0.0, seed=2)
    check = check_srif_gt(
        optical, unrelated, rotation_about_centre(0.0), SrifCheckConfig(step_deg=3.0)
    )
    assert not check.verified
    assert "not distinct" in check.reason or "mutual information" in check.reason


def test_scale_mosaic_windows_compose_and_sar_follows_the_field(tmp_path):
    pairs = [tiny_pair(600, seed=s, with_tiepoints=False) for s in (1, 2)]
    mosaic = Mosaic(pairs, seed=0, tile_px=200)
    o, s = mosaic.window(-150, 370, 500, 300)
    o2, s2 = mosaic.window(-150 + 123, 370 + 45, 100, 100)
    assert np.array_equal(o[:, 45:145, 123:223], o2) and np.array_equal(s[45:145, 123:223], s2)
    assert not np.array_equal(mosaic.tile(0, 0)[1], mosaic.tile(0, 1)[1])
    recipe = draw_scale_recipe(0)
    meta = build_scale_files(recipe, Mosaic(pairs, seed=0, tile_px=200), 400, tmp_path)
    assert meta["n_tiepoints"]["field"] > 300
    with rasterio.open(tmp_path / "optical.tif") as ds:
        assert (
            ds.width == 400 and ds.profile["compress"].lower() == "deflate" and ds.profile["tiled"]
        )
    case = Case("scale-400", "scale", tmp_path, True, meta)
    optical, sar_grid = case_grids(case)
    assert sar_grid.is_rotated and sar_grid.resolution == pytest.approx(0.65)
    tp = read_tiepoints(tmp_path / "tiepoints.csv")
    fdx, fdy = field_shift_px(case, tp)
    rdx, rdy = reference_shift(tp, optical, sar_grid, rounding=False)
    assert np.abs(rdx - fdx).max() < 5e-3 and np.abs(rdy - fdy).max() < 5e-3
    off = (recipe.full_side - 400) // 2
    _, ground = Mosaic(pairs, seed=0, tile_px=200).window(off, off, 400, 400, "sar")
    assert_aligned(_warped_back(case, recipe.shift, tmp_path / "sar.tif"), ground)


def test_scale_grids_wider_than_the_reference_square_share_its_centre():
    from bench.scale import scale_grids

    recipe = draw_scale_recipe(0)
    side = 2 * recipe.full_side
    optical, sar, off = scale_grids(recipe, side)
    reference, reference_sar, _ = scale_grids(recipe, recipe.full_side)
    assert off == -recipe.full_side // 2 and optical.shape == (side, side)
    centre = optical.pixel_to_map(side / 2, side / 2)
    assert centre == pytest.approx(reference.pixel_to_map(side / 4, side / 4))
    # the SAR grid covers the wider scene, about its own centre the field moved
    assert sar.width > 1.9 * reference_sar.width
    sar_centre = sar.pixel_to_map(sar.width / 2, sar.height / 2)
    assert sar_centre == pytest.approx(
        reference_sar.pixel_to_map(reference_sar.width / 2, reference_sar.height / 2), abs=1.0
    )


def test_real_cfog_case(tmp_path, shared_data):
    folder = shared_data / "pairs" / "cfog"
    if not folder.is_dir():
        pytest.skip(
            f"needs the real CFOG pair at {folder} (../shared/data/pairs/cfog); it is absent here"
        )
    pair = load_cfog(folder)
    assert pair.shape == (600, 600) and len(pair.real_tiepoints) == 145
    spec = plan_cases({"cfog": [pair]}, seed=0)
    assert [s.name for s in spec] == ["cfog-unwarped", "cfog-w0", "cfog-w1", "cfog-w2"]
    case = build_case(spec[1], tmp_path)
    refs = case_references(case)
    assert case.meta["n_tiepoints"]["real"] > 100
    for kind in ("field", "real"):
        assert refs[kind]["zero"]["mean_px"] > 0.04 * 600 * 0.9
        assert 0 < refs[kind]["oracle_affine"]["mean_px"] < refs[kind]["zero"]["mean_px"] / 3


def test_local_on_the_real_cfog_tiepoints(tmp_path, shared_data):
    # the pre-aligned pair is off by about a pixel (its real tiepoints): local corrects it, and its
    # verification,
    # which judges a field that barely moves the pair at the finest pass, keeps the correction
    from bench.worker import run_job

    folder = shared_data / "pairs" / "cfog"
    if not folder.is_dir():
        pytest.skip(
            f"needs the real CFOG pair at {folder} (../shared/data/pairs/cfog); it is absent here"
        )
    case = build_case(plan_cases({"cfog": [load_cfog(folder)]}, seed=0)[0], tmp_path)
    assert case.name == "cfog-unwarped"
    zero = case_references(case)["real"]["zero"]["mean_px"]
    job = {
        "optical": str(case.optical),
        "sar": str(case.sar),
        "method": "local",
        "settings": {},
        "output": str(tmp_path / "field.tif"),
        "tiepoints": {k: str(p) for k, p in case.tiepoint_sets.items()},
        "agreement": False,
    }
    result = run_job(job)
    assert result["details"]["verify"]["passed"] is True
    assert result["scores"]["real"]["sn9"]["mean_px"] <= min(1.0, zero - 0.15)
