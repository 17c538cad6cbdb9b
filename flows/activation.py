"""The ``activation`` flow: a disaster is declared → discover scenes → pair → register every pair ×
method → summary.

Each pair × method is one ``register-pair`` flow run: on a GPU work pool through its deployment
(``run_deployment``) when ``gpu_work_pool`` is set, else in this process — on a Dask cluster
(prefect-dask ``DaskTaskRunner``) when ``dask_address`` is set. A failed pair is reported; the
others finish.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from core.errors import InputError, RegistrationError
from core.ids import key_slug, pair_id
from flows.register_pair import read_record, register_pair
from flows.workdir import Workdir, product_key
from models.methods import DEFAULT_METHOD, check_methods
from stac.aoi import BBox, parse_bbox
from stac.pairing import MAX_GAP_DAYS, MIN_OVERLAP, Pair, PairingRules
from tasks import for_workdir
from tasks.tracking import track_activation_end, track_activation_start
from tracking.store import tracking_uri

REGISTER_FLOW = "register-pair"


@flow(name="activation", log_prints=True)
def activation(
    event: str = "sample-event",
    aoi: str | list[float] | dict[str, Any] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    event_date: dt.datetime | None = None,
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
    collections: list[str] | None = None,
    methods: list[str] | None = None,
    settings: dict[str, dict[str, str]] | None = None,
    tiepoints: dict[str, str] | None = None,
    workdir: str | None = None,
    gpu_work_pool: str | None = None,
    dask_address: str | None = None,
    max_gap_days: float = MAX_GAP_DAYS,
    min_overlap: float = MIN_OVERLAP,
    publish_stac_api: str | None = None,
) -> dict[str, Any]:
    """Align every optical/SAR pair of a declared disaster, score, track in MLflow and publish to
    STAC.

    Args:
        event: Event name: the MLflow experiment and the STAC collection of the products.
        aoi: Area of interest in WGS84: "minx,miny,maxx,maxy", [minx, miny, maxx, maxy] or a GeoJSON
            geometry/feature.
        start: Start of the acquisition window (ISO 8601, UTC when no zone is given).
        end: End of the acquisition window.
        event_date: When the disaster struck: pairs a pre-event optical scene with a post-event SAR
            scene.
        catalogs: Static STAC catalog roots (Maxar Open Data events/catalog.json, Umbra
            stac/catalog.json; paths or URLs).
        stac_apis: STAC API URLs to search.
        collections: STAC API collections to search (all when empty).
        methods: Registration methods to run on every pair (default: the default method, local).
        settings: Method setting overrides per method, e.g. {"local": {"levels": "4,2,1"}}; the
            methods and their settings are checked before anything starts.
        tiepoints: SN9 tiepoint CSVs for scoring, keyed by SAR scene id or pair id (<optical
            id>__<sar id>).
        workdir: Working directory of all outputs (default $COALIGN_WORKDIR or ./coalign-work);
            shared by all workers.
        gpu_work_pool: Work pool whose register-pair deployment runs each pair × method (e.g. gpu);
            none = in this process.
        dask_address: Dask scheduler to run the pairs on ("local" = a temporary local cluster); none
            = one pair at a time.
        max_gap_days: Longest time between the optical and the SAR acquisition of a pair, in days.
        min_overlap: Smallest footprint overlap of a pair, as a fraction of the smaller footprint.
        publish_stac_api: Also publish the STAC Items to this STAC API (Transaction extension).
    """
    methods = methods or [DEFAULT_METHOD]
    check_methods(methods, settings)  # before discovery and tracking start
    work = Workdir.of(workdir)
    t, uri, bbox = for_workdir(work.root), tracking_uri(work.root), parse_aoi(aoi)
    fan_out = gpu_work_pool or dask_address or "in-process"
    params = _run_params(
        bbox, start, end, event_date, methods, catalogs, stac_apis, settings, fan_out
    )
    parent = _start_tracking(uri, event, params)

    scenes = t.discover_scenes(
        catalogs or [], stac_apis or [], bbox, parse_time(start), parse_time(end), collections
    )
    pairs = t.pair(scenes, _pairing_rules(min_overlap, max_gap_days, event_date), bbox)
    jobs = _jobs(pairs, methods, settings, tiepoints, work, event, uri, parent, publish_stac_api)
    results = _register_each(jobs, gpu_work_pool, dask_address)

    summary = _summarise(event, work, uri, parent, len(scenes), len(pairs), results)
    _report(summary)
    _end_tracking(uri, parent, summary, len(jobs))
    return summary


@flow(name="register-pairs")
def register_pairs(
    jobs: list[dict[str, Any]], deployment: str | None = None
) -> list[dict[str, Any]]:
    """Fan out one register-pair run per job; each outcome is a record or the reason it failed."""
    futures = register_job.map(jobs, unmapped(deployment))
    wait(futures)
    outcomes = []
    for job, future in zip(jobs, futures, strict=False):
        if future.state.is_completed():
            outcomes.append({"status": "ok", **future.result()})
        else:
            outcomes.append(
                {
                    "status": "failed",
                    "pair": _pair_id(job),
                    "method": job["method"],
                    "error": future.state.message,
                }
            )
    return outcomes


@task(name="register-pair-job", task_run_name="{job[method]}: {job[optical][id]} × {job[sar][id]}")
def register_job(job: dict[str, Any], deployment: str | None) -> dict[str, Any]:
    """One pair × method: the register-pair flow here, or a run of its deployment on the GPU pool
    (waited for)."""
    if deployment is None:
        return register_pair(**job)
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    run = run_deployment(
        deployment,
        parameters=job,
        poll_interval=2,
        flow_run_name=f"{job['method']} {_pair_id(job)}"[:120],
        idempotency_key=f"{flow_run.root_flow_run_id}:{_pair_id(job)}:{job['method']}",
    )
    if not run.state or not run.state.is_completed():
        raise RegistrationError(
            f"{deployment} run {run.name} ended "
            f"{run.state.name if run.state else 'without a state'}: "
            f"{run.state.message if run.state else ''}"
        )
    key = product_key(job["activation"], job["method"], job["settings"])
    return read_record(job["workdir"], _pair_id(job), job["method"], key)


@task(name="find-register-deployment", retries=2, retry_delay_seconds=5)
def find_register_deployment(work_pool: str) -> str:
    """``register-pair/<name>`` of the register-pair deployment on ``work_pool`` (``register-pair``
    itself preferred)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        WorkPoolFilter,
        WorkPoolFilterName,
    )

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[REGISTER_FLOW])),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[work_pool])),
        )
    names = sorted((d.name for d in found), key=lambda n: (n != REGISTER_FLOW, n))
    if not names:
        raise InputError(
            f"no {REGISTER_FLOW} deployment on work pool {work_pool!r}: create the pool and run "
            "`prefect deploy --all` (prefect.yaml), or leave gpu_work_pool empty to register "
            "in-process"
        )
    return f"{REGISTER_FLOW}/{names[0]}"


