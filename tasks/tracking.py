"""MLflow tracking: one experiment per event, a parent run per activation, a child run per pair × method.

Child runs are created from the parent run id (tag ``mlflow.parentRunId``) with
an explicit client, so a pair registered in another process or on another
worker still lands under its activation. The tracking store defaults to a
SQLite file in the working directory; ``COALIGN_MLFLOW_URI`` or
``MLFLOW_TRACKING_URI`` points it at a server.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import task


def tracking_uri(workdir: str | os.PathLike[str]) -> str:
    uri = os.environ.get("COALIGN_MLFLOW_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    Path(workdir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def _client(uri: str):
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(uri: str, name: str, artifact_root: str | os.PathLike[str] | None = None) -> str:
    """The experiment's id, created with its artifacts under ``artifact_root`` when new."""
    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if artifact_root is not None:
        location = (Path(artifact_root).resolve() / name).as_uri()
    elif uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts" / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def git_sha() -> str:
    sha = os.environ.get("COALIGN_GIT_SHA")
    if sha:
        return sha
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[1])
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prefect_tags() -> dict[str, str]:
    """Prefect flow-run id and UI URL when called inside a flow run."""
    try:
        from prefect.runtime import flow_run

        tags = {}
        if flow_run.id:
            tags["prefect.flow_run_id"] = str(flow_run.id)
        if flow_run.ui_url:
            tags["prefect.flow_run_url"] = str(flow_run.ui_url)
        return tags
    except Exception:  # noqa: BLE001 - outside a flow run there is nothing to tag
        return {}


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


def start_activation_run(*, uri: str, experiment: str, activation: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    client = _client(uri)
    run = client.create_run(
        experiment_id(uri, experiment),
        run_name=activation,
        tags={"coalign.activation": activation, "coalign.git_sha": git_sha(), **prefect_tags(), **tags},
    )
    for k, v in _flatten("", params).items():
        client.log_param(run.info.run_id, k, v[:6000])
    return run.info.run_id


def log_pair_run(
    *,
    uri: str,
    parent_run_id: str,
    run_name: str,
    method: str,
    method_version: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | os.PathLike[str]],
) -> str:
    """A finished child run under ``parent_run_id`` with params, metrics, tags and artifacts."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(uri)
    parent = client.get_run(parent_run_id)
    run = client.create_run(
        parent.info.experiment_id,
        run_name=run_name,
        tags={
            "mlflow.parentRunId": parent_run_id,
            "coalign.method": method,
            "coalign.method_version": method_version,
            "coalign.git_sha": git_sha(),
            **prefect_tags(),
            **tags,
        },
    )
    rid = run.info.run_id
    params = {"method": method, "method_version": method_version, **_flatten("config", config)}
    client.log_batch(
        rid,
        params=[Param(k, v[:6000]) for k, v in params.items()],
        metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if v is not None],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    for name, path in artifacts.items():
        p = Path(path)
        if p.is_file():
            client.log_artifact(rid, str(p), artifact_path=name if p.suffix != ".png" else "qa")
        else:
            client.set_tag(rid, f"href.{name}", str(path))
    client.set_terminated(rid, "FINISHED")
    return rid


def finish_activation_run(uri: str, run_id: str, metrics: Mapping[str, float], status: str = "FINISHED") -> None:
    client = _client(uri)
    for k, v in metrics.items():
        client.log_metric(run_id, k, float(v))
    client.set_terminated(run_id, status)


class CoalignMethodModel:
    """MLflow pyfunc wrapper of a coalign registration method and its config.

    ``predict`` takes a DataFrame with columns ``optical``, ``sar``, ``output``
    (paths) and returns one summary row per pair.
    """

    def __init__(self, method: str, config: Mapping[str, Any]) -> None:
        self.method = method
        self.config = dict(config)

    def predict(self, context, model_input, params=None):  # noqa: ARG002 - pyfunc signature
        import pandas as pd

        from models.methods.base import RegistrationInput
        from models.registration import register, write_displacement

        rows = []
        for r in model_input.to_dict("records"):
            pair = RegistrationInput.open(r["optical"], r["sar"], "auto")
            overrides = {k: (",".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in self.config.items()}
            result = register(pair, self.method, overrides)
            write_displacement(result.field, pair.optical.grid, r["output"])
            rows.append({"output": r["output"], "method": result.method, "version": result.version,
                         "matches": result.matches, "inliers": result.inliers})
        return pd.DataFrame(rows)


def register_method_model(uri: str, method: str, version: str, config: Mapping[str, Any], alias: str | None = None):
    """Log the method as a pyfunc model and register it as ``coalign-<method>``; returns the model version."""
    import mlflow
    import mlflow.pyfunc

    class _Model(mlflow.pyfunc.PythonModel):
        def __init__(self, inner: CoalignMethodModel) -> None:
            self.inner = inner

        def predict(self, context, model_input, params=None):
            return self.inner.predict(context, model_input, params)

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = f"coalign-{method}"
    exp = experiment_id(uri, "coalign-methods")
    with mlflow.start_run(experiment_id=exp, run_name=f"{name} {version}"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "config.json"
            cfg.write_text(json.dumps(dict(config), indent=1))
            mlflow.log_artifact(str(cfg))
        mlflow.log_params({"method": method, "method_version": version})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_Model(CoalignMethodModel(method, config)),
            registered_model_name=name,
            pip_requirements=["coalign"],
            code_paths=[str(Path(__file__).resolve().parents[1] / "models")],
        )
    client = _client(uri)
    mv = client.get_model_version(name, info.registered_model_version)
    client.set_model_version_tag(name, mv.version, "coalign.method_version", version)
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return client.get_model_version(name, mv.version)


# --- Prefect tasks -------------------------------------------------------------------------

track_activation_start = task(start_activation_run, name="track-activation-start", retries=2, retry_delay_seconds=2)
track_pair = task(log_pair_run, name="track-pair", retries=2, retry_delay_seconds=2)
track_activation_end = task(finish_activation_run, name="track-activation-end", retries=2, retry_delay_seconds=2)
