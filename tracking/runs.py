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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from core.errors import InputError
from core.files import current_umask
from tracking.store import (
    RUN_STATUSES,
    base_tags,
    client,
    experiment_id,
    flatten,
    log_batch,
    numeric_metrics,
)

_UUID_START = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-")
_SHORT_ID = 20  # scene ids up to this length are shown whole in run names


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise InputError(f"run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")


def _ms(seconds: float | None) -> int | None:
    """Seconds since the epoch as MLflow's milliseconds (None stays None)."""
    return None if seconds is None else int(round(seconds * 1000))


def short_scene_id(scene_id: str) -> str:
    """A scene id short enough for a run name: its last ``/`` part; of a UUID its first block;
    of a longer id its start and end.

    Args:
        scene_id: A STAC item id (``37/031133102033/10300100SAMPLE01``, an Umbra task UUID...).
    """
    last = scene_id.rstrip("/").rsplit("/", 1)[-1] or scene_id
    if _UUID_START.match(last):
        return last[:8]
    return last if len(last) <= _SHORT_ID else f"{last[:8]}…{last[-8:]}"


def pair_label(optical_id: str, sar_id: str) -> str:
    """The short label of a pair in run names: ``<optical> × <sar>`` (:func:`short_scene_id`).

    Args:
        optical_id: The optical scene's id.
        sar_id: The SAR scene's id.
    """
    return f"{short_scene_id(optical_id)} × {short_scene_id(sar_id)}"


def pair_run_name(method: str, method_version: str, label: str) -> str:
    """The name of a pair run: method and version first, so the runs table shows them.

    Args:
        method: The registration method.
        method_version: Its version.
        label: The pair (:func:`pair_label`) or benchmark case.
    """
    return f"{method} {method_version} · {label}"


def start_activation_run(
    *,
    uri: str,
    experiment: str,
    activation: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    started_at: float | None = None,
) -> str:
    """The parent run of one activation in the event's experiment (created when new); its run id.

    The run stays RUNNING until :func:`finish_activation_run`.

    Args:
        uri: The MLflow tracking URI.
        experiment: The experiment (event) name; created when missing.
        activation: The run name.
        params: Parameters, flattened to dotted keys.
        tags: Extra tags.
        started_at: When the activation started (seconds since the epoch); none = now.
    """
    mlflow_client = client(uri)
    run = mlflow_client.create_run(
        experiment_id(uri, experiment),
        start_time=_ms(started_at),
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
    """PNGs under ``qa/``, other files or folders under ``<name>/``; local copies get the mode of
    a new file (:func:`follow_umask`)."""
    for name, path in files.items():
        if path.is_dir():
            mlflow_client.log_artifacts(run_id, str(path), artifact_path=name)
        else:
            folder = "qa" if path.suffix.lower() == ".png" else name
            mlflow_client.log_artifact(run_id, str(path), artifact_path=folder)
    if files:
        follow_umask(mlflow_client.get_run(run_id).info.artifact_uri)


def follow_umask(artifact_uri: str) -> None:
    """Give the files and folders of a local artifact folder the modes a new file and folder
    get under the process umask (MLflow's local copies keep the source file's mode); other
    artifact stores are left alone.

    Args:
        artifact_uri: A run's artifact URI (``file://`` or a plain path for a local store).
    """
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        return
    root = Path(unquote(parsed.path))
    if not root.is_dir():
        return
    umask = current_umask()
    for folder, dirs, names in os.walk(root):
        for d in dirs:
            os.chmod(Path(folder) / d, 0o777 & ~umask)
        for n in names:
            os.chmod(Path(folder) / n, 0o666 & ~umask)


def log_pair_run(
    *,
    uri: str,
    parent_run_id: str,
    label: str,
    method: str,
    method_version: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | os.PathLike[str]],
    experiment: str | None = None,
    status: str = "FINISHED",
    started_at: float | None = None,
    ended_at: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """A finished child run of one pair × method under ``parent_run_id``; its run id.

    Name: :func:`pair_run_name` (``<method> <version> · <label>``). Params: ``method``,
    ``method_version``, the config flattened as ``config.<key>``, then ``params``. Metrics: as given
    (mean/median/p90 ``_m``/``_px``, ``zero_mean_m``, ``matches``, ``inliers``,
    ``runtime_<stage>_s``...; None is left out). Tags: ``coalign.method``,
    ``coalign.method_version``, ``coalign.git_sha``, Prefect flow-run id/URL, then ``tags``.
    Artifacts: PNGs under ``qa/``, other files or folders under ``<name>/``; URLs (e.g. STAC
    hrefs of large COGs) as ``coalign.href.<name>`` tags.

    Args:
        uri: The MLflow tracking URI.
        parent_run_id: The activation's run.
        label: The pair (:func:`pair_label`) or benchmark case, after the method in the name.
        method: The registration method.
        method_version: Its version.
        config: The method's configuration.
        metrics: Scores, counts and runtimes.
        tags: Extra tags (``coalign.pair``: the full pair id).
        artifacts: Files, folders or URLs by name.
        experiment: When given, must be the parent's experiment.
        status: The run's final status.
        started_at: When the registration started (seconds since the epoch); none = now.
        ended_at: When it ended; none = when logging is done.
        params: More params (inputs of the run, e.g. the SAR geometry), flattened as dotted keys.
    """
    _check_status(status)
    files, hrefs = _artifact_plan(artifacts)
    mlflow_client = client(uri)
    run = mlflow_client.create_run(
        _parent_experiment(mlflow_client, uri, parent_run_id, experiment),
        start_time=_ms(started_at),
        run_name=pair_run_name(method, method_version, label),
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
    params = {
        "method": method,
        "method_version": method_version,
        **flatten(config, "config"),
        **flatten(params or {}),
    }
    try:
        log_batch(mlflow_client, rid, params, numeric_metrics(metrics), {})
        _log_files(mlflow_client, rid, files)
    except BaseException:
        # a retry makes a new run; this one shows what went wrong
        mlflow_client.set_terminated(rid, "FAILED", end_time=_ms(time.time()))
        raise
    mlflow_client.set_terminated(rid, status, end_time=_ms(ended_at or time.time()))
    return rid


def finish_activation_run(
    uri: str,
    run_id: str,
    metrics: Mapping[str, float],
    status: str = "FINISHED",
    ended_at: float | None = None,
) -> None:
    """Log the activation's summary metrics and close its parent run with ``status``.

    Args:
        uri: The MLflow tracking URI.
        run_id: The parent run.
        metrics: Summary metrics.
        status: The run's final status.
        ended_at: When the activation ended (seconds since the epoch); none = now.
    """
    _check_status(status)
    mlflow_client = client(uri)
    log_batch(mlflow_client, run_id, {}, numeric_metrics(metrics), {})
    mlflow_client.set_terminated(run_id, status, end_time=_ms(ended_at or time.time()))
