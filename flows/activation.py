"""The ``activation`` flow: a disaster is declared → discover scenes → pair → register every pair ×
method → summary.

Each pair × method is one ``register-pair`` flow run: on a GPU work pool through its deployment
(``run_deployment``) when ``gpu_work_pool`` is set, else in this process — on a Dask cluster
(prefect-dask ``DaskTaskRunner``) when ``dask_address`` is set. A pool that cannot run them
(missing, paused, no live worker) stops the activation before anything starts, or with
``fallback_in_process`` the pairs run here; a deployment run that has not finished after
``pair_timeout_s`` is cancelled. A failed pair is reported; the others finish. The activation ends
Failed when every registration failed, Completed with a message when some did.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.futures import wait
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from core.errors import InputError, RegistrationError
from core.ids import pair_id
from core.times import parse_time
from flows.activation_summary import end_state, report, summarise
from flows.register_pair import read_record, register_pair
from flows.server import PAIR_TIMEOUT_S, cancel_flow_run, pool_problem
from flows.workdir import Workdir, product_key
from models.methods import DEFAULT_METHOD, check_methods
from stac.aoi import BBox, parse_bbox
from stac.pairing import MAX_GAP_DAYS, MIN_OVERLAP, Pair, PairingRules
from tasks import for_workdir
from tasks.height import pair_dems
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
    fallback_in_process: bool = False,
    pair_timeout_s: float = PAIR_TIMEOUT_S,
    dem: str | None = None,
    dem_collection: str | None = None,
) -> dict[str, Any] | State:
    """Align every optical/SAR pair of a declared disaster, score, track in MLflow and publish to
    STAC.

    Returns the summary; the run ends Failed (the summary as its data) when every registration
    failed, and Completed with a message such as "1 of 3 registrations failed" when some did.

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
        fallback_in_process: When gpu_work_pool cannot run the pairs (missing, paused, no live
            worker), register them in this process with a warning instead of failing.
        pair_timeout_s: Seconds a register-pair deployment run may take, from its creation, before
            it is cancelled and reported as a failed registration.
        dem: A DSM or DEM GeoTIFF/COG (path or URL) given to every pair as its height model.
        dem_collection: Without ``dem``: the DEM collection (e.g. cop-dem-glo-30) whose item
            covering most of each pair's optical footprint is found in ``catalogs`` and
            ``stac_apis``, fetched into the cache (checksum verified) and given to the pair.
    """
    methods = methods or [DEFAULT_METHOD]
    check_methods(methods, settings)  # before discovery and tracking start
    work = Workdir.of(workdir)
    t, uri, bbox = for_workdir(work.root), tracking_uri(work.root), parse_aoi(aoi)
    deployment = (
        find_register_deployment(gpu_work_pool, fallback_in_process) if gpu_work_pool else None
    )
    fan_out = deployment or dask_address or "in-process"
    params = _run_params(
        bbox, start, end, event_date, methods, catalogs, stac_apis, settings, fan_out
    ) | {"dem": dem, "dem_collection": dem_collection}
    parent = _start_tracking(uri, event, params)

    scenes = t.discover_scenes(
        catalogs or [], stac_apis or [], bbox, parse_time(start), parse_time(end), collections
    )
    scenes = [s for s in scenes if dem_collection is None or s.collection != dem_collection]
    pairs = t.pair(scenes, _pairing_rules(min_overlap, max_gap_days, event_date), bbox)
    jobs = _jobs(pairs, methods, settings, tiepoints, work, event, uri, parent, publish_stac_api)
    dems = pair_dems(pairs, dem, dem_collection, catalogs or [], stac_apis or [])
    for job in jobs:
        job.update(dems.get(_pair_id(job), {}))
    results = _register_each(jobs, deployment, dask_address, pair_timeout_s)

    summary = summarise(event, work, uri, parent, len(scenes), len(pairs), results)
    report(summary)
    _end_tracking(uri, parent, summary, len(jobs))
    return end_state(summary)


@flow(name="register-pairs")
def register_pairs(
    jobs: list[dict[str, Any]],
    deployment: str | None = None,
    timeout_s: float = PAIR_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Fan out one register-pair run per job; each outcome is a record or the reason it failed.

    Args:
        jobs: The register-pair parameters of every pair × method.
        deployment: ``register-pair/<name>`` to run each job through; none = in this process.
        timeout_s: Seconds a deployment run may take before it is cancelled.
    """
    futures = register_job.map(jobs, unmapped(deployment), unmapped(timeout_s))
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
def register_job(
    job: dict[str, Any], deployment: str | None, timeout_s: float = PAIR_TIMEOUT_S
) -> dict[str, Any]:
    """One pair × method: the register-pair flow here, or a run of its deployment on the GPU pool
    (waited for ``timeout_s`` seconds, then cancelled)."""
    if deployment is None:
        return register_pair(**job)
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    run = run_deployment(
        deployment,
        parameters=job,
        poll_interval=2,
        timeout=timeout_s,
        flow_run_name=f"{job['method']} {_pair_id(job)}"[:120],
        idempotency_key=f"{flow_run.root_flow_run_id}:{_pair_id(job)}:{job['method']}",
    )
    if not run.state or not run.state.is_final():
        reason = f"not finished after {timeout_s:g} s (pair_timeout_s): cancelled"
        was = cancel_flow_run(run.id, reason)
        raise RegistrationError(
            f"{deployment} run {run.name} was still {was} after {timeout_s:g} s "
            f"(pair_timeout_s): cancelled; is a worker of its pool running and free?"
        )
    if not run.state.is_completed():
        raise RegistrationError(
            f"{deployment} run {run.name} ended "
            f"{run.state.name if run.state else 'without a state'}: "
            f"{run.state.message if run.state else ''}"
        )
    key = product_key(job["activation"], job["method"], job["settings"])
    return read_record(job["workdir"], _pair_id(job), job["method"], key)


