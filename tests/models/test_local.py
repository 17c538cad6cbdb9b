"""The local method end to end: non-rigid recovery, determinism, tile back-ends, verification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.grid import north_up_grid
from models.displacement import DisplacementField
from models.methods.base import RegistrationInput, RegistrationResult, field_grid, make_config
from models.methods.local import LocalConfig, levels
from models.methods.local.context import LocalRun
from models.methods.local.levels import LevelInfo
from models.methods.local.priors import Trial, prior_by_correlation
from models.methods.local.schedule import (
    level_schedule,
    level_templates,
    resolution_with_templates,
    template_count,
)
from models.methods.local.verify import template_correlations
from models.registration import register
from samples.synth import SceneSpec, ShiftModel, SyntheticPair, synthesize_pair


def rigid_pair(
    directory: Path, name: str, size_m: float, seed: int, offset: tuple[float, float]
) -> SyntheticPair:
    """Synthesise a luminance-SAR pair (light speckle) shifted rigidly by `offset` metres."""
    spec = SceneSpec(
        size_m=size_m,
        seed=seed,
        sar_appearance="luminance",
        speckle_looks=100.0,
        shift=ShiftModel(offset=offset, nonrigid_m=0.0, seed=seed),
    )
    return synthesize_pair(directory, spec, name)


def test_nonrigid_field_recovered_within_one_pixel(nonrigid_pair):
    pair = nonrigid_pair.open()
    local = register(pair, "local")
    affine = register(pair, "global-affine")
    e_local = nonrigid_pair.field_error_px(local.field)
    e_affine = nonrigid_pair.field_error_px(affine.field)
    assert e_local.mean() < 1.0, e_local.mean()
    assert e_local.mean() < 0.6 * e_affine.mean()
    assert local.field.confidence.max() > 0.5
    assert all(lvl.get("accepted", 0) > 0 for lvl in local.details["levels"])


def test_deterministic(nonrigid_pair):
    pair = nonrigid_pair.open()
    conf = {"global_prior": "false", "levels": "2,1", "radius_px": "8,3", "refine_passes": "0"}
    ra = register(pair, "local", conf)
    a, b = ra.field, register(pair, "local", conf).field
    # without the learned prior the coarse CFOG translation must still bring it home
    assert ra.details["prior"] == "coarse-translation"
    assert nonrigid_pair.field_error_px(a).mean() < 1.5
    np.testing.assert_array_equal(a.dx, b.dx)
    np.testing.assert_array_equal(a.dy, b.dy)


def test_process_pool_matches_in_process(nonrigid_pair):
    pair = nonrigid_pair.open()
    conf = {
        "global_prior": "false",
        "levels": "2",
        "radius_px": "8",
        "tile_px": "160",
        "refine_passes": "0",
    }
    one = register(pair, "local", conf)
    two = register(pair, "local", {**conf, "workers": "2"})
    assert one.details["levels"][0]["tiles"] > 1
    np.testing.assert_allclose(one.field.dx, two.field.dx, atol=1e-6)


def test_dask_cluster_runs_tile_jobs(nonrigid_pair):
    from dask.distributed import LocalCluster

    pair = nonrigid_pair.open()
    conf = {
        "global_prior": "false",
        "levels": "2",
        "radius_px": "8",
        "tile_px": "160",
        "refine_passes": "0",
        "workers": "1",
    }
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        on_dask = register(pair, "local", {**conf, "dask_address": cluster.scheduler_address})
    local = register(pair, "local", conf)
    np.testing.assert_allclose(on_dask.field.dx, local.field.dx, atol=1e-6)


def test_field_on_unrelated_images_is_rejected_for_zero(tmp_path):
    # optical of one scene, SAR of another: whatever the levels fit to noise must not be returned
    spec = dict(size_m=300.0, sar_appearance="luminance", speckle_looks=100.0)
    a = synthesize_pair(tmp_path / "a", SceneSpec(seed=1, **spec), "a")
    b = synthesize_pair(tmp_path / "b", SceneSpec(seed=2, **spec), "b")
    pair = RegistrationInput.open(str(a.optical), str(b.sar), "cpu")
    result = register(pair, "local")
    check = result.details["verify"]
    assert check["passed"] is False and check["templates"] >= 16
    assert (
        np.all(result.field.dx == 0)
        and np.all(result.field.dy == 0)
        and np.all(result.field.confidence == 0)
    )
    assert any("better than no shift" in w for w in result.warnings)


def test_verification_keeps_a_recovered_field(nonrigid_pair):
    pair = nonrigid_pair.open()
    result = register(
        pair,
        "local",
        {"global_prior": "false", "levels": "2,1", "radius_px": "8,3", "refine_passes": "0"},
    )
    check = result.details["verify"]
    assert check["passed"] is True and check["mean_gain"] > 0.03 and check["z"] > 2
    assert check["mean_ncc"] > LocalConfig().verify_min_ncc
    assert nonrigid_pair.field_error_px(result.field).mean() < 1.5


def test_verification_wants_the_images_to_correlate_through_the_field(nonrigid_pair):
    # the same recovered field, but asked for more correlation than the pair has: a gain over no
    # shift alone is not enough
    pair = nonrigid_pair.open()
    conf = {
        "global_prior": "false",
        "levels": "2,1",
        "radius_px": "8,3",
        "refine_passes": "0",
        "verify_min_ncc": "0.95",
    }
    result = register(pair, "local", conf)
    check = result.details["verify"]
    assert (
        check["passed"] is False
        and check["z"] > 2
        and check["mean_gain"] > 0.03
        and check["mean_ncc"] < 0.95
    )
    assert np.all(result.field.dx == 0) and any(
        "mean correlation through it" in w for w in result.warnings
    )


def test_a_field_that_barely_moves_the_pair_is_judged_at_the_finest_pass(tmp_path):
    # a 0.8 m shift: within two pixels of the verification pass (the native 0.65 m), so it is judged
    # at the finest
    # pass (the optical 0.5 m), where a shift of a pixel or less shows
    synthetic = rigid_pair(tmp_path, "small", size_m=300.0, seed=11, offset=(0.6, -0.5))
    pair = synthetic.open()
    result = register(pair, "local")
    check = result.details["verify"]
    assert check["median_shift_m"] < 2 * pair.native_resolution()
    assert check["resolution_m"] == pytest.approx(pair.finest_resolution(), rel=0.01)
    assert check["passed"] is True and check["z"] > 2
    assert synthetic.field_error_px(result.field).mean() < 0.5


def test_level_templates_shrink_on_small_overlaps():
    assert level_templates(1000, 48, 16) == (48, 16)
    assert level_templates(96, 48, 16) == (48, 16)
    template, spacing = level_templates(90, 48, 16)
    assert template == 24 and spacing == 8  # a third of the side, on an 8-px lattice
    assert level_templates(40, 48, 16)[0] == 24  # never below the minimum
    for side in range(30, 200, 7):
        t, s = level_templates(side, 48, 16)
        assert t % 8 == 0 and s % 8 == 0 and t % s == 0 and 24 <= t <= 48


def test_saturated_level_runs_again(nonrigid_pair):
    pair = nonrigid_pair.open()
    # a fine level with too small a search radius for the non-rigid residual the coarse level leaves
    conf = {
        "global_prior": "false",
        "levels": "2,1",
        "radius_px": "8,2",
        "optical_level": "false",
        "refine_passes": "0",
    }
    once = register(pair, "local", {**conf, "max_level_repeats": "0"})
    again = register(pair, "local", conf)
    assert [lvl.get("repeat", False) for lvl in once.details["levels"]] == [False, False]
    first, repeat = again.details["levels"][1:]
    assert repeat["repeat"] == "kept" and repeat["resolution_m"] == first["resolution_m"]
    assert first["saturated"] > LocalConfig().repeat_saturated > repeat["saturated"]
    assert (
        nonrigid_pair.field_error_px(again.field).mean()
        < 0.8 * nonrigid_pair.field_error_px(once.field).mean()
    )


def test_a_repeat_that_does_not_converge_is_dropped(monkeypatch):
    from models.methods.base import RegistrationResult

    grid = north_up_grid("EPSG:32637", (0, 0, 100, 100), 10.0)
    start, moved = DisplacementField.constant(grid), DisplacementField.constant(grid, 3.0, 0.0)
    shares = iter(
        [0.4, 0.15]
    )  # the repeat leaves more than half the border share: ambiguous, not converging

    def level(run, fld, res, radius, *args):
        return moved, LevelInfo(res, radius, 48, 16, saturated=next(shares), accepted=200)

    monkeypatch.setattr(levels, "run_level", level)
    monkeypatch.setattr(levels, "repeat_fits", lambda *a: True)  # no pair: no budget to count
    result = RegistrationResult("local", "test", {}, start, details={"levels": []})
    info = LevelInfo(1.0, 2, 48, 16, saturated=0.3, accepted=100)
    conf = make_config(LocalConfig, {"max_level_repeats": "2"})
    run = LocalRun(None, conf, result)
    kept = levels.repeat_saturated(run, start, info, 1, 3)
    # first repeat: 0.3 → 0.4, not converging: dropped, and no second try
    assert kept is start
    assert [lvl["repeat"] for lvl in result.details["levels"]] == ["dropped: did not converge"]
    result.details["levels"].clear()
    shares = iter([0.12, 0.05])
    # 0.3 → 0.12 halves it: kept; still above the threshold, so a second repeat (0.12 → 0.05) is
    # kept too
    assert levels.repeat_saturated(run, start, info, 1, 3) is moved
    assert [lvl["repeat"] for lvl in result.details["levels"]] == ["kept", "kept"]
    # a share of a handful of vectors is noise: no repeat
    result.details["levels"].clear()
    few = LevelInfo(1.0, 2, 48, 16, saturated=0.3, accepted=20)  # 6 border vectors
    assert levels.repeat_saturated(run, start, few, 1, 3) is start
    assert result.details["levels"] == []


def test_first_level_decided_by_correlation_keeps_the_field_that_lines_the_pair_up(nonrigid_pair):
    pair = nonrigid_pair.open()
    conf = LocalConfig()
    grid = nonrigid_pair.optical_grid
    g = field_grid(pair, 4.0)
    truth = DisplacementField.from_function(g, nonrigid_pair.spec.shift)
    wrong = DisplacementField.constant(g, -25.0, 30.0)
    zero = DisplacementField.constant(g)
    info = LevelInfo(4.0, 12, 48, 16)
    trials = [
        Trial(0.0, "wrong", wrong, info),
        Trial(0.0, "truth", truth, info),
        Trial(0.0, "zero", zero, info),
    ]
    result = RegistrationResult("local", "test", {}, zero)
    run = LocalRun(pair, conf, result, lambda *a: None)
    chosen = prior_by_correlation(run, trials, "wrong", [1.3])
    assert chosen.name == "truth", result.details["prior_correlation"]
    corr = result.details["prior_correlation"]
    assert (
        corr["truth"] > corr["zero"] + 0.05
        and corr["truth"] > corr["wrong"] + 0.05
        and corr["templates"] >= 16
    )
    assert grid.resolution == pytest.approx(0.5)


def test_verification_on_a_small_chip_uses_the_pass_with_the_most_templates(tmp_path):
    small = rigid_pair(tmp_path, "chip", size_m=65.0, seed=5, offset=(6.0, -4.0))
    pair = small.open()
    conf = LocalConfig()
    native = pair.native_resolution()
    res = resolution_with_templates(pair, conf, 16 * conf.verify_min_templates)
    counts = {
        p.factor: template_count(pair, conf, native * p.factor)
        for p in level_schedule(conf, pair.finest_resolution() / native)
    }
    assert (
        max(counts.values()) < 16 * conf.verify_min_templates
    )  # no pass has plenty: the one with the most is used
    assert template_count(pair, conf, res) == max(counts.values()) >= conf.verify_min_templates
    assert res == pytest.approx(
        pair.finest_resolution()
    )  # the optical level: more templates than the native pixel's
    assert template_count(pair, conf, res) > template_count(pair, conf, native)
    result = register(pair, "local")
    assert result.details["verify"]["templates"] >= conf.verify_min_templates
    assert small.field_error_px(result.field).mean() < 1.5


def test_template_correlations_on_a_few_tiles_are_a_subset_of_all(nonrigid_pair):
    pair = nonrigid_pair.open()
    conf = LocalConfig(tile_px=96, workers=1)
    zero = DisplacementField.constant(field_grid(pair, 4.0))
    full = template_correlations(pair, conf, [zero], 1.0)[0]
    few = template_correlations(pair, conf, [zero], 1.0, max_tiles=2)[0]
    assert 0 < len(few) < len(full)
    assert all(few[k] == pytest.approx(full[k], abs=1e-6) for k in few)
