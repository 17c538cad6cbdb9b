"""Learned descriptors in a real MLflow SQLite store: training runs, registered versions and
aliases, model URIs resolved to cached weights, and what is refused."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputError
from flows.descriptor_options import resolve_model_triples
from models.learned import DescriptorNet, TrainConfig, TrainResult, load_descriptor
from tracking.descriptor import (
    DESCRIPTOR_MODEL,
    log_descriptor_training,
    resolve_model,
    resolve_model_settings,
)
from tracking.store import client


def _result(seed: int) -> TrainResult:
    """An untrained network with a short made-up history (what the registry stores)."""
    torch.manual_seed(seed)
    history = [
        {"step": 0, "loss": 5.0, "val_acc_1px": 0.1, "val_acc_3px": 0.2, "val_acc_5px": 0.3},
        {"step": 10, "loss": 4.0, "val_acc_1px": 0.2, "val_acc_3px": 0.4, "val_acc_5px": 0.5},
    ]
    manifest = {"sources": {"synth": 2}, "pairs": []}
    return TrainResult(DescriptorNet(), history, manifest, {"train": ["a"], "val": ["b"]})


@pytest.fixture
def store(workdir):
    """A store with two registered versions; @champion on version 2."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    nets = []
    for seed in (1, 2):
        result = _result(seed)
        run_id, version = log_descriptor_training(uri, result, TrainConfig(steps=10))
        nets.append((run_id, version, result.net))
    return uri, nets


def _same(a: DescriptorNet, b: DescriptorNet) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_versions_aliases_and_curves(store):
    uri, nets = store
    assert [v for _, v, _ in nets] == [1, 2]
    c = client(uri)
    assert str(c.get_model_version_by_alias(DESCRIPTOR_MODEL, "champion").version) == "2"
    history = c.get_metric_history(nets[0][0], "val_acc_3px")
    assert [(m.step, m.value) for m in history] == [(0, 0.2), (10, 0.4)]
    assert c.get_run(nets[0][0]).data.params["train.steps"] == "10"


def test_uris_resolve_to_each_versions_weights(store, tmp_path):
    uri, nets = store
    one = resolve_model(f"models:/{DESCRIPTOR_MODEL}/1", uri, tmp_path)
    champion = resolve_model(f"models:/{DESCRIPTOR_MODEL}@champion", uri, tmp_path)
    latest = resolve_model(f"models:/{DESCRIPTOR_MODEL}", uri, tmp_path)
    assert one.pinned == f"models:/{DESCRIPTOR_MODEL}/1"
    assert champion.pinned == latest.pinned == f"models:/{DESCRIPTOR_MODEL}/2"
    assert _same(load_descriptor(one.path), nets[0][2])
    assert _same(load_descriptor(champion.path), nets[1][2])
    assert not _same(load_descriptor(one.path), nets[1][2])
    stamp = champion.path.stat().st_mtime_ns
    again = resolve_model(f"models:/{DESCRIPTOR_MODEL}@champion", uri, tmp_path)
    assert again.path.stat().st_mtime_ns == stamp  # downloaded once


def test_settings_get_the_file_and_the_pinned_version(store, tmp_path):
    uri, _ = store
    settings = {"descriptor": "learned", "model": f"models:/{DESCRIPTOR_MODEL}@champion"}
    out = resolve_model_settings(settings, uri, tmp_path)
    assert out["descriptor"] == "learned" and out["model_uri"] == f"models:/{DESCRIPTOR_MODEL}/2"
    assert out["model"].endswith("descriptor.pt") and out["model"].startswith(str(tmp_path))


def test_bench_triples_resolve_only_the_model(store, tmp_path):
    uri, _ = store
    triples = (
        ("local", "descriptor", "learned"),
        ("local", "model", f"models:/{DESCRIPTOR_MODEL}/1"),
        ("zero", "foo", "bar"),
    )
    out = dict(((m, k), v) for m, k, v in resolve_model_triples(triples, uri, tmp_path))
    assert out[("local", "model_uri")] == f"models:/{DESCRIPTOR_MODEL}/1"
    assert out[("zero", "foo")] == "bar" and out[("local", "descriptor")] == "learned"


def test_a_registered_model_without_weights_is_refused(store, tmp_path):
    uri, _ = store
    c = client(uri)
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"x")
    c.create_registered_model("not-a-descriptor")
    c.create_model_version("not-a-descriptor", source=folder.as_uri())
    with pytest.raises(InputError, match="is not a coalign descriptor"):
        resolve_model("models:/not-a-descriptor/1", uri, tmp_path / "cache")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("models:/a/b/c", "expected models:/NAME@ALIAS"),
        (f"models:/{DESCRIPTOR_MODEL}@staging", "aliases: @champion→2"),
        (f"models:/{DESCRIPTOR_MODEL}/9", "versions: 1, 2"),
    ],
)
def test_bad_uris_name_what_exists(store, tmp_path, model, message):
    uri, _ = store
    with pytest.raises(InputError, match=message) as info:
        resolve_model(model, uri, tmp_path)
    assert model in str(info.value)
