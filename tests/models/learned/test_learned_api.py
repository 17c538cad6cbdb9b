"""The learned descriptor's contract: dense output like CFOG, weight files, splits, determinism."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from core.errors import InputError
from models.learned import (
    FORMAT,
    DescriptorNet,
    TrainConfig,
    TrainingPair,
    aligned_sar,
    describe,
    load_descriptor,
    save_descriptor,
    split_pairs,
    train_descriptor,
)


def _net(seed: int = 0) -> DescriptorNet:
    torch.manual_seed(seed)
    return DescriptorNet()


def test_describe_contract_and_nodata() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((70, 90)).astype(np.float32)
    image[:20, :15] = np.nan
    net = _net()
    out = describe(image, "sar", net)
    assert out.shape == (16, 70, 90) and out.dtype == np.float32
    norm = np.linalg.norm(out, axis=0)
    assert np.all(norm[:20, :15] == 0.0)
    assert np.all(norm[:22, 15:17] == 0.0)  # no data is dilated
    assert np.allclose(norm[30:, 30:], 1.0, atol=1e-4)
    assert np.array_equal(out, describe(image, "sar", net))
    assert not np.allclose(out, describe(image, "optical", net))
    with pytest.raises(ValueError, match="modality"):
        describe(image, "lidar", net)  # type: ignore[arg-type]


def test_describe_matches_the_torch_dense_path() -> None:
    """NumPy upsampling and normalisation give the same descriptors as the network's own."""
    from models.learned.features import standardise

    image = np.random.default_rng(1).random((64, 48)).astype(np.float32)
    net = _net()
    with torch.no_grad():
        dense = net.dense(torch.from_numpy(standardise(image)[0])[None, None], "optical")[0]
    assert np.allclose(describe(image, "optical", net), dense.numpy(), atol=1e-5)


def test_describe_is_invariant_to_affine_intensity() -> None:
    image = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    net = _net()
    a = describe(image, "optical", net)
    b = describe(3.0 * image + 7.0, "optical", net)
    assert np.allclose(a, b, atol=1e-4)


def test_save_load_round_trip(tmp_path) -> None:
    net = DescriptorNet({"width": 16, "dilations": [1, 2]})
    path = save_descriptor(net, tmp_path / "sub" / "d.pt")
    payload = torch.load(path, weights_only=True, map_location="cpu")
    assert payload["format"] == FORMAT and payload["conf"]["width"] == 16
    loaded = load_descriptor(path)
    assert loaded.conf == net.conf
    image = np.random.default_rng(3).random((40, 40)).astype(np.float32)
    assert np.array_equal(describe(image, "sar", net), describe(image, "sar", loaded))
    assert load_descriptor(str(path)) is loaded  # cached per file version
    other = _net(5)
    save_descriptor(other, path)
    os.utime(path, ns=(1, 1))  # a rewritten file is a new version even within one clock tick
    reloaded = load_descriptor(path)
    assert reloaded is not loaded
    assert np.array_equal(describe(image, "sar", other), describe(image, "sar", reloaded))