def _not_input_error(task: Any, task_run: Any, state: State) -> bool:
    """Retry a failed task unless it failed on the user's input (an answer, not a glitch)."""
    return not isinstance(state.data, InputError)


@task(
    name="find-register-deployment",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_not_input_error,
)
def find_register_deployment(work_pool: str, fallback_in_process: bool = False) -> str | None:
    """``register-pair/<name>`` of the register-pair deployment on ``work_pool`` (``register-pair``
    itself preferred); None (in this process) with ``fallback_in_process`` when the pool cannot run
    it: missing, paused, without a live worker, or without the deployment."""
    deployment, problem = _register_deployment(work_pool), pool_problem(work_pool)
    if deployment is None:
        missing = (
            f"no {REGISTER_FLOW} deployment on work pool {work_pool!r} (`prefect deploy --all`)"
        )
        problem = f"{problem}; {missing}" if problem else missing
    if problem is None:
        return deployment
    if fallback_in_process:
        get_run_logger().warning(
            "%s: registering the pairs in this process instead (fallback_in_process)", problem
        )
        return None
    raise InputError(
        f"{problem}: start a worker (`prefect worker start --pool {work_pool}`), use a pool with a "
        f"live worker and a {REGISTER_FLOW} deployment (--gpu-work-pool cpu: register-pair-cpu), "
        "or register the pairs here (--fallback-in-process)"
    )


def _register_deployment(work_pool: str) -> str | None:
    """``register-pair/<name>`` of the register-pair deployment on ``work_pool``; None if none."""
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
    return f"{REGISTER_FLOW}/{names[0]}" if names else None


def parse_aoi(aoi: str | list[float] | dict[str, Any] | None) -> BBox | None:
    """A range-checked WGS84 bbox from ``minx,miny,maxx,maxy``, a list, or a GeoJSON
    geometry/feature (its bounds): :func:`stac.aoi.parse_bbox`."""
    return parse_bbox(aoi, "AOI")


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
    jobs: list[dict[str, Any]],
    deployment: str | None,
    dask_address: str | None,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Run every job through the GPU pool's deployment, a Dask cluster, or here one at a time."""
    runner = _fan_out_runner(dask_address, deployment)
    return register_pairs.with_options(task_runner=runner)(jobs, deployment, timeout_s)


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
