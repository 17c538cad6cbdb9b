"""The activation flow on a small sample event plus a corrupt pair: what gets published, tracked,
cached and reported."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import UUID

import pytest

from flows.activation import activation

OK_SAR = "5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11"


def _flow_run_tree(client, root: UUID) -> list:
    """Every flow run under ``root`` (subflows of subflows), root included."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    runs, frontier = [client.read_flow_run(root)], [root]
    while frontier:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)
            ),
            sort=FlowRunSort.START_TIME_ASC,
            limit=200,
        )
        runs += children
        frontier = [c.id for c in children]
    return runs


def _task_runs(client, flow_runs: list) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    return client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in flow_runs])),
        sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        limit=200,
    )


@pytest.fixture(scope="module")
def run(sample, activation_params, new_workdir):
    """One activation over the good and the corrupt pair, and a rerun with the same parameters."""
    work = new_workdir("work")
    params = activation_params(work, catalogs=sample["catalogs"] + sample["bad_catalogs"])
    first = activation(**params, return_state=True)
    displacement = next((work / "pairs").glob(f"*{OK_SAR}/zero/*/displacement.tif"))
    stamp = displacement.stat().st_mtime_ns
    second = activation(**params, return_state=True)
    return {
        "work": work,
        "params": params,
        "first": first,
        "second": second,
        "displacement": displacement,
        "stamp": stamp,
    }


def test_one_corrupt_pair_fails_alone(run):
    s = run["first"].result()
    # Completed, with the failure in its state message
    assert run["first"].is_completed() and run["first"].message == "1 of 2 registrations failed"
    assert (s["pairs"], s["runs"], s["failed"]) == (2, 2, 1)
    ok, bad = (
        [r for r in s["results"] if r["status"] == "ok"],
        [r for r in s["results"] if r["status"] != "ok"],
    )
    assert len(ok) == 1 and OK_SAR in ok[0]["pair"]
    assert (
        "BAD" in bad[0]["pair"] and "checksum mismatch" in bad[0]["error"]
    )  # the reason reaches the summary
    assert (
        ok[0]["mean_m"] == pytest.approx(ok[0]["zero_m"]) and ok[0]["mean_m"] > 20
    )  # zero scores the zero shift
    published = sorted(
        p.name for p in (run["work"] / "catalog" / "test-quake").iterdir() if p.is_dir()
    )
    assert len(published) == 1 and OK_SAR in published[0]  # nothing of the bad pair was published


def test_published_stac_items_validate(run):
    from stac.readers import load_json
    from stac.schemas import validate as validate_stac

    s = run["first"].result()
    item = load_json(
        s["results"][0]["item"] if s["results"][0]["item"] else s["results"][1]["item"]
    )
    validate_stac(item)
    assert {
        "displacement",
        "confidence",
        "aligned_optical",
        "qa_flow",
        "qa_quiver",
        "qa_checkerboard",
        "qa_residuals",
        "residuals",
    } <= set(item["assets"])
    assert item["collection"] == "test-quake" and item["properties"]["coalign:method"] == "zero"
    assert item["properties"]["datetime"].startswith("2023-02-08")  # the SAR acquisition, not "now"
    for asset in item["assets"].values():  # self-contained: assets copied next to the item
        assert (
            (Path(s["results"][0]["item"] or s["results"][1]["item"]).parent / asset["href"])
            .resolve()
            .is_file()
        )
    catalog = load_json(s["catalog"])
    validate_stac(catalog)
    validate_stac(load_json(str(Path(s["catalog"]).parent / "test-quake" / "collection.json")))


def test_mlflow_run_tree(run):
    from mlflow.tracking import MlflowClient

    s = run["first"].result()
    assert s["mlflow_uri"] == f"sqlite:///{run['work'] / 'mlflow.db'}"
    client = MlflowClient(s["mlflow_uri"])
    exp = client.get_experiment_by_name("test-quake")
    runs = client.search_runs([exp.experiment_id])
    parent = client.get_run(s["mlflow_parent_run"])
    assert (
        parent.data.params["methods"] == '["zero"]'
        and parent.data.metrics["failed"] == 1
        and parent.data.metrics["pairs"] == 2
    )
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 1  # the corrupt pair never reached tracking
    child = children[0]
    ok = next(r for r in s["results"] if r["status"] == "ok")
    assert child.info.run_id == ok["mlflow_run_id"]
    assert child.data.params["method"] == "zero" and child.data.params["method_version"] == "1.0.0"
    assert child.data.params["config.resolution_m"] == "50.0"
    assert child.data.metrics["mean_m"] == pytest.approx(ok["mean_m"], abs=1e-3)
    assert child.data.metrics["zero_mean_m"] == pytest.approx(child.data.metrics["mean_m"])
    assert {
        "median_px",
        "p90_m",
        "matches",
        "inliers",
        "runtime_register_total_s",
        "runtime_total_s",
    } <= set(child.data.metrics)
    tags = child.data.tags
    assert (
        tags["coalign.method_version"] == "1.0.0"
        and tags["coalign.git_sha"]
        and "prefect.flow_run_id" in tags
    )
    assert Path(tags["coalign.stac_item"]).is_file()
    top = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"displacement", "aligned_optical", "qa", "residuals"} <= top
    assert {Path(a.path).name for a in client.list_artifacts(child.info.run_id, "qa")} >= {
        "qa_flow.png",
        "qa_checkerboard.png",
    }


