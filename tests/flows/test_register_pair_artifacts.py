"""The register-pair flow's Prefect artifacts link to what a browser can open, and its MLflow run
reads well: http links into the served catalog, embedded QA pictures, the MLflow run page, a child
run named after the method that spans the registration."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from urllib.parse import unquote

import pytest

from flows.commands.demo import SAR_ID
from flows.register_pair import register_pair
from stac.readers import discover

CATALOG_URL = "http://catalog.test:9000/coalign"
MLFLOW_UI = "http://mlflow.test:5005"


@pytest.fixture(scope="module")
def run(sample, new_workdir):
    """One register-pair run of the sample pair (method zero, scored), under umask 022, with
    the catalog and MLflow UI served at test addresses; its record, state and artifacts."""
    from prefect.client.orchestration import get_client

    work = new_workdir("pair-artifacts")
    scenes = discover(sample["catalogs"])
    optical = next(s for s in scenes if s.sensor == "optical")
    sar = next(s for s in scenes if s.id.endswith(SAR_ID))
    saved = {k: os.environ.get(k) for k in ("COALIGN_CATALOG_URL", "COALIGN_MLFLOW_UI_URL")}
    os.environ.update({"COALIGN_CATALOG_URL": CATALOG_URL, "COALIGN_MLFLOW_UI_URL": MLFLOW_UI})
    umask = os.umask(0o022)
    try:
        state = register_pair(
            optical.to_record(),
            sar.to_record(),
            method="zero",
            tiepoints=sample["tiepoints"][SAR_ID],
            workdir=str(work),
            activation="links-quake",
            return_state=True,
        )
    finally:
        os.umask(umask)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    with get_client(sync_client=True) as client:
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"flow_run_id": {"any_": [str(state.state_details.flow_run_id)]}},
                "limit": 50,
                "offset": 0,
                "sort": "UPDATED_DESC",
            },
        ).json()
    return {"work": work, "record": state.result(), "artifacts": artifacts}


def _markdown(run) -> str:
    return next(a for a in run["artifacts"] if a["type"] == "markdown")["data"]


def test_markdown_links_open_in_a_browser(run):
    md, work = _markdown(run), run["work"]
    assert "file://" not in md
    links = re.findall(r"\]\(([^)]+)\)", md)
    catalog = [u for u in links if not u.startswith(MLFLOW_UI)]
    assert len(catalog) >= 8 and all(u.startswith(f"{CATALOG_URL}/") for u in catalog)
    for url in catalog:
        assert (work / "catalog" / unquote(url[len(CATALOG_URL) + 1 :])).is_file(), url
    record = run["record"]
    item_url = f"{CATALOG_URL}/{Path(record['item']).relative_to(work / 'catalog').as_posix()}"
    assert f"]({item_url})" in md
    for key in ("displacement", "aligned_optical", "residuals"):
        assert re.search(rf"- {key}: \[[^]]+\]\({re.escape(CATALOG_URL)}/[^)]+\)", md), key


def test_markdown_embeds_the_qa_pictures(run):
    md = _markdown(run)
    qa = [k for k in run["record"]["outputs"] if k.startswith("qa_")]
    assert "qa_overlay" in qa and "qa_checkerboard" in qa
    for key in qa:
        assert re.search(rf"!\[{key}\]\({re.escape(CATALOG_URL)}/\S+/{key}\.png\)", md), key
    image = next(a for a in run["artifacts"] if a["type"] == "image")
    assert image["key"].endswith("-qa-overlay")
    assert image["data"] == run["record"]["catalog_urls"]["qa_overlay"]
    assert image["data"].startswith(CATALOG_URL) and image["data"].endswith("qa_overlay.png")


def test_markdown_links_the_mlflow_run(run):
    from mlflow.tracking import MlflowClient

    record, md = run["record"], _markdown(run)
    client = MlflowClient(f"sqlite:///{run['work'] / 'mlflow.db'}")
    experiment = client.get_run(record["mlflow_run_id"]).info.experiment_id
    url = f"{MLFLOW_UI}/#/experiments/{experiment}/runs/{record['mlflow_run_id']}"
    assert record["mlflow_run_url"] == url
    assert f"[{record['mlflow_run_id']}]({url})" in md


def test_child_run_is_named_by_method_and_spans_the_registration(run):
    from mlflow.tracking import MlflowClient

    record = run["record"]
    child = MlflowClient(f"sqlite:///{run['work'] / 'mlflow.db'}").get_run(record["mlflow_run_id"])
    assert child.info.run_name.startswith(f"zero {record['version']} · ")
    assert SAR_ID[:8] in child.info.run_name and len(child.info.run_name) < 50
    assert child.data.tags["coalign.pair"] == record["pair"]
    span = (child.info.end_time - child.info.start_time) / 1000
    assert span == pytest.approx(child.data.metrics["runtime_total_s"], abs=0.002)
    assert span >= child.data.metrics.get("runtime_register_total_s", 0.0) > 0.0


def test_mlflow_artifact_copies_follow_the_umask(run):
    files = [p for p in (run["work"] / "mlartifacts").rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}


def test_files_outside_the_catalog_are_plain_paths():
    from flows.pair_report import pair_markdown

    record = {
        "pair": "o__s",
        "method": "zero",
        "version": "1.0.0",
        "score": None,
        "matches": 0,
        "inliers": 0,
        "runtime_s": 1.0,
        "device": "cpu",
        "item": "/w/catalog/ev/o__s/o__s.json",
        "mlflow_run_id": "r1",
        "outputs": {"displacement": "/w/pairs/d.tif", "qa_flow": "/w/pairs/qa/qa_flow.png"},
        "catalog_urls": {"item": f"{CATALOG_URL}/ev/o__s/o__s.json"},
    }
    md = pair_markdown(record, "ok")
    assert "- displacement: `/w/pairs/d.tif`" in md and "- MLflow run: `r1`" in md
    assert "file://" not in md and "![" not in md
    assert f"[o__s.json]({CATALOG_URL}/ev/o__s/o__s.json)" in md
