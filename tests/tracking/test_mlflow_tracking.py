"""MLflow run tree on a real SQLite store: parent + child runs, params, metrics, tags, artifacts."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from core.errors import InputError
from tracking import store as tracking
from tracking.runs import (
    finish_activation_run,
    log_pair_run,
    pair_label,
    pair_run_name,
    short_scene_id,
    start_activation_run,
)
from tracking.store import tracking_uri


@pytest.fixture
def products(tmp_path) -> dict[str, Path]:
    """Small real files standing for a pair's products."""
    out = tmp_path / "products"
    (out / "qa").mkdir(parents=True)
    paths = {
        "displacement": out / "displacement.tif",
        "residuals": out / "residuals.csv",
        "qa_flow": out / "qa" / "qa_flow.png",
    }
    paths["displacement"].write_bytes(b"II*\x00tiff")
    paths["residuals"].write_text("sar_row,sar_col,optical_row,optical_col,error_m\n1,2,3,4,0.5\n")
    paths["qa_flow"].write_bytes(b"\x89PNG\r\n\x1a\n")
    return paths


def test_tracking_uri_defaults_to_sqlite_in_the_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("COALIGN_MLFLOW_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / "w") == f"sqlite:///{(tmp_path / 'w').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5000"
    monkeypatch.setenv("COALIGN_MLFLOW_URI", "http://127.0.0.1:5001")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5001"
    assert tracking.artifact_root("sqlite:////data/x/mlflow.db") == Path("/data/x/mlartifacts")
    assert tracking.artifact_root("http://127.0.0.1:5000") is None


def _log_run_tree(uri: str, products: dict[str, Path], monkeypatch) -> tuple[str, str]:
    """An activation run with one pair run under it (git SHA abc1234); their run ids."""
    monkeypatch.setenv("COALIGN_GIT_SHA", "abc1234")
    tracking.git_sha.cache_clear()
    try:
        parent = start_activation_run(
            uri=uri,
            experiment="quake-2023",
            activation="quake-2023 2023-02-08T00:00Z",
            params={"methods": ["local", "zero"], "aoi": {"bbox": [37.0, 36.9, 37.5, 37.3]}},
            tags={"coalign.event": "quake-2023"},
        )
        child = log_pair_run(
            uri=uri,
            parent_run_id=parent,
            experiment="quake-2023",
            label="o1 × s1",
            method="local",
            method_version="2.1.0",
            config={"levels": [4, 2, 1], "interpolation": "gaussian", "nested": {"a": 1}},
            metrics={
                "mean_m": 1.5,
                "mean_px": 3.0,
                "median_m": 1.2,
                "p90_m": 2.9,
                "zero_mean_m": 30.0,
                "matches": 420,
                "inliers": 300,
                "runtime_register_total_s": 12.5,
                "not_scored": None,
            },
            tags={"coalign.pair": "o1__s1"},
            artifacts={
                **products,
                "aligned_optical": "https://example.org/items/o1__s1/aligned_optical.tif",
            },
        )
        finish_activation_run(uri, parent, {"pairs": 1, "failed": 0})
    finally:
        tracking.git_sha.cache_clear()
    return parent, child


def test_activation_run_records_its_parameters_and_summary(uri, workdir, products, monkeypatch):
    parent, _ = _log_run_tree(uri, products, monkeypatch)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("quake-2023")
    assert exp.artifact_location == (workdir / "mlartifacts" / "quake-2023").resolve().as_uri()
    p = client.get_run(parent)
    assert p.info.status == "FINISHED" and p.data.metrics == {"pairs": 1.0, "failed": 0.0}
    assert p.data.params == {"methods": '["local", "zero"]', "aoi.bbox": "[37.0, 36.9, 37.5, 37.3]"}
    assert (
        p.data.tags["coalign.git_sha"] == "abc1234" and p.data.tags["coalign.event"] == "quake-2023"
    )


def test_pair_run_is_a_child_with_flat_config_tags_and_artifacts(
    uri, workdir, products, monkeypatch
):
    parent, child = _log_run_tree(uri, products, monkeypatch)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("quake-2023")
    c = client.get_run(child)
    assert (
        c.info.status == "FINISHED"
        and c.info.experiment_id == exp.experiment_id
        and c.info.run_name == "local 2.1.0 · o1 × s1"
    )
    assert c.data.tags["mlflow.parentRunId"] == parent
    assert c.data.params == {
        "method": "local",
        "method_version": "2.1.0",
        "config.levels": "[4, 2, 1]",
        "config.interpolation": "gaussian",
        "config.nested.a": "1",
    }
    assert (
        c.data.metrics["mean_m"] == 1.5
        and c.data.metrics["inliers"] == 300
        and "not_scored" not in c.data.metrics
    )
    tags = c.data.tags
    assert tags["coalign.method"] == "local" and tags["coalign.method_version"] == "2.1.0"
    assert tags["coalign.git_sha"] == tags["mlflow.source.git.commit"] == "abc1234"
    assert tags["coalign.pair"] == "o1__s1"
    assert (
        tags["coalign.href.aligned_optical"]
        == "https://example.org/items/o1__s1/aligned_optical.tif"
    )
    assert "prefect.flow_run_id" not in tags  # not inside a flow run
    files = {a.path for a in client.list_artifacts(child)}
    assert files == {"displacement", "residuals", "qa"}
    assert [a.path for a in client.list_artifacts(child, "qa")] == ["qa/qa_flow.png"]
    local = Path(client.download_artifacts(child, "residuals/residuals.csv", str(workdir)))
    assert local.read_text() == products["residuals"].read_text()
    assert (
        workdir
        / "mlartifacts"
        / "quake-2023"
        / child
        / "artifacts"
        / "displacement"
        / "displacement.tif"
    ).is_file()


def test_bad_tracking_input_leaves_no_run(uri, products, tmp_path):
    parent = start_activation_run(uri=uri, experiment="ev", activation="a", params={}, tags={})
    common = dict(
        uri=uri,
        label="p",
        method="zero",
        method_version="1.0.0",
        config={},
        metrics={},
        tags={},
    )
    with pytest.raises(InputError, match="does not exist"):
        log_pair_run(
            parent_run_id=parent, artifacts={"residuals": tmp_path / "missing.csv"}, **common
        )
    with pytest.raises(InputError, match="not found"):
        log_pair_run(parent_run_id="0" * 32, artifacts={}, **common)
    with pytest.raises(InputError, match="not 'other'"):
        log_pair_run(parent_run_id=parent, experiment="other", artifacts={}, **common)
    with pytest.raises(InputError, match="run status"):
        finish_activation_run(uri, parent, {}, status="DONE")
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ev").experiment_id])
    assert [r.info.run_id for r in runs] == [parent]


def _log_child(uri: str, parent: str, residuals: str) -> str:
    return log_pair_run(
        uri=uri,
        parent_run_id=parent,
        label="o2 × s2",
        method="zero",
        method_version="1.0.0",
        config={"resolution_m": 50.0},
        metrics={"mean_m": 1.25},
        tags={"coalign.pair": "o2__s2"},
        artifacts={"residuals": residuals},
    )


def test_child_run_from_another_process(uri, products):
    parent = start_activation_run(
        uri=uri, experiment="ev", activation="act-1", params={"methods": ["zero"]}, tags={}
    )
    with mp.get_context("spawn").Pool(1) as pool:
        child = pool.apply(_log_child, (uri, parent, str(products["residuals"])))
    run = MlflowClient(uri).get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics["mean_m"] == 1.25 and run.data.params["config.resolution_m"] == "50.0"
    assert [a.path for a in MlflowClient(uri).list_artifacts(child)] == ["residuals"]


def test_tasks_inside_a_flow_tag_the_flow_run(uri, products, prefect_harness):
    from prefect import flow
    from prefect.runtime import flow_run

    from tasks.tracking import track_activation_end, track_activation_start, track_pair

    @flow
    def tracked() -> tuple[str, str, str]:
        parent = track_activation_start(
            uri=uri, experiment="ev", activation="act", params={"n": 1}, tags={}
        )
        child = track_pair(
            uri=uri,
            parent_run_id=parent,
            label="p",
            method="zero",
            method_version="1.0.0",
            config={},
            metrics={"mean_m": 2.0},
            tags={},
            artifacts={"qa_flow": products["qa_flow"]},
        )
        track_activation_end(uri, parent, {"runs": 1})
        return parent, child, str(flow_run.id)

    parent, child, flow_run_id = tracked()
    client = MlflowClient(uri)
    assert client.get_run(child).data.tags["prefect.flow_run_id"] == flow_run_id
    assert client.get_run(parent).data.tags["prefect.flow_run_id"] == flow_run_id
    assert (
        client.get_run(parent).data.metrics["runs"] == 1.0
        and client.get_run(parent).info.status == "FINISHED"
    )


def test_pair_run_names_lead_with_the_method():
    optical, sar = "37/031133102033/10300100SAMPLE01", "5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11"
    assert pair_label(optical, sar) == "10300100SAMPLE01 × 5a3e1f02"
    assert pair_run_name("local", "1.5.0", pair_label(optical, sar)) == (
        "local 1.5.0 · 10300100SAMPLE01 × 5a3e1f02"
    )
    long_id = "S1A_IW_GRDH_1SDV_20230206T033507_20230206T033532_046909_05A0C1_1F3E"
    assert short_scene_id(long_id) == "S1A_IW_G…0C1_1F3E"


def test_pair_run_spans_the_registration(uri, products):
    """The child run starts and ends when the registration did, not when it was logged."""
    started = time.time() - 3600.0
    parent = start_activation_run(
        uri=uri, experiment="ev", activation="a", params={}, tags={}, started_at=started
    )
    child = log_pair_run(
        uri=uri,
        parent_run_id=parent,
        label=pair_label("10300100SAMPLE01", "5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11"),
        method="local",
        method_version="1.5.0",
        config={},
        metrics={"runtime_total_s": 754.25},
        tags={"coalign.pair": "10300100SAMPLE01__5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11"},
        artifacts={},
        started_at=started,
        ended_at=started + 754.25,
    )
    finish_activation_run(uri, parent, {}, ended_at=started + 800.0)
    client = MlflowClient(uri)
    c, p = client.get_run(child), client.get_run(parent)
    assert c.info.run_name.startswith("local 1.5.0 · 10300100SAMPLE01")
    assert c.data.tags["coalign.pair"].startswith("10300100SAMPLE01__")
    assert c.info.start_time == round(started * 1000)
    assert (c.info.end_time - c.info.start_time) / 1000 == pytest.approx(754.25, abs=0.002)
    assert (p.info.end_time - p.info.start_time) / 1000 == pytest.approx(800.0, abs=0.002)


def test_artifact_copies_follow_the_umask(uri, workdir, products, tmp_path):
    """Copies in the local artifact store get 0644 under umask 022, whatever the source mode."""
    for path in products.values():
        path.chmod(0o600)
    folder = tmp_path / "tiles"
    folder.mkdir()
    (folder / "t0.txt").write_text("tile")
    (folder / "t0.txt").chmod(0o600)
    old = os.umask(0o022)
    try:
        parent = start_activation_run(uri=uri, experiment="ev", activation="a", params={}, tags={})
        child = log_pair_run(
            uri=uri,
            parent_run_id=parent,
            label="p",
            method="zero",
            method_version="1.0.0",
            config={},
            metrics={},
            tags={},
            artifacts={**products, "tiles": folder},
        )
    finally:
        os.umask(old)
    root = workdir / "mlartifacts" / "ev" / child / "artifacts"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}
    assert {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_dir()} == {0o755}
