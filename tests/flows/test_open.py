"""``coalign open``: the catalog served on 127.0.0.1, the MLflow and Prefect addresses printed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from flows.cli import main
from flows.workdir import CATALOG_URL_DEFAULT, Workdir
from stac.publish import build_item, publish_static
from tests.conftest import free_port
from tests.stac.publish.conftest import published_pair, write_products


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a published catalog and an MLflow store with one experiment."""
    for name in ("COALIGN_MLFLOW_URI", "MLFLOW_TRACKING_URI", "COALIGN_MLFLOW_UI_URL"):
        monkeypatch.delenv(name, raising=False)
    wd = tmp_path / "work"
    pair = published_pair(write_products(tmp_path / "products"))
    publish_static(build_item(pair), Workdir.of(wd).catalog)
    return wd


def test_print_names_the_catalog_mlflow_and_prefect(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracking.store import experiment_id, runs_url, tracking_uri

    uri = tracking_uri(workdir)
    exp = experiment_id(uri, "turkey-2023")
    (Workdir.of(workdir).catalog / "index.html").unlink()  # published before the view existed
    assert main(["open", "--workdir", str(workdir), "--print"]) == 0
    out = capsys.readouterr().out
    assert f"Catalog view: {CATALOG_URL_DEFAULT}/" in out  # where Workdir.catalog_url links
    assert (Workdir.of(workdir).catalog / "index.html").is_file()
    assert f"turkey-2023: {runs_url(uri, exp)}" in out
    assert f"mlflow ui --backend-store-uri {uri}" in out
    assert "Prefect" in out


def test_print_without_runs_or_with_another_port(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["open", "--workdir", str(workdir), "--print", "--port", "9999"]) == 0
    out = capsys.readouterr().out
    assert "Catalog view: http://127.0.0.1:9999/" in out and "no runs tracked yet" in out
    assert not (workdir / "mlflow.db").exists()  # printing creates no store


def test_missing_catalog_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["open", "--workdir", str(tmp_path / "empty"), "--print"]) == 2
    err = capsys.readouterr().err
    assert "coalign open: error: no published catalog at" in err and "--workdir" in err


def test_serves_the_catalog_until_interrupted(workdir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "open", "--workdir", str(workdir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith(f"Catalog view: http://127.0.0.1:{port}/"), lines
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/", timeout=30) as page:  # noqa: S310
            assert page.status == 200 and b"turkey-2023" in page.read()
        with urllib.request.urlopen(base + "/catalog.json", timeout=30) as doc:  # noqa: S310
            assert json.loads(doc.read())["type"] == "Catalog"
        # the same port again: taken, a clear error
        again = subprocess.run(
            [sys.executable, "-m", "flows.cli", "open", "--workdir", str(workdir)]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 2 and "choose another port with --port" in again.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
