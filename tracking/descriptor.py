"""Learned descriptors in MLflow: a training run per model, its registered versions, and model
URIs (``models:/coalign-descriptor@champion``, ``models:/coalign-descriptor/3``) resolved to a
local weights file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.files import copy_atomic
from tracking.store import base_tags, client, experiment_id, flatten, log_batch, numeric_metrics

DESCRIPTOR_MODEL = "coalign-descriptor"  # registered model name of the learned descriptor
TRAINING_EXPERIMENT = "coalign-descriptor-training"
ARTIFACT_DIR = "descriptor"  # a version's source: this folder of its training run
WEIGHTS_FILE = "descriptor.pt"
MANIFEST_FILE = "manifest.json"
PREFIX = "models:/"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))?$")
_CURVES = ("loss", "val_acc_1px", "val_acc_3px", "val_acc_5px")


@dataclass(frozen=True)
class ResolvedDescriptor:
    """A descriptor model URI (or file) and the local weights file it names.

    ``pinned`` is ``models:/NAME/VERSION`` of a registered version, empty for a plain file.
    """

    uri: str
    path: Path
    pinned: str = ""


def default_cache() -> Path:
    """Where downloaded weights are kept: ``$XDG_CACHE_HOME/coalign`` (``~/.cache/coalign``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coalign"


def _version_of(mlflow_client: Any, uri: str, tracking_uri: str) -> Any:
    """The registered model version a ``models:/`` URI names (latest without alias or version)."""
    from mlflow.exceptions import MlflowException

    m = _URI.match(uri)
    if not m:
        raise InputError(
            f"model {uri}: expected models:/NAME@ALIAS, models:/NAME/VERSION or a weights file"
        )
    name, alias, version = m["name"], m["alias"], m["version"]
    try:
        registered = mlflow_client.get_registered_model(name)
    except MlflowException:
        names = sorted(r.name for r in mlflow_client.search_registered_models())
        raise InputError(
            f"model {uri}: no registered model {name!r} in {tracking_uri}; registered: "
            f"{', '.join(names) or 'none'} (coalign train registers {DESCRIPTOR_MODEL})"
        ) from None
    versions = sorted(
        (str(v.version) for v in mlflow_client.search_model_versions(f"name='{name}'")), key=int
    )
    try:
        if alias:
            return mlflow_client.get_model_version_by_alias(name, alias)
        if version in (None, "latest"):
            if not versions:
                raise MlflowException(f"{name} has no versions")
            return mlflow_client.get_model_version(name, versions[-1])
        return mlflow_client.get_model_version(name, version)
    except MlflowException:
        aliases = ", ".join(f"@{a}→{v}" for a, v in sorted(registered.aliases.items()))
        raise InputError(
            f"model {uri}: {name} has no {'alias @' + alias if alias else 'version ' + version} "
            f"in {tracking_uri}; versions: {', '.join(versions) or 'none'}; aliases: "
            f"{aliases or 'none'}"
        ) from None


def _download(mv: Any, uri: str, tracking_uri: str, target: Path) -> None:
    """The version's weights file copied to ``target`` (atomic)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=tmp, tracking_uri=tracking_uri
            )
        except (MlflowException, OSError) as exc:
            raise InputError(
                f"model {uri}: the artifacts of {mv.name} version {mv.version} ({mv.source}) "
                f"cannot be read ({exc})"
            ) from None
        weights = Path(folder) / WEIGHTS_FILE
        if not weights.is_file():
            raise InputError(
                f"model {uri}: {mv.name} version {mv.version} is not a coalign descriptor (no "
                f"{WEIGHTS_FILE} in {mv.source}); give a model coalign train registered"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_atomic(weights, target)


def resolve_model(
    uri: str, tracking_uri: str, cache_dir: str | os.PathLike[str] | None = None
) -> ResolvedDescriptor:
    """A weights file path, or a ``models:/`` URI downloaded from the registry into the cache.

    A registered version is downloaded once to
    ``<cache>/descriptors/<store hash>/<name>/<version>/descriptor.pt`` (versions do not change).

    Args:
        uri: A weights file, or ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME``
            (its latest version).
        tracking_uri: The MLflow store holding the model registry.
        cache_dir: Where downloads go (default :func:`default_cache`).

    Raises:
        InputError: A missing file; an unknown model, alias or version (the message lists what
            exists); a version without descriptor weights.
    """
    if not uri.startswith(PREFIX):
        path = Path(uri).expanduser()
        if not path.is_file():
            raise InputError(
                f"model {uri}: no such weights file; give a file coalign train wrote (-o) or a "
                f"models:/{DESCRIPTOR_MODEL}@ALIAS URI"
            )
        return ResolvedDescriptor(uri, path.resolve())
    mv = _version_of(client(tracking_uri), uri, tracking_uri)
    store = hashlib.sha1(tracking_uri.encode()).hexdigest()[:10]
    root = Path(cache_dir) if cache_dir else default_cache()
    target = root / "descriptors" / store / mv.name / str(mv.version) / WEIGHTS_FILE
    if not target.is_file():
        _download(mv, uri, tracking_uri, target)
    return ResolvedDescriptor(uri, target, f"{PREFIX}{mv.name}/{mv.version}")


def resolve_descriptor(
    uri: str, tracking_uri: str, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The local weights file of a descriptor file path or ``models:/`` URI (:func:`resolve_model`).

    Args:
        uri: A weights file or a model URI.
        tracking_uri: The MLflow store holding the model registry.
        cache_dir: Where downloads go (default :func:`default_cache`).
    """
    return resolve_model(uri, tracking_uri, cache_dir).path


def resolve_model_settings(
    settings: Mapping[str, str] | None,
    tracking_uri: str,
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """``local`` settings with ``model=URI`` replaced by the weights file, and ``model_uri`` set
    to the registered version it names (``models:/NAME/VERSION``); other settings unchanged.

    Args:
        settings: Method settings as ``--set`` gives them (none: no settings).
        tracking_uri: The MLflow store holding the model registry.
        cache_dir: Where downloads go (default :func:`default_cache`).
    """
    out = dict(settings or {})
    model = str(out.get("model", "")).strip()
    if not model:
        return out
    resolved = resolve_model(model, tracking_uri, cache_dir)
    out["model"] = str(resolved.path)
    if resolved.pinned:
        out["model_uri"] = resolved.pinned
    return out


def _curves(history: list[dict[str, Any]]) -> list[Any]:
    """The training history as MLflow metrics with steps (one point per evaluation)."""
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    return [
        Metric(k, float(v), ts, int(h["step"]))
        for h in history
        for k, v in numeric_metrics(h).items()
        if k != "step"
    ]


def _log_training(mlflow_client: Any, run_id: str, result: Any, conf: Any) -> None:
    """Params, curves, final metrics, manifest and weights of one training run."""
    from models.learned import save_descriptor

    params = {
        **flatten(dataclasses.asdict(conf), "train"),
        **flatten(dict(result.net.conf), "net"),
        "train_pairs": str(len(result.split["train"])),
        "val_pairs": str(len(result.split["val"])),
    }
    final = {f"final_{k}": v for k, v in (result.history[-1] if result.history else {}).items()}
    log_batch(mlflow_client, run_id, params, numeric_metrics(final), {})
    curves = _curves(result.history)
    for i in range(0, len(curves), 500):
        mlflow_client.log_batch(run_id, metrics=curves[i : i + 500])
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / MANIFEST_FILE
        manifest.write_text(json.dumps({**result.manifest, "split": result.split}, indent=1))
        mlflow_client.log_artifact(run_id, str(manifest))
        weights = Path(tmp) / WEIGHTS_FILE
        save_descriptor(result.net, weights)
        mlflow_client.log_artifact(run_id, str(weights), artifact_path=ARTIFACT_DIR)


def _register(mlflow_client: Any, run: Any, name: str, alias: str | None) -> int:
    """A new version of ``name`` (created when new) from the run's descriptor folder."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(
            name, description="coalign learned optical/SAR descriptor (coalign train)"
        )
    mv = mlflow_client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/{ARTIFACT_DIR}",
        run_id=run.info.run_id,
        tags={"coalign.git_sha": base_tags()["coalign.git_sha"]},
    )
    if alias:
        mlflow_client.set_registered_model_alias(name, alias, mv.version)
    return int(mv.version)


def log_descriptor_training(
    uri: str,
    result: Any,
    conf: Any,
    name: str = DESCRIPTOR_MODEL,
    alias: str | None = "champion",
) -> tuple[str, int]:
    """One MLflow run of a trained descriptor, registered as a new version of ``name``.

    The run (experiment ``coalign-descriptor-training``) holds the training config as params
    (``train.*``, the network's ``net.*``), the validation curves per step (loss,
    val_acc_1/3/5px and CFOG's reference accuracies), the final values, the data manifest
    (``manifest.json``) and the weights (``descriptor/descriptor.pt``). The new model version's
    source is that folder; ``alias`` (none: no alias) is moved to it.

    Args:
        uri: The MLflow tracking URI (also the registry).
        result: ``models.learned.TrainResult`` (net, history, manifest, split).
        conf: The ``models.learned.TrainConfig`` it was trained with.
        name: The registered model.
        alias: The alias moved to the new version.

    Returns:
        The run id and the new version number.
    """
    mlflow_client = client(uri)
    run = mlflow_client.create_run(
        experiment_id(uri, TRAINING_EXPERIMENT),
        run_name=f"{name} training",
        tags={"coalign.run_kind": "descriptor-training", **base_tags()},
    )
    try:
        _log_training(mlflow_client, run.info.run_id, result, conf)
        version = _register(mlflow_client, run, name, alias)
    except BaseException:
        mlflow_client.set_terminated(run.info.run_id, "FAILED")
        raise
    mlflow_client.set_tag(run.info.run_id, "coalign.model_version", f"{name}/{version}")
    mlflow_client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id, version
