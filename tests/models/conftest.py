"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest

from samples.synth import SceneSpec, ShiftModel, SyntheticPair, synthesize_pair


@pytest.fixture(scope="module")
def nonrigid_pair(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPair:
    """A 300 m luminance-SAR pair (light speckle) moved by a translation plus a smooth
    non-rigid field of 6 m."""
    size = 300.0
    spec = SceneSpec(
        size_m=size,
        seed=7,
        sar_appearance="luminance",
        speckle_looks=100.0,
        shift=ShiftModel(
            offset=(20.0, -14.0),
            nonrigid_m=6.0,
            wavelength_m=size,
            centre=(377150.0, 4105850.0),
            seed=7,
        ),
    )
    return synthesize_pair(tmp_path_factory.mktemp("nonrigid"), spec, "nr")
