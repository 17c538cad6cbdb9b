"""The compare flow on a temporary Prefect server, reading a real MLflow store."""

from __future__ import annotations

import csv
import json
import time

import pytest
from matplotlib.image import imread

from flows.cli import main
from tracking.benchmark import log_benchmark
from tracking.runs import finish_activation_run, log_pair_run, start_activation_run


def _pair(
    uri: str,
    parent: str,
    pair: str,
    method: str,
    version: str,
    status: str = "FINISHED",
    **metrics: float,
) -> str:
    time.sleep(0.01)  # distinct start times: the latest run of a pair × method version counts
    return log_pair_run(
        uri=uri,
        parent_run_id=parent,
        label=pair,
        method=method,
        method_version=version,
        config={},
        metrics=metrics,
        tags={"coalign.pair": pair},
        artifacts={},
        status=status,
    )


@pytest.fixture
def flood(uri) -> str:
    """An event experiment with known scores: reruns, an unscored run, a failed run, a parent
    run."""
    parent = start_activation_run(
        uri=uri, experiment="flood", activation="flood 1", params={}, tags={}
    )
    ref1, ref2 = (
        {"zero_mean_m": 30.0, "oracle_affine_mean_m": 5.0},
        {"zero_mean_m": 20.0, "oracle_affine_mean_m": 3.0},
    )
    _pair(uri, parent, "p1", "zero", "1.0.0", mean_m=30.0, mean_px=60.0, **ref1)
    _pair(uri, parent, "p2", "zero", "1.0.0", mean_m=20.0, mean_px=40.0, **ref2)
    _pair(uri, parent, "p1", "local", "2.0.0", mean_m=2.0, mean_px=4.0, **ref1)
    _pair(uri, parent, "p2", "local", "2.0.0", mean_m=3.0, mean_px=6.0, **ref2)
    _pair(
        uri, parent, "p1", "local", "2.0.0", mean_m=1.0, mean_px=2.0, **ref1
    )  # rerun: replaces the 2.0
    _pair(uri, parent, "p1", "local", "2.1.0", mean_m=1.5, mean_px=3.0, **ref1)
    _pair(uri, parent, "p2", "local", "2.1.0", matches=10.0)  # not scored
    _pair(uri, parent, "p1", "global-affine", "1.0.0", status="FAILED", mean_m=99.0)
    finish_activation_run(uri, parent, {"mean_m": 7.0})  # a parent's metrics are no method's
    return "flood"