def test_prefect_artifacts(run):
    from prefect.client.orchestration import get_client

    from flows.workdir import Workdir
    from tracking.store import experiment_id, runs_url

    s = run["first"].result()
    with get_client(sync_client=True) as client:
        tree = _flow_run_tree(client, run["first"].state_details.flow_run_id)
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"flow_run_id": {"any_": [str(r.id) for r in tree]}},
                "limit": 200,
                "offset": 0,
                "sort": "UPDATED_DESC",
            },
        ).json()
    by_type: dict[str, list] = {}
    for a in artifacts:
        by_type.setdefault(a["type"], []).append(a)
    table = next(a for a in by_type["table"] if a["key"] == "activation-test-quake-pairs")
    rows = json.loads(table["data"])
    assert sorted(r["status"] for r in rows) == ["failed", "ok"]
    ok_row = next(r for r in rows if r["status"] == "ok")
    item_url = Workdir.of(run["work"]).catalog_url(ok_row["item"])
    assert ok_row["item_url"] == item_url and item_url.startswith("http")
    assert "/runs/" + ok_row["mlflow_run_id"] in ok_row["mlflow_run_url"]
    summary = next(a for a in by_type["markdown"] if a["key"] == "activation-test-quake")
    assert (
        "**1 of 2 registrations failed**" in summary["data"]
        and s["catalog"] in summary["data"]
        and "checksum mismatch" in summary["data"]
    )
    # links a browser opens: the catalog view and the MLflow runs table of the event
    view = Workdir.of(run["work"]).catalog_url(run["work"] / "catalog" / "index.html")
    uri = f"sqlite:///{run['work'] / 'mlflow.db'}"
    runs_page = runs_url(uri, experiment_id(uri, "test-quake"))
    assert (s["catalog_url"], s["mlflow_runs_url"]) == (view, runs_page)
    assert f"[catalog view]({view})" in summary["data"]
    assert f"[runs of experiment test-quake]({runs_page})" in summary["data"]
    pair_md = next(a for a in by_type["markdown"] if (a["key"] or "").startswith("pair-"))
    assert (
        "zero shift" in pair_md["data"]
        and "displacement.tif" in pair_md["data"]
        and re.search(r"all \d+ expectations met", pair_md["data"])
    )
    assert any(
        float(a["data"]) == 100.0 for a in by_type["progress"]
    )  # the registration's progress reached 100 %


def test_rerun_with_same_parameters_reuses_cached_work(run):
    from prefect.client.orchestration import get_client

    first, second = run["first"].result(), run["second"].result()
    ok1, ok2 = (next(r for r in s["results"] if r["status"] == "ok") for s in (first, second))
    assert ok2["mean_m"] == ok1["mean_m"] and ok2["item"] == ok1["item"]
    assert run["displacement"].stat().st_mtime_ns == run["stamp"]  # not rewritten
    with get_client(sync_client=True) as client:
        tasks = {
            rid: _task_runs(client, _flow_run_tree(client, run[rid].state_details.flow_run_id))
            for rid in ("first", "second")
        }
    state = {
        rid: {t.name.rsplit("-", 1)[0]: t.state.name for t in runs if t.state}
        for rid, runs in tasks.items()
    }
    work_tasks = ("register", "warp-optical", "score", "qa-pictures", "validate-pair")
    assert all(state["first"][t] == "Completed" for t in work_tasks)
    assert all(state["second"][t] == "Cached" for t in work_tasks), state["second"]
    assert state["second"]["publish"] == "Completed"  # publishing is idempotent and always redone


def test_pair_fan_out_on_a_local_dask_cluster(sample, activation_params, run, new_workdir):
    from dask.distributed import LocalCluster

    work = new_workdir("dask")
    params = activation_params(work, catalogs=sample["catalogs"] + sample["bad_catalogs"])
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        summary = activation(**params, dask_address=cluster.scheduler_address)
        ran_on_dask = {k for k in cluster.scheduler.task_prefixes}
    assert any("register_job" in k or "register-pair-job" in k for k in ran_on_dask), ran_on_dask
    assert (summary["runs"], summary["failed"]) == (2, 1)
    ok = next(r for r in summary["results"] if r["status"] == "ok")
    assert ok["mean_m"] == pytest.approx(
        next(r for r in run["first"].result()["results"] if r["status"] == "ok")["mean_m"]
    )
    assert Path(ok["item"]).is_file() and str(work) in ok["item"]


def test_an_activation_whose_every_registration_failed_ends_failed(
    sample, activation_params, new_workdir
):
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client

    work = new_workdir("all-failed")
    params = activation_params(work, event="all-failed", catalogs=sample["bad_catalogs"])
    state = activation(**params, return_state=True)
    assert state.is_failed() and state.message == "the registration failed"
    summary = state.result(raise_on_failure=False)  # the summary, recorded all the same
    assert (summary["runs"], summary["failed"]) == (1, 1)
    assert "checksum mismatch" in summary["results"][0]["error"]
    parent = MlflowClient(summary["mlflow_uri"]).get_run(summary["mlflow_parent_run"])
    assert parent.info.status == "FAILED"  # closed, not left running
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts(limit=200)
    markdown = next(a for a in artifact if a.key == "activation-all-failed")
    assert "**the registration failed**" in str(markdown.data)
