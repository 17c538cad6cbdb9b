"""Fixtures of the MLflow / QA-picture / compare tests: a temporary Prefect server, MLflow stores.

A fresh MLflow SQLite store costs ~10 s of schema migrations, so one migrated store is made per
session and each test gets its own copy in its ``tmp_path`` (a real store, artifacts beside it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server (``prefect_test_harness``) with its home in a temp dir."""
    home = tempfile.mkdtemp(prefix="coalign-tracking-prefect-home-")
    os.environ["PREFECT_HOME"] = home
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory) -> Path:
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates and migrates the schema
    return db


@pytest.fixture
def workdir(tmp_path, _migrated_store, monkeypatch) -> Path:
    """A working directory holding a migrated, empty MLflow store; tracking env vars cleared."""
    monkeypatch.delenv("COALIGN_MLFLOW_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(_migrated_store, work / "mlflow.db")
    return work


@pytest.fixture
def uri(workdir) -> str:
    from tracking.store import tracking_uri

    return tracking_uri(workdir)
