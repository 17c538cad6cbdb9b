"""``coalign activate``: run (or declare, with --emit) an activation from the command line."""

from __future__ import annotations

import argparse
import json
import os

from models.errors import InputError


def add_activation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", default="activation", help="event name (MLflow experiment, output collection)")
    p.add_argument("--catalog", action="append", default=[], help="static STAC catalog root (repeatable)")
    p.add_argument("--stac-api", action="append", default=[], help="STAC API URL (repeatable)")
    p.add_argument("--collection", action="append", default=[], help="STAC API collection (repeatable)")
    p.add_argument("--bbox", help="AOI minx,miny,maxx,maxy (WGS84) or a GeoJSON geometry")
    p.add_argument("--start", help="acquisition window start (ISO 8601)")
    p.add_argument("--end", help="acquisition window end (ISO 8601)")
    p.add_argument("--event-date", help="event time: optical before, SAR after")
    p.add_argument("--method", action="append", default=[], help="registration method (repeatable)")
    p.add_argument("--tiepoints", action="append", default=[], metavar="SCENE_ID=CSV", help="SN9 tiepoints for a SAR scene or pair id")
    p.add_argument("--workdir", default=os.environ.get("COALIGN_WORKDIR", "coalign-work"), help="working directory")
    p.add_argument("--gpu-work-pool", help="run pair registrations as register-pair deployment runs on this pool")
    p.add_argument("--dask-address", help="run pairs and tile jobs on this Dask scheduler")
    p.add_argument("--publish-stac-api", help="also publish items to this STAC API (Transaction extension)")


def activation_parameters(args: argparse.Namespace) -> dict:
    tiepoints = {}
    for item in args.tiepoints:
        if "=" not in item:
            raise InputError(f"--tiepoints {item!r}: expected SCENE_ID=CSV")
        k, v = item.split("=", 1)
        tiepoints[k] = os.path.abspath(v)
    if not args.catalog and not args.stac_api:
        raise InputError("give at least one --catalog or --stac-api")
    return {
        "event": args.event, "aoi": args.bbox, "start": args.start, "end": args.end, "event_date": args.event_date,
        "catalogs": [c if "://" in c else os.path.abspath(c) for c in args.catalog], "stac_apis": args.stac_api,
        "collections": args.collection or None, "methods": args.method or None, "tiepoints": tiepoints or None,
        "workdir": os.path.abspath(args.workdir), "gpu_work_pool": args.gpu_work_pool, "dask_address": args.dask_address,
        "stac_api_publish": args.publish_stac_api,
    }


def run_activation(params: dict) -> dict:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.activation import activation, configure_local_results

    configure_local_results(params["workdir"])
    flow_fn = activation
    if params.get("dask_address"):
        from prefect_dask import DaskTaskRunner

        flow_fn = activation.with_options(task_runner=DaskTaskRunner(address=params["dask_address"]))
    return flow_fn(**params)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("activate", help="run an activation: discover, pair, register, score, track, publish")
    add_activation_options(p)
    p.add_argument("--emit", action="store_true", help="emit the coalign.activation.declared event instead of running")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    params = activation_parameters(args)
    if args.emit:
        from prefect.events import emit_event

        event = emit_event(event="coalign.activation.declared", resource={"prefect.resource.id": f"coalign.event.{args.event}"},
                           payload=params)
        print(json.dumps({"emitted": "coalign.activation.declared", "id": str(event.id) if event else None}))
        return 0
    summary = run_activation(params)
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, default=str))
    return 1 if summary["failed"] and summary["failed"] == summary["runs"] else 0
