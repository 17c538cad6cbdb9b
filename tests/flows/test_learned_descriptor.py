"""The learned descriptor end to end: `train` registers a version in MLflow, `register` and the
register-pair flow resolve ``models:/coalign-descriptor@champion`` and match with it, compare
shows CFOG local beside the learned version; bad model URIs are refused with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch

from flows.cli import main
from flows.commands.demo import SAR_ID
from flows.compare import compare
from flows.register_pair import register_pair
from flows.train import train_flow
from models.methods.local import LocalMethod
from stac.readers import discover

CHAMPION = "models:/coalign-descriptor@champion"


@pytest.fixture(scope="module")
def trained(new_workdir, tmp_path_factory):
    """A tiny descriptor trained on generated scenes and registered (version 1, @champion)."""
    from prefect.client.orchestration import get_client

    work = new_workdir("learned")
    state = train_flow(sources=["synth"], steps=4, workdir=str(work), return_state=True)
    with get_client(sync_client=True) as client:
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [str(state.state_details.flow_run_id)]}}},
        ).json()
    return {"work": work, "record": state.result(), "artifacts": artifacts}


@pytest.fixture
def in_workdir(trained, monkeypatch):
    """The trained working directory as ``$COALIGN_WORKDIR`` (the commands' store and cache)."""
    monkeypatch.setenv("COALIGN_WORKDIR", str(trained["work"]))
    return trained["work"]


def _register(sample, tmp_path, *settings: str) -> list[str]:
    pair = sample["event"].pair
    out = tmp_path / "d.tif"
    argv = ["register", str(pair.optical), str(pair.sar), "-o", str(out), "--json"]
    argv += ["--no-progress", "--overwrite"]
    for s in settings:
        argv += ["--set", s]
    return argv


def test_training_registers_a_champion_version(trained):
    from tracking.store import client

    record = trained["record"]
    assert record["version"] == 1 and record["uri"] == "models:/coalign-descriptor/1"
    c = client(record["mlflow_uri"])
    mv = c.get_model_version_by_alias("coalign-descriptor", "champion")
    assert str(mv.version) == "1" and mv.run_id == record["mlflow_run_id"]
    run = c.get_run(record["mlflow_run_id"])
    assert run.data.params["train.steps"] == "4"
    assert [m.step for m in c.get_metric_history(run.info.run_id, "val_acc_3px")] == [0, 4]
    names = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "descriptor"} <= names
    kinds = {a["type"]: a for a in trained["artifacts"]}
    assert kinds["progress"]["data"] == 100.0 and "version 1" in kinds["markdown"]["description"]


def test_weights_round_trip_through_mlflow(trained, tmp_path):
    from models.learned import load_descriptor
    from tracking.descriptor import resolve_descriptor

    path = resolve_descriptor(CHAMPION, trained["record"]["mlflow_uri"], tmp_path)
    assert path.is_relative_to(tmp_path) and path.name == "descriptor.pt"
    payload = torch.load(path, weights_only=True, map_location="cpu")
    assert payload["format"] == "coalign-descriptor/1"
    got, want = load_descriptor(path), load_descriptor(trained["record"]["weights"])
    assert got.conf == want.conf
    for k, v in want.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k


def test_register_with_the_champion_descriptor(sample, in_workdir, tmp_path, capsys):
    argv = _register(sample, tmp_path, "descriptor=learned", f"model={CHAMPION}")
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["version"].endswith("+coalign-descriptor/1")
    assert (tmp_path / "d.tif").is_file()
    cached = list((in_workdir / "cache" / "descriptors").rglob("descriptor.pt"))
    assert len(cached) == 1


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("models:/coalign-descriptor@nope", "has no alias @nope"),
        ("models:/coalign-descriptor/7", "versions: 1; aliases: @champion→1"),
        ("models:/no-such-model@champion", "registered: coalign-descriptor"),
        ("/no/such/weights.pt", "no such weights file"),
    ],
)
def test_bad_model_uri_exits_2(sample, in_workdir, tmp_path, capsys, model, message):
    argv = _register(sample, tmp_path, "descriptor=learned", f"model={model}")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "coalign register: error:" in err and message in err and model in err


