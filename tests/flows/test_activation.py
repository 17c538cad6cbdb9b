"""The activation flow end to end: discovery → pairs → register → score → QA → MLflow → STAC, reruns, failures."""

from __future__ import annotations

import datetime as dt
import inspect
import importlib
from pathlib import Path

import pytest
import yaml

from flows.activation import activation, configure_local_results
from flows.commands.demo import build_demo_catalogs
from stac.publish import validate_stac
from stac.readers import load_json
from stac.sample_catalog import SampleScene, write_maxar_catalog, write_umbra_catalog
from models.synth import SceneSpec, ShiftModel, synthesize_pair

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """The demo event (small) plus a second pair whose SAR asset is corrupted after cataloguing."""
    work = tmp_path_factory.mktemp("work")
    ev, maxar, umbra = build_demo_catalogs(work, size_m=160.0)
    bad = synthesize_pair(work / "bad", SceneSpec(size_m=100.0, origin=(378000.0, 4106000.0), seed=5,
                                                  shift=ShiftModel(offset=(5.0, 3.0), centre=(378050.0, 4105950.0))), "bad")
    bad_maxar = write_maxar_catalog(work / "bad" / "maxar", "bad-event", [SampleScene(bad.optical, "10400100BAD", ev.optical_time, "WV02", 0.5)])
    bad_umbra = write_umbra_catalog(work / "bad" / "umbra", [SampleScene(bad.sar, "bad00000-0000-4000-8000-000000000000", ev.sar_time, "Umbra-04", 0.65)])
    gec = next((work / "bad" / "umbra").rglob("*_GEC.tif"))
    gec.write_bytes(gec.read_bytes()[: gec.stat().st_size // 2])  # truncated download: checksum and TIFF both broken
    params = dict(
        event="test-quake", start=(ev.event_date - dt.timedelta(days=30)).isoformat(), end=(ev.event_date + dt.timedelta(days=30)).isoformat(),
        event_date=ev.event_date.isoformat(), catalogs=[str(maxar), str(umbra), str(bad_maxar), str(bad_umbra)],
        methods=["zero"], tiepoints={"5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11": str(ev.pair.tiepoints)}, workdir=str(work / "out"),
    )
    configure_local_results(work / "out")
    return {"params": params, "work": work, "first": activation(**params)}


def test_activation_publishes_tracks_and_isolates_failures(event):
    s = event["first"]
    assert s["pairs"] == 2 and s["runs"] == 2 and s["failed"] == 1
    ok = [r for r in s["results"] if r["status"] == "ok"]
    bad = [r for r in s["results"] if r["status"] != "ok"]
    assert len(ok) == 1 and "BAD" in bad[0]["pair"]
    assert ok[0]["mean_m"] == pytest.approx(ok[0]["zero_m"])  # the zero method scores exactly the zero shift
    assert ok[0]["mean_m"] > 20
    item = load_json(ok[0]["item"])
    validate_stac(item)
    assert {"displacement", "confidence", "aligned_optical", "qa_flow", "qa_checkerboard", "residuals"} <= set(item["assets"])
    catalog = load_json(s["catalog"])
    validate_stac(catalog)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(s["mlflow_uri"])
    exp = client.get_experiment_by_name("test-quake")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.info.run_id == s["mlflow_parent_run"])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 1
    child = children[0]
    assert child.data.params["method"] == "zero" and child.data.params["method_version"] == "1.0.0"
    assert child.data.metrics["mean_m"] == pytest.approx(ok[0]["mean_m"], abs=1e-3)
    assert "zero_mean_m" in child.data.metrics and "runtime_register_total_s" in child.data.metrics
    assert child.data.tags["coalign.method_version"] == "1.0.0" and "prefect.flow_run_id" in child.data.tags
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"displacement", "qa", "residuals"} <= artifacts
    assert parent.data.metrics["failed"] == 1


def test_rerun_with_same_parameters_reuses_cached_registration(event):
    from prefect.client.orchestration import get_client

    second = activation(**event["params"])
    assert second["failed"] == 1
    assert [r["mean_m"] for r in second["results"]] == [r["mean_m"] for r in event["first"]["results"]]
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_task_runs(limit=200, sort=TaskRunSort.EXPECTED_START_TIME_DESC) if r.name.startswith("register-")]
    states = [r.state.name for r in runs if r.state]
    assert "Cached" in states  # the second activation did not register the pair again


def test_prefect_yaml_deployments_reference_real_flows():
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in doc["deployments"]}
    assert {"activation", "register-pair-gpu", "register-pair-cpu"} <= names
    for d in doc["deployments"]:
        path, func = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        params = set(inspect.signature(flow.fn).parameters)
        assert set(d.get("parameters", {})) <= params, d["name"]
        for trigger in d.get("triggers", []):
            assert set(trigger["parameters"]) <= params
            assert trigger["expect"] == ["coalign.activation.declared"]
    act = next(d for d in doc["deployments"] if d["name"] == "activation")
    assert act["parameters"]["register_deployment"].split("/")[1] in names
    assert act["schedules"][0]["cron"]
    assert next(d for d in doc["deployments"] if d["name"] == "register-pair-gpu")["work_pool"]["name"] == "gpu"


def test_pairs_fan_out_on_a_dask_cluster(event):
    from dask.distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    params = dict(event["params"], workdir=str(event["work"] / "out-dask"))
    configure_local_results(params["workdir"])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        flow = activation.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        summary = flow(**params, dask_address=cluster.scheduler_address)
    assert summary["runs"] == 2 and summary["failed"] == 1
    ok = next(r for r in summary["results"] if r["status"] == "ok")
    first_ok = next(r for r in event["first"]["results"] if r["status"] == "ok")
    assert ok["mean_m"] == pytest.approx(first_ok["mean_m"])
    assert Path(ok["item"]).exists()


def test_compare_method_versions(event, tmp_path):
    from flows.compare import compare

    result = compare(experiment="test-quake", workdir=event["params"]["workdir"])
    zero = next(r for r in result["rows"] if r["method"] == "zero")
    assert zero["version"] == "1.0.0" and zero["runs"] >= 1
    assert zero["mean_m"] == pytest.approx(zero["zero_mean_m"])
    assert Path(result["csv"]).read_text().startswith("method,version,runs")
    assert Path(result["plot"]).stat().st_size > 1000
