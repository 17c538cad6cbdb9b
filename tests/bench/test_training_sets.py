"""Training sets of the learned descriptor: source selection, generated scenes, SN9 tiepoint sets
with their images, and the ``coalign train`` option checks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.training_sets import parse_sources, sn9_training_pairs, synth_training_pairs
from core.errors import InputError
from flows.cli import main
from samples.synth import SceneSpec, synthesize_pair


def test_sources_default_to_the_real_kinds_less_the_excluded():
    assert parse_sources(None, None) == ("cfog", "vsff", "srif", "bigearthnet")
    assert parse_sources("cfog,vsff,synth", ["vsff"]) == ("cfog", "synth")
    with pytest.raises(InputError, match="unknown source"):
        parse_sources("cfog,sentinel", None)


def test_generated_scenes_are_aligned_prepared_pairs():
    pairs = synth_training_pairs(2, seed=3, size_m=60.0)
    assert [p.name for p in pairs] == ["synth-3", "synth-4"]
    for p in pairs:
        assert p.optical.shape == p.sar.shape == (120, 120) and p.points is None
        assert np.nanmax(p.optical) <= 1.0 and np.isfinite(p.sar).mean() > 0.9


def test_sn9_sets_with_images_become_pairs_with_points(tmp_path):
    made = synthesize_pair(tmp_path / "src", SceneSpec(size_m=80.0, n_tiepoints=12), "s")
    sn9 = tmp_path / "sn9"
    sn9.mkdir()
    shutil.copy(made.optical, sn9 / "02_optical_train_01.tif")
    shutil.copy(made.sar, sn9 / "02_sar_train_01.tif")
    shutil.copy(made.tiepoints, sn9 / "02_tiepoints_train_01.csv")
    shutil.copy(made.tiepoints, sn9 / "03_tiepoints_train_01.csv")  # no images: skipped
    pairs = sn9_training_pairs(sn9, max_side=100)
    assert [(p.name, p.source) for p in pairs] == [("sn9-02-01", "sn9-02")]
    (p,) = pairs
    assert max(p.optical.shape) <= 100 and p.points.shape == (12, 4)
    h, w = p.optical.shape
    assert (p.points[:, 0] < w).all() and (p.points[:, 1] < h).all()


def test_train_refuses_bad_options_before_starting(capsys):
    assert main(["train", "--sources", "cfog,nope"]) == 2
    assert "unknown source; choose from" in capsys.readouterr().err
    assert main(["train", "--sources", "cfog", "--exclude", "cfog"]) == 2
    assert "leaves no source" in capsys.readouterr().err
    assert main(["train", "--sources", "synth", "--steps", "0"]) == 2
    assert "--steps 0" in capsys.readouterr().err