def parse_aoi(aoi: str | list[float] | dict[str, Any] | None) -> BBox | None:
    """A range-checked WGS84 bbox from ``minx,miny,maxx,maxy``, a list, or a GeoJSON
    geometry/feature (its bounds): :func:`stac.aoi.parse_bbox`."""
    return parse_bbox(aoi, "AOI")


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    """An aware datetime from ISO 8601 (``Z`` allowed) or a datetime; UTC when no zone is given."""
    if value is None or value == "":
        return None
    t = (
        value
        if isinstance(value, dt.datetime)
        else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _pair_id(job: dict[str, Any]) -> str:
    return pair_id(job["optical"]["id"], job["sar"]["id"])


def _run_params(
    bbox: BBox | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    event_date: dt.datetime | None,
    methods: list[str],
    catalogs: list[str] | None,
    stac_apis: list[str] | None,
    settings: dict[str, dict[str, str]] | None,
    fan_out: str,
) -> dict[str, Any]:
    """The activation's parameters as its MLflow parent run logs them."""
    return {
        "aoi": bbox,
        "start": start,
        "end": end,
        "event_date": event_date,
        "methods": methods,
        "catalogs": catalogs,
        "stac_apis": stac_apis,
        "settings": settings or {},
        "fan_out": fan_out,
    }


def _start_tracking(uri: str, event: str, params: dict[str, Any]) -> str:
    """The activation's MLflow parent run in the event's experiment, named by its start time."""
    return track_activation_start(
        uri=uri,
        experiment=event,
        activation=f"{event} {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        params=params,
        tags={},
    )


def _pairing_rules(
    min_overlap: float, max_gap_days: float, event_date: str | dt.datetime | None
) -> PairingRules:
    """The pairing rules of the activation's parameters."""
    return PairingRules(
        min_overlap_fraction=min_overlap,
        max_gap_days=max_gap_days,
        event_date=parse_time(event_date),
    )


def _jobs(
    pairs: list[Pair],
    methods: list[str],
    settings: dict[str, dict[str, str]] | None,
    tiepoints: dict[str, str] | None,
    work: Workdir,
    event: str,
    uri: str,
    parent: str,
    stac_api: str | None,
) -> list[dict[str, Any]]:
    """The register-pair parameters of every pair × method, pair by pair."""
    return [
        _job(p, m, (settings or {}).get(m), tiepoints or {}, work, event, uri, parent, stac_api)
        for p in pairs
        for m in methods
    ]


def _register_each(
    jobs: list[dict[str, Any]], gpu_work_pool: str | None, dask_address: str | None
) -> list[dict[str, Any]]:
    """Run every job through the GPU pool's deployment, a Dask cluster, or here one at a time."""
    deployment = find_register_deployment(gpu_work_pool) if gpu_work_pool and jobs else None
    runner = _fan_out_runner(dask_address, deployment)
    return register_pairs.with_options(task_runner=runner)(jobs, deployment)


def _job(
    p: Pair,
    method: str,
    settings: dict[str, str] | None,
    tiepoints: dict[str, str],
    work: Workdir,
    event: str,
    uri: str,
    parent: str,
    stac_api: str | None,
) -> dict[str, Any]:
    """The register-pair parameters of one pair × method (JSON: it may travel to another worker)."""
    return {
        "optical": p.optical.to_record(),
        "sar": p.sar.to_record(),
        "method": method,
        "settings": settings or {},
        "tiepoints": tiepoints.get(p.id) or tiepoints.get(p.sar.id),
        "workdir": str(work.root),
        "activation": event,
        "overlap_fraction": p.overlap_fraction,
        "mlflow_uri": uri,
        "parent_run_id": parent,
        "stac_api": stac_api,
    }


def _fan_out_runner(dask_address: str | None, deployment: str | None):
    """Threads that wait on deployment runs; a Dask cluster; or one pair at a time here
    (registration uses every core)."""
    if deployment:
        return ThreadPoolTaskRunner(max_workers=32)
    if dask_address:
        from prefect_dask import DaskTaskRunner

        if dask_address == "local":
            return DaskTaskRunner(
                cluster_kwargs={"n_workers": os.cpu_count() or 1, "threads_per_worker": 1}
            )
        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=1)