def test_a_file_that_is_not_a_descriptor_exits_2(sample, in_workdir, tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torch")
    assert main(_register(sample, tmp_path, "descriptor=learned", f"model={junk}")) == 2
    assert str(junk) in capsys.readouterr().err


def test_learned_without_model_exits_2(sample, in_workdir, tmp_path, capsys):
    assert main(_register(sample, tmp_path, "descriptor=learned")) == 2
    assert "descriptor=learned needs the weights" in capsys.readouterr().err


def test_activate_pins_the_champion_before_it_starts(in_workdir, tmp_path):
    from core.errors import InputError
    from flows.cli import build_parser
    from flows.commands.activate import activation_parameters

    base = ["activate", "--catalog", str(tmp_path), "--set", "local:descriptor=learned"]
    args = build_parser().parse_args([*base, "--set", f"local:model={CHAMPION}"])
    settings = activation_parameters(args)["settings"]["local"]
    assert settings["model"] == "models:/coalign-descriptor/1"
    args = build_parser().parse_args([*base, "--set", f"local:model={CHAMPION}", "--emit"])
    assert activation_parameters(args)["settings"]["local"]["model"] == CHAMPION
    bad = build_parser().parse_args([*base, "--set", "local:model=models:/coalign-descriptor/5"])
    with pytest.raises(InputError, match="has no version 5"):
        activation_parameters(bad)


@pytest.fixture(scope="module")
def pair_runs(sample, trained):
    """The demo pair through register-pair with local's CFOG and with the champion descriptor
    (activation ``learned-quake``, scored): the two records."""
    scenes = discover(sample["catalogs"])
    optical = next(s for s in scenes if s.sensor == "optical")
    sar = next(s for s in scenes if s.id.endswith(SAR_ID))
    return [
        register_pair(
            optical.to_record(),
            sar.to_record(),
            method="local",
            settings=settings,
            tiepoints=sample["tiepoints"][SAR_ID],
            workdir=str(trained["work"]),
            activation="learned-quake",
        )
        for settings in (None, {"descriptor": "learned", "model": CHAMPION})
    ]


def test_compare_shows_cfog_and_the_learned_version(trained, pair_runs):
    cfog, learned = pair_runs
    assert cfog["descriptor"] == {"name": "cfog"} and cfog["key"] != learned["key"]
    assert learned["descriptor"]["name"] == "learned"
    assert learned["descriptor"]["model_uri"] == "models:/coalign-descriptor/1"
    assert len(learned["descriptor"]["sha256"]) == 64
    from tracking.store import client

    params = client(trained["record"]["mlflow_uri"]).get_run(learned["mlflow_run_id"]).data.params
    assert params["descriptor.sha256"] == learned["descriptor"]["sha256"]
    assert params["config.model_uri"] == "models:/coalign-descriptor/1"
    result = compare(experiment="learned-quake", workdir=str(trained["work"]))
    versions = {(r["method"], r["version"]) for r in result["rows"]}
    v = LocalMethod.version
    assert versions == {("local", v), ("local", f"{v}+coalign-descriptor/1")}


def test_verified_registrations_become_pseudo_label_pairs(trained, pair_runs):
    import numpy as np

    from bench.training_sets import pseudo_label_pairs

    verified = [r for r in pair_runs if (r["verify"] or {}).get("passed")]
    assert verified, "the demo pair's CFOG field is verified"
    pairs = pseudo_label_pairs(trained["work"], min_confidence=0.0)
    assert len(pairs) == len(verified)
    for p in pairs:
        assert p.optical.shape == p.sar.shape and p.points is None
        assert np.isfinite(p.sar).mean() > 0.5 and p.source.startswith("pseudo-")
    assert pseudo_label_pairs(trained["work"], min_confidence=1.01) == []
