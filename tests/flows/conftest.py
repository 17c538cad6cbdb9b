"""Workflow tests run against a temporary Prefect server (``prefect_test_harness``) whose home is a
temp dir,
with MLflow stores in temp working directories and sample events made by ``samples.event``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAR_ID_BAD = "bad00000-0000-4000-8000-000000000000"


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One temporary Prefect server (SQLite in a temp dir) for the session; PREFECT_HOME in a temp
    dir."""
    home = tempfile.mkdtemp(prefix="coalign-prefect-home-")
    saved = {
        k: os.environ.get(k)
        for k in (
            "PREFECT_HOME",
            "PREFECT_SERVER_ANALYTICS_ENABLED",
            "COALIGN_MLFLOW_URI",
            "MLFLOW_TRACKING_URI",
        )
    }
    os.environ.update({"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    for k in ("COALIGN_MLFLOW_URI", "MLFLOW_TRACKING_URI"):
        os.environ.pop(
            k, None
        )  # each test's MLflow store is the SQLite file of its working directory
    from prefect.settings import PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(updates={PREFECT_HOME: home}),
        prefect_test_harness(server_startup_timeout=120),
    ):
        yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """A small sample event (120 m) in Maxar-like and Umbra-like catalogs, plus a second pair whose
    SAR asset
    is truncated after cataloguing (a broken download: checksum and TIFF both bad)."""
    from flows.commands.demo import SAR_ID, build_demo_catalogs
    from samples.catalog import SampleScene, write_maxar_catalog, write_umbra_catalog
    from samples.event import sample_event

    root = tmp_path_factory.mktemp("sample")
    ev, maxar, umbra = build_demo_catalogs(root, size_m=120.0)
    bad = sample_event(root / "bad" / "images", size_m=100.0, seed=5, origin=(378000.0, 4106000.0))
    bad_maxar = write_maxar_catalog(
        root / "bad" / "maxar",
        "bad-event",
        [SampleScene(bad.pair.optical, "10300100BAD00001", bad.optical_time, "WV02", 0.3)],
    )
    bad_umbra = write_umbra_catalog(
        root / "bad" / "umbra",
        [SampleScene(bad.pair.sar, SAR_ID_BAD, bad.sar_time, "Umbra-04", 0.4)],
    )
    gec = next((root / "bad" / "umbra").rglob("*_GEC.tif"))
    gec.write_bytes(gec.read_bytes()[: gec.stat().st_size // 2])
    return {
        "event": ev,
        "catalogs": [str(maxar), str(umbra)],
        "bad_catalogs": [str(bad_maxar), str(bad_umbra)],
        "tiepoints": {SAR_ID: str(ev.pair.tiepoints)},
        "root": root,
    }


@pytest.fixture(scope="session")
def new_workdir(tmp_path_factory):
    """``new_workdir(name)``: an empty working directory whose MLflow SQLite store already has its
    tables.

    Creating an MLflow database runs its schema migrations (~10 s here); they run once per session
    and
    each working directory gets a copy of the empty store.
    """
    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(f"sqlite:///{template / 'mlflow.db'}").search_experiments()

    def make(name: str) -> Path:
        work = tmp_path_factory.mktemp(name)
        shutil.copyfile(template / "mlflow.db", work / "mlflow.db")
        return work

    return make


@pytest.fixture(scope="session")
def activation_params(sample):
    """``activation_params(workdir, **overrides)``: parameters over the sample event's window
    (method zero: fast)."""
    ev = sample["event"]

    def make(workdir: Path, **overrides) -> dict:
        params = dict(
            event="test-quake",
            start=(ev.event_date - dt.timedelta(days=30)).isoformat(),
            end=(ev.event_date + dt.timedelta(days=30)).isoformat(),
            event_date=ev.event_date.isoformat(),
            catalogs=sample["catalogs"],
            methods=["zero"],
            tiepoints=sample["tiepoints"],
            workdir=str(workdir),
        )
        return {**params, **overrides}

    return make