def _artifact(key: str) -> dict:
    """The latest Prefect artifact with ``key``, from the server's REST API (GET
    /artifacts/{key}/latest)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        response = client.request("GET", "/artifacts/{key}/latest", path_params={"key": key})
    return response.json()


def test_compare_method_versions(flood, uri, workdir, prefect_harness, monkeypatch):
    from mlflow.tracking import MlflowClient

    from flows.compare import compare

    monkeypatch.setenv("COALIGN_MLFLOW_UI_URL", "http://mlflow.test:5005")
    result = compare(experiment=flood, workdir=str(workdir))

    rows = {(r["method"], r["version"]): r for r in result["rows"]}
    assert [(r["method"], r["version"]) for r in result["rows"]] == [
        ("local", "2.1.0"),
        ("local", "2.0.0"),
        ("zero", "1.0.0"),
    ]
    expected = {
        "runs": 2,
        "pairs": 2,
        "mean_m": 2.0,
        "mean_px": 4.0,
        "zero_mean_m": 25.0,
        "oracle_affine_mean_m": 4.0,
        "ratio_to_zero": 0.08,
    }
    assert {k: rows["local", "2.0.0"][k] for k in expected} == expected
    assert rows["local", "2.1.0"]["pairs"] == 1 and rows["local", "2.1.0"]["zero_mean_m"] == 30.0
    assert rows["zero", "1.0.0"]["mean_m"] == 25.0 and rows["zero", "1.0.0"]["ratio_to_zero"] == 1.0
    assert ("global-affine", "1.0.0") not in rows
    assert (result["zero_mean_m"], result["oracle_affine_mean_m"]) == (25.0, 4.0)
    assert result["best"]["version"] == "2.1.0" and result["mlflow_uri"] == uri

    with open(result["csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    assert result["csv"] == str(workdir / "compare" / "flood.csv")
    assert [(r["method"], r["version"], r["mean_m"]) for r in table] == [
        ("local", "2.1.0", "1.5"),
        ("local", "2.0.0", "2.0"),
        ("zero", "1.0.0", "25.0"),
    ]
    png = imread(result["plot"])
    assert png.shape[0] >= 300 and png.shape[1] >= 500

    table_artifact = _artifact("compare-flood")
    assert table_artifact["type"] == "table"
    data = (
        json.loads(table_artifact["data"])
        if isinstance(table_artifact["data"], str)
        else table_artifact["data"]
    )
    assert [r["mean_m"] for r in data] == [1.5, 2.0, 25.0]
    summary = _artifact("compare-flood-summary")
    assert summary["type"] == "markdown" and "**local 2.1.0**" in summary["data"]
    assert (
        "different numbers of pairs" in summary["data"]
        and summary["flow_run_id"] == table_artifact["flow_run_id"]
    )
    experiment = MlflowClient(uri).get_experiment_by_name(flood).experiment_id
    runs_page = f"http://mlflow.test:5005/#/experiments/{experiment}/runs"
    assert result["mlflow_runs_url"] == runs_page
    assert f"[runs of flood]({runs_page})" in summary["data"]
    assert "file://" not in summary["data"]
    assert f"`{result['csv']}`" in summary["data"] and f"`{result['plot']}`" in summary["data"]


def test_coalign_compare_command(flood, workdir, prefect_harness, capsys):
    assert main(["compare", "--experiment", flood, "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert (
        "local" in out
        and "zero shift 25.00 m" in out
        and str(workdir / "compare" / "flood.png") in out
    )
    assert main(["compare", "--experiment", "no-such-event", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("coalign compare: error: no MLflow experiment 'no-such-event'")
        and "flood" in err
    )


def _sn9(mean: float) -> dict[str, float]:
    return {
        "tiepoints": 10,
        "mean_px": mean,
        "median_px": mean,
        "p90_px": mean,
        "mean_m": mean,
        "median_m": mean,
        "p90_m": mean,
    }


def test_compare_a_benchmark_report(uri, workdir, tmp_path, prefect_harness):
    """A `coalign bench` report (its JSON layout) is logged once and compared like an event."""
    from flows.compare import compare

    cases = [
        {
            "name": name,
            "kind": "cfog",
            "warped": True,
            "references": {"field": {"zero": _sn9(zero), "oracle_affine": _sn9(oracle)}},
        }
        for name, zero, oracle in (("cfog-w0", 10.0, 2.0), ("cfog-w1", 14.0, 4.0))
    ]
    run = {
        "ok": True,
        "kind": "cfog",
        "version": "1.0.0",
        "matches": 5,
        "inliers": 4,
        "runtime_s": {"register_total": 0.5},
        "wall_s": 2.0,
        "peak_rss_mb": 300.0,
        "settings": {},
    }
    runs = [
        {**run, "case": "cfog-w0", "method": "zero", "scores": {"field": {"sn9": _sn9(10.0)}}},
        {**run, "case": "cfog-w1", "method": "zero", "scores": {"field": {"sn9": _sn9(14.0)}}},
        {
            **run,
            "case": "cfog-w0",
            "method": "local",
            "version": "2.0.0",
            "scores": {"field": {"sn9": _sn9(1.0)}},
        },
        {
            "ok": False,
            "case": "cfog-w1",
            "method": "local",
            "kind": "cfog",
            "error": "timed out after 60 s",
            "settings": {},
        },
    ]
    report = tmp_path / "results.json"
    report.write_text(
        json.dumps(
            {
                "coalign_bench": 1,
                "created": "2026-01-01T00:00:00+0000",
                "seed": 0,
                "methods": ["zero", "local"],
                "cases": cases,
                "runs": runs,
            }
        )
    )

    result = compare(experiment="bench", workdir=str(workdir), bench_report=str(report))
    rows = {r["method"]: r for r in result["rows"]}
    assert rows["zero"]["mean_m"] == 12.0 and rows["zero"]["oracle_affine_mean_m"] == 3.0
    assert (
        rows["local"]["pairs"] == 1
        and rows["local"]["mean_m"] == 1.0
        and rows["local"]["version"] == "2.0.0"
    )
    assert (result["zero_mean_m"], result["oracle_affine_mean_m"]) == (12.0, 3.0)
    assert log_benchmark(uri, report, "bench") == log_benchmark(
        uri, json.loads(report.read_text()), "bench"
    )

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    all_runs = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    assert len(all_runs) == 5  # one parent, four children: logged once
    failed = [r for r in all_runs if r.info.status == "FAILED"]
    assert len(failed) == 1 and failed[0].data.tags["coalign.error"].startswith("timed out")
