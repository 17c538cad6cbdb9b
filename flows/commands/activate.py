"""``coalign activate``: run an activation from the command line, or declare one (``--emit``) to a
Prefect server."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from core.errors import InputError
from core.ids import key_slug
from flows.options import WORKDIR_HELP, add_pairing_options, add_search_options, option_time
from flows.server import PAIR_TIMEOUT_S
from models.method_names import DEFAULT_METHOD, SET_GRAMMAR
from stac.aoi import parse_bbox

EVENT_NAME = "coalign.activation.declared"


def add_activation_options(p: argparse.ArgumentParser) -> None:
    """The activation flow's parameters as options."""
    p.add_argument(
        "--event",
        default="activation",
        help="event name: the MLflow experiment and the STAC collection of the products",
    )
    add_search_options(p, required=False)
    add_pairing_options(p, defaults=False)
    _add_method_options(p)
    p.add_argument("--workdir", help=f"{WORKDIR_HELP[:-1]}; with --emit, the deployment's)")
    _add_dispatch_options(p)
    p.add_argument(
        "--publish-stac-api",
        metavar="URL",
        help="also publish the STAC Items to this STAC API (Transaction extension)",
    )
    _add_height_options(p)


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """The methods to run, their settings and the tiepoints that score them."""
    p.add_argument(
        "--method",
        action="append",
        default=[],
        help=f"registration method (repeatable; default: {DEFAULT_METHOD})",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar=SET_GRAMMAR,
        help="method setting, e.g. local:levels=4,2,1; a bare KEY=VALUE sets the one method "
        "run (repeatable)",
    )
    p.add_argument(
        "--tiepoints",
        action="append",
        default=[],
        metavar="ID=CSV",
        help="SN9 tiepoints of a SAR scene id or pair id",
    )


def _add_dispatch_options(p: argparse.ArgumentParser) -> None:
    """Where the pairs run: a GPU work pool (with its fallback and timeout) or Dask."""
    p.add_argument(
        "--gpu-work-pool",
        help="run each pair × method as a run of the register-pair deployment on this work pool",
    )
    p.add_argument(
        "--fallback-in-process",
        action="store_true",
        default=None,
        help="when the --gpu-work-pool has no live worker (or is missing or paused), register the "
        "pairs in this process with a warning instead of failing",
    )
    p.add_argument(
        "--pair-timeout",
        type=float,
        metavar="SECONDS",
        help="cancel a register-pair deployment run not finished after this long and report it "
        f"as failed (default {PAIR_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--dask-address",
        help="run the pairs on this Dask scheduler ('local': a temporary local cluster)",
    )


def _add_height_options(p: argparse.ArgumentParser) -> None:
    """The pairs' height model: one file for all, or found per pair in a collection."""
    height = p.add_mutually_exclusive_group()
    height.add_argument(
        "--dem",
        metavar="PATH_OR_URL",
        help="DSM or DEM GeoTIFF/COG given to every pair as its height model",
    )
    height.add_argument(
        "--dem-collection",
        metavar="ID",
        help="find each pair's DEM in this collection of the --catalog/--stac-api sources "
        "(e.g. cop-dem-glo-30)",
    )


def _positive(value: float | None, option: str) -> float | None:
    if value is not None and not value > 0:
        raise InputError(f"{option} {value:g}: give a number of seconds above 0")
    return value


def _iso(value: str | None, option: str) -> str | None:
    if not value:
        return None
    option_time(value, option)  # checked here, parsed by the flow
    return value


