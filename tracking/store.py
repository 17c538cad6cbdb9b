"""The MLflow store of a working directory: its URI, experiments, clients, and batched logging of
params, metrics and tags with the provenance tags every run carries."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
# MLflow limits: param/tag value length, params+tags per batch
_PARAM_MAX, _TAG_MAX, _BATCH = 6000, 8000, 100
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store


def tracking_uri(workdir: str | os.PathLike[str]) -> str:
    """``COALIGN_MLFLOW_URI``, else ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///<workdir>/mlflow.db``."""
    uri = os.environ.get("COALIGN_MLFLOW_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(workdir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def ui_url(uri: str) -> str:
    """The address of the MLflow UI that shows the store at ``uri``.

    A tracking server (``http(s)://``) is its own UI. For a local store it is
    ``COALIGN_MLFLOW_UI_URL``, else ``http://127.0.0.1:5000``, where ``mlflow ui`` (or
    ``coalign open``) serves it.

    Args:
        uri: The MLflow tracking URI.
    """
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return (os.environ.get("COALIGN_MLFLOW_UI_URL") or MLFLOW_UI_DEFAULT).rstrip("/")


def runs_url(uri: str, experiment: str, run_id: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs table, or of one run.

    MLflow 3 opens an experiment on its GenAI overview; ``#/experiments/<id>/runs`` is the table.

    Args:
        uri: The MLflow tracking URI.
        experiment: The experiment id.
        run_id: A run of that experiment; none = the runs table.
    """
    page = f"{ui_url(uri)}/#/experiments/{experiment}/runs"
    return f"{page}/{run_id}" if run_id else page


def run_url(uri: str, run_id: str) -> str:
    """The MLflow UI page of one run (:func:`runs_url` of the experiment the store has it in).

    Args:
        uri: The MLflow tracking URI.
        run_id: The run.
    """
    return runs_url(uri, client(uri).get_run(run_id).info.experiment_id, run_id)


def artifact_root(uri: str) -> Path | None:
    """Where new experiments keep artifacts: ``mlartifacts/`` beside a SQLite store (not
    ``./mlruns`` of whatever the current directory is); None for servers and other stores (their
    default)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).expanduser().resolve().parent / "mlartifacts"
    return None


def client(uri: str):
    """An MLflow client of the tracking store and model registry at ``uri``."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "experiment"


def experiment_id(uri: str, name: str) -> str:
    """The id of experiment ``name``, created (artifacts under :func:`artifact_root`) or restored
    when deleted; safe when several processes create it at once."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(uri)
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None:
        root = artifact_root(uri)
        location = (root / _slug(name)).as_uri() if root else None
        try:
            return mlflow_client.create_experiment(name, artifact_location=location)
        except MlflowException:
            exp = mlflow_client.get_experiment_by_name(name)  # another process created it first
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        mlflow_client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """``COALIGN_GIT_SHA``, else the checkout's ``HEAD``, else ``unknown`` (installed from a
    wheel)."""
    sha = os.environ.get("COALIGN_GIT_SHA")
    if sha:
        return sha
    if not (REPO / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=REPO
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def prefect_tags() -> dict[str, str]:
    """Prefect flow-run id, name and UI URL when called inside a flow or task run; else nothing."""
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.id
        if not run_id:
            return {}
        tags = {"prefect.flow_run_id": str(run_id)}
        if flow_run.name:
            tags["prefect.flow_run_name"] = str(flow_run.name)
        url = flow_run.ui_url
        if url and str(url).startswith("http"):  # an ephemeral server has no UI URL
            tags["prefect.flow_run_url"] = str(url)
        return tags
    except Exception:  # noqa: BLE001 - tags are a courtesy: never fail tracking over them
        return {}


def base_tags() -> dict[str, str]:
    """The provenance tags of every run: git commit, package version, Prefect flow run."""
    sha = git_sha()
    try:
        version = metadata.version("coalign")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "coalign.git_sha": sha,
        "mlflow.source.git.commit": sha,
        "coalign.package_version": version,
        **prefect_tags(),
    }


def _key(key: str) -> str:
    """An MLflow-valid param/metric key (alphanumerics, ``_ - . : space``)."""
    return re.sub(r"[^\w.\- :]", "_", key).strip() or "_"


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys; lists as JSON; everything else as ``str`` (MLflow params)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = json.dumps(list(value)) if isinstance(value, (list, tuple)) else str(value)
    return {_key(prefix): text if len(text) <= _PARAM_MAX else text[: _PARAM_MAX - 1] + "…"}


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Numeric metrics only (None and non-numbers are left out; booleans count as 0/1)."""
    out = {}
    for k, v in metrics.items():
        if v is None or isinstance(v, str):
            continue
        try:
            out[_key(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def log_batch(
    mlflow_client,
    run_id: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
) -> None:
    """``log_batch`` in chunks within MLflow's per-request limits."""
    from mlflow.entities import Metric, Param, RunTag

    ts = int(time.time() * 1000)
    p = [Param(k, v) for k, v in params.items()]
    t = [RunTag(k, str(v)[:_TAG_MAX]) for k, v in tags.items()]
    m = [Metric(k, v, ts, 0) for k, v in metrics.items()]
    for i in range(0, max(len(p), len(t), len(m)), _BATCH):
        mlflow_client.log_batch(
            run_id, metrics=m[i : i + _BATCH], params=p[i : i + _BATCH], tags=t[i : i + _BATCH]
        )
