"""``local``'s cost budgets: repeat passes and the verification sample, recorded when hit."""

from __future__ import annotations

import pytest

from models.methods.base import RegistrationInput
from models.registration import register
from samples.synth import SceneSpec, ShiftModel, SyntheticPair, synthesize_pair

# a fine level with too small a search radius for the non-rigid residual the coarse level leaves:
# the level at the native pixel runs again
SATURATING = {
    "global_prior": "false",
    "levels": "2,1",
    "radius_px": "8,2",
    "optical_level": "false",
    "refine_passes": "0",
}


def _pair(root, name: str, nonrigid_m: float, offset: tuple[float, float]) -> SyntheticPair:
    spec = SceneSpec(
        size_m=300.0,
        seed=7,
        sar_appearance="luminance",
        speckle_looks=100.0,
        shift=ShiftModel(
            offset=offset,
            nonrigid_m=nonrigid_m,
            wavelength_m=300.0,
            centre=(377150.0, 4105850.0),
            seed=7,
        ),
    )
    return synthesize_pair(root, spec, name)


@pytest.fixture(scope="module")
def nonrigid(tmp_path_factory) -> RegistrationInput:
    synthetic = _pair(tmp_path_factory.mktemp("budget"), "nr", 6.0, (20.0, -14.0))
    return synthetic.open()


def test_repeat_within_budget_runs_and_is_timed_on_its_own(nonrigid):
    result = register(nonrigid, "local", SATURATING)
    assert [lvl.get("repeat") for lvl in result.details["levels"]] == [None, None, "kept"]
    assert result.runtime_s["level1_repeat_match"] > 0
    assert result.runtime_s["level1_repeat_dense"] > 0
    assert "budgets" not in result.details
    assert not any("budget" in w for w in result.warnings)


def test_repeat_over_budget_is_not_run_and_is_recorded(nonrigid):
    # the repeat at the native pixel matches one scene of pixels: more than half a scene
    result = register(nonrigid, "local", {**SATURATING, "repeat_budget": "0.5"})
    assert [lvl.get("repeat") for lvl in result.details["levels"]] == [None, None]
    assert "level1_repeat_match" not in result.runtime_s
    (hit,) = result.details["budgets"]
    assert hit["stage"] == "level1 repeat" and hit["budget"] == "repeat_budget=0.5"
    assert "1.00 scenes" in hit["reason"]
    assert not any("budget" in w for w in result.warnings)
    assert result.details["verify"]["passed"]


def test_verification_over_its_template_budget_samples_tiles(nonrigid):
    # 64-pixel tiles hold 16 templates: a budget of 32 samples two tiles per field
    conf = {"tile_px": "64", "verify_max_templates": "32", "max_level_repeats": "0"}
    result = register(nonrigid, "local", conf)
    check = result.details["verify"]
    assert check["templates"] <= 32
    (hit,) = result.details["budgets"]
    assert hit["stage"] == "verify" and hit["budget"] == "verify_max_templates=32"
    assert "2 drawn evenly" in hit["reason"]
    assert not any("budget" in w for w in result.warnings)
    full = register(nonrigid, "local", {**conf, "verify_max_templates": "0"})
    assert full.details["verify"]["templates"] > 2 * check["templates"]
    assert "budgets" not in full.details