def activation_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The activation flow parameters the options give (JSON-ready: also the event payload); options
    not
    given are left out, so the flow's — or, for an emitted event, the deployment's — defaults
    apply."""
    if not args.catalog and not args.stac_api:
        raise InputError("give at least one --catalog or --stac-api to search for scenes")
    tiepoints = {}
    for item in args.tiepoints:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise InputError(f"--tiepoints {item!r}: expected SCENE_OR_PAIR_ID=CSV")
        if not os.path.isfile(path):
            raise InputError(f"--tiepoints {item!r}: tiepoint file {path} not found")
        tiepoints[key] = os.path.abspath(path)
    from models.methods import check_methods, parse_set_options

    methods = args.method or [DEFAULT_METHOD]
    settings = parse_set_options(args.set, methods)
    # checked here: the flow would first start a server, discovery and tracking
    check_methods(methods, settings)
    if not args.emit:  # an emitted activation resolves models where its deployment runs
        from flows.descriptor_options import pin_model_options

        settings = pin_model_options(settings, args.workdir)
    parse_bbox(args.bbox)  # fail here, not in the flow
    params = {
        "event": args.event,
        "aoi": args.bbox,
        "start": _iso(args.start, "--start"),
        "end": _iso(args.end, "--end"),
        "event_date": _iso(args.event_date, "--event-date"),
        "catalogs": [c if "://" in c else os.path.abspath(c) for c in args.catalog],
        "stac_apis": args.stac_api,
        "collections": args.collection or None,
        "methods": args.method or None,
        "settings": settings or None,
        "tiepoints": tiepoints or None,
        "workdir": os.path.abspath(args.workdir) if args.workdir else None,
        "gpu_work_pool": args.gpu_work_pool,
        "fallback_in_process": args.fallback_in_process,
        "pair_timeout_s": _positive(args.pair_timeout, "--pair-timeout"),
        "dask_address": args.dask_address,
        "max_gap_days": args.max_gap_days,
        "min_overlap": args.min_overlap,
        "publish_stac_api": args.publish_stac_api,
        "dem": _dem(args.dem),
        "dem_collection": args.dem_collection,
    }
    return {k: v for k, v in params.items() if v is not None}


def _dem(value: str | None) -> str | None:
    """``--dem`` as the flow takes it: a URL as given, a local file as an absolute path."""
    if not value or "://" in value:
        return value
    if not os.path.isfile(value):
        raise InputError(f"--dem {value}: file not found; give a DSM/DEM GeoTIFF path or URL")
    return os.path.abspath(value)


def run_activation(params: dict[str, Any]) -> dict[str, Any]:
    """Run the activation flow here; its summary, also when every registration failed.

    Without PREFECT_API_URL it runs on Prefect's temporary local server
    (:func:`flows.server.prefect_api`). An activation that failed before its summary (bad input, a
    work pool without workers) raises that error.

    Args:
        params: The activation flow's parameters.
    """
    from flows.activation import activation
    from flows.server import prefect_api

    with prefect_api():
        state = activation(**params, return_state=True)
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary
    return summary


def emit_activation(params: dict[str, Any]) -> str:
    """Declare the activation: emit ``coalign.activation.declared`` with the parameters as payload;
    the event id."""
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise InputError(
            "--emit sends the event to a Prefect server: set PREFECT_API_URL (e.g. "
            "http://127.0.0.1:4200/api) "
            "to the server where the activation deployment is (`prefect deploy --all`)"
        )
    name = key_slug(params["event"], "event", limit=None)
    event = emit_event(
        event=EVENT_NAME,
        resource={
            "prefect.resource.id": f"coalign.event.{name}",
            "prefect.resource.name": params["event"],
        },
        payload=params,
    )
    EventsWorker.drain_all(timeout=30)
    if event is None:
        raise InputError(
            f"the Prefect client did not emit the event (server {PREFECT_API_URL.value()}); check "
            "PREFECT_API_URL"
        )
    return str(event.id)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "activate",
        help="run an activation: discover, pair, register, score, track, publish (or --emit it)",
    )
    add_activation_options(p)
    p.add_argument(
        "--emit",
        action="store_true",
        help=f"emit the {EVENT_NAME} event (PREFECT_API_URL) instead of running here",
    )
    p.add_argument("--json", action="store_true", help="print the summary (or event) as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.activation_summary import format_summary

    params = activation_parameters(args)
    if args.emit:
        event_id = emit_activation(params)
        if args.json:
            print(json.dumps({"emitted": EVENT_NAME, "id": event_id, "payload": params}))
        else:
            print(f"emitted {EVENT_NAME} {event_id} for event {params['event']!r}")
        return 0
    started = time.perf_counter()
    summary = run_activation(params)
    if args.json:
        print(json.dumps(summary, default=str, indent=1))
    else:
        print(format_summary(summary, time.perf_counter() - started, "coalign activate"))
    return 1 if summary["failed"] else 0
