"""Links a browser can open: catalog files under their http address, MLflow runs pages."""

from __future__ import annotations

from flows.workdir import Workdir
from tracking.store import runs_url, ui_url


def test_catalog_url_of_a_published_file(tmp_path, monkeypatch):
    monkeypatch.delenv("COALIGN_CATALOG_URL", raising=False)
    work = Workdir.of(tmp_path)
    item = work.catalog / "quake 2023" / "a__b" / "a__b.json"
    assert work.catalog_url(item) == "http://127.0.0.1:8765/quake%202023/a__b/a__b.json"
    monkeypatch.setenv("COALIGN_CATALOG_URL", "https://data.example.org/coalign/")
    assert work.catalog_url(item) == "https://data.example.org/coalign/quake%202023/a__b/a__b.json"


def test_catalog_url_refuses_files_outside_the_catalog(tmp_path):
    work = Workdir.of(tmp_path)
    assert work.catalog_url(tmp_path / "pairs" / "x.tif") is None
    assert work.catalog_url(work.catalog / ".." / "mlflow.db") is None


def test_mlflow_links_open_the_runs_table(monkeypatch):
    monkeypatch.delenv("COALIGN_MLFLOW_UI_URL", raising=False)
    local = "sqlite:////srv/work/mlflow.db"
    assert ui_url(local) == "http://127.0.0.1:5000"
    assert runs_url(local, "3") == "http://127.0.0.1:5000/#/experiments/3/runs"
    assert runs_url("http://mlflow:5000/", "3", "ab12") == (
        "http://mlflow:5000/#/experiments/3/runs/ab12"
    )
    monkeypatch.setenv("COALIGN_MLFLOW_UI_URL", "http://10.0.0.5:5001/")
    assert runs_url(local, "7") == "http://10.0.0.5:5001/#/experiments/7/runs"
