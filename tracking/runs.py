"""MLflow runs of activations: one experiment per event, a parent run per activation, a child run
per pair × method.

Child runs are created from the parent run id (tag ``mlflow.parentRunId``, MLflow's own nesting
key) with an explicit :class:`~mlflow.tracking.MlflowClient`, never through the fluent active-run
stack, so a pair registered in another process, on a Dask worker or on a GPU worker still lands
under its activation. The store is :func:`tracking.store.tracking_uri`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import InputError
from tracking.store import (
    RUN_STATUSES,
    base_tags,
    client,
    experiment_id,
    flatten,
    log_batch,
    numeric_metrics,
)


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise InputError(f"run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")


def start_activation_run(
    *,
    uri: str,
    experiment: str,
    activation: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
) -> str:
    """The parent run of one activation in the event's experiment (created when new); its run id.

    The run stays RUNNING until :func:`finish_activation_run`.
    """
    mlflow_client = client(uri)
    run = mlflow_client.create_run(
        experiment_id(uri, experiment),
        run_name=activation,
        tags={
            "coalign.activation": activation,
            "coalign.run_kind": "activation",
            **base_tags(),
            **{k: str(v) for k, v in tags.items()},
        },
    )
    log_batch(mlflow_client, run.info.run_id, flatten(params), {}, {})
    return run.info.run_id


def _artifact_plan(
    artifacts: Mapping[str, str | os.PathLike[str]],
) -> tuple[dict[str, Path], dict[str, str]]:
    """Local files/folders to copy, and hrefs (URLs, STAC asset hrefs) to record as tags."""
    files, hrefs = {}, {}
    for name, value in artifacts.items():
        text = os.fspath(value)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
            hrefs[name] = text
        elif Path(text).exists():
            files[name] = Path(text)
        else:
            raise InputError(
                f"artifact {name!r}: {text} does not exist; give an existing file or folder, "
                "or a URL"
            )
    return files, hrefs


def _parent_experiment(mlflow_client, uri: str, parent_run_id: str, experiment: str | None) -> str:
    """The experiment id of the parent run, which must exist (and be ``experiment`` when given)."""
    from mlflow.exceptions import MlflowException

    try:
        parent = mlflow_client.get_run(parent_run_id)
    except MlflowException as exc:
        raise InputError(
            f"MLflow parent run {parent_run_id} not found in {uri}: start the activation run first"
        ) from exc
    if experiment is not None:
        exp = mlflow_client.get_experiment(parent.info.experiment_id)
        if exp.name != experiment:
            raise InputError(
                f"parent run {parent_run_id} is in experiment {exp.name!r}, not {experiment!r}"
            )
    return parent.info.experiment_id


def _log_files(mlflow_client, run_id: str, files: Mapping[str, Path]) -> None:
    """PNGs under ``qa/``, other files or folders under ``<name>/``."""
    for name, path in files.items():
        if path.is_dir():
            mlflow_client.log_artifacts(run_id, str(path), artifact_path=name)
        else:
            folder = "qa" if path.suffix.lower() == ".png" else name
            mlflow_client.log_artifact(run_id, str(path), artifact_path=folder)


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
    experiment: str | None = None,
    status: str = "FINISHED",
) -> str:
    """A finished child run of one pair × method under ``parent_run_id``; its run id.

    Params: ``method``, ``method_version`` and the config flattened as ``config.<key>``. Metrics:
    as given (mean/median/p90 ``_m``/``_px``, ``zero_mean_m``, ``matches``, ``inliers``,
    ``runtime_<stage>_s``...; None is left out). Tags: ``coalign.method``,
    ``coalign.method_version``, ``coalign.git_sha``, Prefect flow-run id/URL, then ``tags``.
    Artifacts: PNGs under ``qa/``, other files or folders under ``<name>/``; URLs (e.g. STAC
    hrefs of large COGs) as ``coalign.href.<name>`` tags. ``experiment``, when given, must be the
    parent's.
    """
    _check_status(status)
    files, hrefs = _artifact_plan(artifacts)
    mlflow_client = client(uri)
    run = mlflow_client.create_run(
        _parent_experiment(mlflow_client, uri, parent_run_id, experiment),
        run_name=run_name,
        tags={
            "mlflow.parentRunId": parent_run_id,
            "coalign.run_kind": "pair",
            "coalign.method": method,
            "coalign.method_version": method_version,
            **base_tags(),
            **{k: str(v) for k, v in tags.items()},
            **{f"coalign.href.{k}": v for k, v in hrefs.items()},
        },
    )
    rid = run.info.run_id
    params = {"method": method, "method_version": method_version, **flatten(config, "config")}
    try:
        log_batch(mlflow_client, rid, params, numeric_metrics(metrics), {})
        _log_files(mlflow_client, rid, files)
    except BaseException:
        # a retry makes a new run; this one shows what went wrong
        mlflow_client.set_terminated(rid, "FAILED")
        raise
    mlflow_client.set_terminated(rid, status)
    return rid


def finish_activation_run(
    uri: str, run_id: str, metrics: Mapping[str, float], status: str = "FINISHED"
) -> None:
    """Log the activation's summary metrics and close its parent run with ``status``."""
    _check_status(status)
    mlflow_client = client(uri)
    log_batch(mlflow_client, run_id, {}, numeric_metrics(metrics), {})
    mlflow_client.set_terminated(run_id, status)
