"""The ``activation`` flow: disaster declared → discover → pair → register every pair × method → summary."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.deployments import run_deployment

from flows.register_pair import register_pair_flow
from stac.pairing import PairingRules
from tasks.pipeline import discover_scenes, pair
from tasks.tracking import track_activation_end, track_activation_start, tracking_uri


def parse_aoi(aoi: str | list[float] | dict | None) -> tuple[float, float, float, float] | None:
    """A bbox from ``minx,miny,maxx,maxy``, a list, or a GeoJSON geometry/feature (its bounds)."""
    if aoi is None or aoi == "":
        return None
    if isinstance(aoi, str):
        aoi = json.loads(aoi) if aoi.strip().startswith("{") else [float(v) for v in aoi.split(",")]
    if isinstance(aoi, dict):
        from shapely.geometry import shape

        return tuple(shape(aoi.get("geometry", aoi)).bounds)  # type: ignore[return-value]
    return tuple(float(v) for v in aoi)  # type: ignore[return-value]


def _time(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    d = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


@task(name="register-pair-in-worker")
def register_pair_in_worker(params: dict[str, Any]) -> dict[str, Any]:
    """One pair × method as a task, so a Dask task runner can place it on a cluster worker."""
    return register_pair_flow(**params)


@flow(name="activation", log_prints=True)
def activation(
    event: str = "sample-event",
    aoi: str | None = None,
    start: str | None = None,
    end: str | None = None,
    event_date: str | None = None,
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
    collections: list[str] | None = None,
    methods: list[str] | None = None,
    tiepoints: dict[str, str] | None = None,
    workdir: str = "coalign-work",
    gpu_work_pool: str | None = None,
    register_deployment: str = "register-pair/register-pair-gpu",
    max_gap_days: float = 365.0,
    min_overlap: float = 0.1,
    stac_api_publish: str | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Align every optical/SAR pair of a declared disaster and publish the products.

    event: event name (MLflow experiment, output collection). aoi: bbox ``minx,miny,maxx,maxy`` (WGS84) or
    GeoJSON. start/end: acquisition window (ISO 8601). event_date: optical before, SAR after it.
    catalogs: static catalog roots; stac_apis: STAC API URLs. methods: registration methods
    (default: the default method). tiepoints: ``{sar_scene_id or pair_id: csv}`` for scoring.
    gpu_work_pool: when set, each pair runs as a ``register_deployment`` flow run on GPU workers;
    otherwise in this process. dask_address: run pairs (and local-method tiles) on that Dask cluster.
    """
    from models.methods import DEFAULT_METHOD

    log = get_run_logger()
    methods = methods or [DEFAULT_METHOD]
    bbox = parse_aoi(aoi)
    work = Path(workdir).resolve()
    uri = tracking_uri(work)
    activation_id = f"{event}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}".lower().replace(" ", "-")
    parent = track_activation_start(uri=uri, experiment=event, activation=activation_id,
                                    params={"aoi": bbox, "start": start, "end": end, "methods": methods, "catalogs": catalogs,
                                            "stac_apis": stac_apis, "gpu_work_pool": gpu_work_pool or "in-process"}, tags={})
    scenes = discover_scenes(catalogs or [], stac_apis or [], bbox, _time(start), _time(end), collections)
    pairs = pair(scenes, PairingRules(min_overlap_fraction=min_overlap, max_gap_days=max_gap_days, event_date=_time(event_date)), bbox)
    jobs = []
    for p in pairs:
        tp = (tiepoints or {}).get(p.id) or (tiepoints or {}).get(p.sar.id)
        for method in methods:
            jobs.append({"optical": p.optical.to_record(), "sar": p.sar.to_record(), "method": method, "workdir": str(work),
                         "activation": activation_id, "tiepoints": tp, "overlap_fraction": p.overlap_fraction,
                         "mlflow_uri": uri, "parent_run_id": parent, "stac_api": stac_api_publish,
                         "settings": {"dask_address": dask_address} if dask_address and method == "local" else {}})
    results = []
    if gpu_work_pool:
        for job in jobs:
            run = run_deployment(register_deployment, parameters=job, work_queue_name=None, timeout=None)
            results.append((job, run.state.result(raise_on_failure=False) if run.state.is_completed() else run.state))
    elif dask_address:
        futures = [(job, register_pair_in_worker.submit(job)) for job in jobs]
        results = [(job, f.result(raise_on_failure=False)) for job, f in futures]
    else:
        for job in jobs:
            results.append((job, register_pair_flow(**job, return_state=True)))
    rows, failures = [], []
    for job, outcome in results:
        state_like = getattr(outcome, "is_completed", None)
        value = outcome.result(raise_on_failure=False) if callable(state_like) else outcome
        name = f"{job['optical']['id']} × {job['sar']['id']}"
        if isinstance(value, dict):
            s = value.get("score") or {}
            rows.append({"pair": name, "method": f"{value['method']} {value['version']}", "status": "ok",
                         "mean_m": round(s.get("mean_m", float("nan")), 3) if s else None,
                         "zero_m": round(s.get("zero_mean_m", float("nan")), 3) if s else None,
                         "runtime_s": value["runtime_s"], "item": value["item"]})
        else:
            failures.append(name)
            rows.append({"pair": name, "method": job["method"], "status": f"failed: {str(value)[:200]}", "mean_m": None,
                         "zero_m": None, "runtime_s": None, "item": None})
            log.error("pair %s (%s) failed: %s", name, job["method"], value)
    create_table_artifact(key="activation-pairs", table=rows, description=f"{event}: per-pair results")
    scored = [r["mean_m"] for r in rows if r["mean_m"] is not None]
    summary = {"event": event, "activation": activation_id, "scenes": len(scenes), "pairs": len(pairs), "runs": len(jobs),
               "failed": len(failures), "mean_error_m": round(sum(scored) / len(scored), 3) if scored else None,
               "catalog": str(work / "catalog" / "catalog.json"), "mlflow_uri": uri, "mlflow_parent_run": parent, "results": rows}
    create_markdown_artifact(
        key="activation-summary",
        markdown=(f"## Activation {activation_id}\n\n{len(scenes)} scenes, {len(pairs)} pairs, {len(jobs)} registrations, "
                  f"{len(failures)} failed.\n\nMean error over scored pairs: {summary['mean_error_m']} m\n\n"
                  f"Catalog: `{summary['catalog']}`  \nMLflow: `{uri}` (parent run `{parent}`)"),
        description=f"activation {event}",
    )
    track_activation_end(uri, parent, {"pairs": len(pairs), "failed": len(failures), **({"mean_error_m": summary["mean_error_m"]} if scored else {})},
                         "FINISHED" if not failures or len(failures) < len(jobs) else "FAILED")
    return summary


def configure_local_results(workdir: str | os.PathLike[str]) -> None:
    """Persist task results (the cache that makes reruns skip finished work) under the working directory."""
    path = Path(workdir).resolve() / "prefect-results"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(path)
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