def test_load_errors_name_the_file(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(InputError, match="nope.pt: no such file"):
        load_descriptor(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="garbage.pt: not a readable"):
        load_descriptor(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(InputError, match="foreign.pt: not a coalign descriptor"):
        load_descriptor(foreign)
    wrong = tmp_path / "wrong.pt"
    state = DescriptorNet({"width": 16}).state_dict()
    torch.save({"format": FORMAT, "conf": {"width": 32}, "state_dict": state}, wrong)
    with pytest.raises(InputError, match="wrong.pt: the weights do not fit"):
        load_descriptor(wrong)
    folder = tmp_path / "dir.pt"
    folder.mkdir()
    with pytest.raises(InputError, match="dir.pt: not a file"):
        load_descriptor(folder)


def _pair(name: str, source: str) -> TrainingPair:
    z = np.zeros((4, 4), np.float32)
    return TrainingPair(name, source, z, z)


def test_split_holds_out_whole_pairs_per_source() -> None:
    pairs = [_pair(f"a{i}", "a") for i in range(10)] + [_pair(f"b{i}", "b") for i in range(5)]
    train, val = split_pairs(pairs, 0.2, seed=3)
    names_t, names_v = {p.name for p in train}, {p.name for p in val}
    assert not names_t & names_v and len(names_t | names_v) == 15
    assert sum(n.startswith("a") for n in names_v) == 2
    assert sum(n.startswith("b") for n in names_v) == 1
    assert [p.name for p in split_pairs(pairs, 0.2, seed=3)[1]] == [p.name for p in val]
    # adding a pair does not move the others
    _, val_more = split_pairs([*pairs, _pair("a10", "a")], 0.2, seed=3)
    assert names_v - {"a10"} <= {p.name for p in val_more} | names_v
    assert split_pairs(pairs[:2], 0.2, seed=0)[1] and split_pairs(pairs[:2], 0.2, seed=0)[0]
    with pytest.raises(ValueError, match="unique"):
        split_pairs([_pair("x", "a"), _pair("x", "b")], 0.2, 0)


def test_training_split_and_seed(synth_pairs) -> None:
    conf = TrainConfig(
        patch=64, batch=2, queries=32, steps=3, eval_every=100, val_crops=1, val_size=96, seed=4
    )
    a = train_descriptor(synth_pairs, conf)
    b = train_descriptor(synth_pairs, conf)
    assert set(a.split["train"]).isdisjoint(a.split["val"])
    assert sorted(a.split["train"] + a.split["val"]) == sorted(p.name for p in synth_pairs)
    assert a.manifest["split"] == a.split and a.manifest["counts"]["pairs"] == len(synth_pairs)
    assert all(len(p["sha256"]) == 64 for p in a.manifest["pairs"])
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
    c = train_descriptor(synth_pairs, dataclasses.replace(conf, seed=5))
    assert not torch.equal(a.net.head_coarse.weight, c.net.head_coarse.weight)
    assert [h["step"] for h in a.history] == [0, 3]
    assert {"val_acc_1px", "val_acc_3px_cfog", "loss"} <= set(a.history[-1])


def test_training_restores_global_torch_state(synth_pairs) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    conf = TrainConfig(patch=64, batch=2, queries=16, steps=1, val_share=0.0, eval_every=10)
    train_descriptor(synth_pairs[:2], conf)
    assert torch.equal(torch.rand(1), expected)
    assert torch.get_num_threads() == threads


def test_aligned_sar_through_points() -> None:
    rng = np.random.default_rng(0)
    optical = rng.random((80, 80)).astype(np.float32)
    sar = np.full((80, 80), np.nan, np.float32)
    sar[:, 3:] = optical[:, :-3]  # SAR = optical seen 3 px to the right
    cols, rows = rng.uniform(5, 75, (2, 30))
    points = np.column_stack([cols, rows, cols + 3, rows])
    pair = TrainingPair("p", "s", optical, sar, points)
    back = aligned_sar(pair)
    inner = np.s_[10:70, 10:70]
    assert np.nanmax(np.abs(back[inner] - optical[inner])) < 1e-3


def test_pairs_smaller_than_the_patch_still_train(synth_pairs) -> None:
    """Small pairs (BigEarthNet's 120² patches) are padded with no data, and give smaller
    validation crops."""
    small = [
        TrainingPair(p.name, p.source, p.optical[:100, :100], p.sar[:100, :100])
        for p in synth_pairs
    ]
    conf = TrainConfig(patch=128, batch=2, queries=32, steps=2, eval_every=10, val_crops=1)
    result = train_descriptor(small, conf)
    assert result.history[-1]["step"] == 2
    assert result.history[-1]["val_matched_cfog"] > 0.5  # crops exist and CFOG matches in them