def _summarise(
    event: str,
    work: Workdir,
    uri: str,
    parent: str,
    n_scenes: int,
    n_pairs: int,
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    rows = []
    for r in results:
        s = r.get("score") or {}
        rows.append(
            {
                "pair": r["pair"],
                "method": f"{r['method']} {r.get('version', '')}".strip(),
                "status": r["status"],
                "mean_m": round(s["mean_m"], 3) if s else None,
                "zero_m": round(s["zero_mean_m"], 3) if s else None,
                "tiepoints": s.get("tiepoints"),
                "runtime_s": r.get("runtime_s"),
                "item": r.get("item"),
                "mlflow_run_id": r.get("mlflow_run_id"),
                "error": (r.get("error") or "")[:500] or None,
            }
        )
    by_method: dict[str, list[float]] = {}
    for r in results:
        if r.get("score"):
            by_method.setdefault(r["method"], []).append(r["score"]["mean_m"])
    return {
        "event": event,
        "scenes": n_scenes,
        "pairs": n_pairs,
        "runs": len(results),
        "failed": sum(r["status"] != "ok" for r in results),
        "mean_error_m": {m: round(statistics.fmean(v), 3) for m, v in by_method.items()},
        "catalog": str(work.catalog / "catalog.json"),
        "workdir": str(work.root),
        "mlflow_uri": uri,
        "mlflow_parent_run": parent,
        "results": rows,
    }


def _report(summary: dict[str, Any]) -> None:
    """The per-pair table and the activation's markdown summary (Prefect artifacts)."""
    log = get_run_logger()
    key = key_slug(summary["event"], "event", limit=80)
    create_table_artifact(
        summary["results"],
        key=f"activation-{key}-pairs",
        description=f"{summary['event']}: per-pair results",
    )
    scores = (
        "\n".join(f"| {m} | {v} |" for m, v in summary["mean_error_m"].items())
        or "| (no tiepoints) | |"
    )
    failures = [r for r in summary["results"] if r["status"] != "ok"]
    for r in failures:
        log.error("pair %s (%s) failed: %s", r["pair"], r["method"], r["error"])
    create_markdown_artifact(
        key=f"activation-{key}",
        description=f"activation {summary['event']}",
        markdown=(
            f"## Activation {summary['event']}\n\n{summary['scenes']} scenes, {summary['pairs']} "
            "pairs, "
            f"{summary['runs']} registrations, **{summary['failed']} failed**.\n\n"
            f"| method | mean tiepoint error (m) |\n|---|---|\n{scores}\n\n"
            + "".join(f"- failed: {r['pair']} {r['method']}: {r['error']}\n" for r in failures)
            + f"\n- STAC catalog: `{summary['catalog']}`\n"
            f"- MLflow: `{summary['mlflow_uri']}`, parent run "
            f"`{summary['mlflow_parent_run']}` (experiment {summary['event']})\n"
        ),
    )


def _end_tracking(uri: str, parent: str, summary: dict[str, Any], n_jobs: int) -> None:
    """Close the parent run with the summary's counts and mean errors; FAILED when every
    registration failed."""
    track_activation_end(
        uri,
        parent,
        {k: summary[k] for k in ("scenes", "pairs", "runs", "failed")}
        | {f"mean_m_{m}": v for m, v in summary["mean_error_m"].items()},
        "FAILED" if n_jobs and summary["failed"] == n_jobs else "FINISHED",
    )
