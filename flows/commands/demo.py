"""``coalign demo``: the whole activation on an embedded synthetic event (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

from flows.commands.activate import run_activation


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run an activation end to end on an embedded synthetic event (no network)")
    p.add_argument("--workdir", default=os.environ.get("COALIGN_WORKDIR", "coalign-work"), help="where all outputs go")
    p.add_argument("--size", type=float, default=400.0, help="scene side in metres")
    p.add_argument("--method", action="append", default=[], help="registration method(s) (default: local and zero)")
    p.set_defaults(run=run)


def build_demo_catalogs(workdir: Path, size_m: float = 400.0):
    """Synthesise the sample event and write it as Maxar-like and Umbra-like static catalogs."""
    from models.sample_event import sample_event
    from stac.sample_catalog import SampleScene, write_maxar_catalog, write_umbra_catalog

    ev = sample_event(workdir / "sample-event" / "images", size_m)
    root = workdir / "sample-event"
    maxar = write_maxar_catalog(root / "maxar", ev.name, [
        SampleScene(ev.pair.optical, "10400100SAMPLE01", ev.optical_time, "WV03", 0.3, {"view:off_nadir": 14.2, "view:azimuth": 201.5})])
    umbra = write_umbra_catalog(root / "umbra", [
        SampleScene(ev.pair.sar, "5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11", ev.sar_time, "Umbra-08", 0.4, {"view:incidence_angle": 38.5})])
    return ev, maxar, umbra


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    work = Path(args.workdir).resolve()
    ev, maxar, umbra = build_demo_catalogs(work, args.size)
    fp = ev.pair
    params = {
        "event": ev.name, "aoi": None, "start": (ev.event_date - dt.timedelta(days=30)).isoformat(), "end": (ev.event_date + dt.timedelta(days=30)).isoformat(),
        "event_date": ev.event_date.isoformat(), "catalogs": [str(maxar), str(umbra)], "stac_apis": [], "collections": None,
        "methods": args.method or ["local", "zero"], "tiepoints": {"5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11": str(fp.tiepoints)},
        "workdir": str(work), "gpu_work_pool": None, "dask_address": None, "stac_api_publish": None,
    }
    summary = run_activation(params)
    print("\ncoalign demo — activation", summary["activation"])
    for r in summary["results"]:
        print(f"  {r['method']:<22} {r['status']:<6} mean error {r['mean_m']} m (zero shift {r['zero_m']} m), {r['runtime_s']} s")
    print(f"  outputs:        {work / 'pairs'}")
    print(f"  STAC catalog:   {summary['catalog']}")
    print(f"  MLflow store:   {summary['mlflow_uri']}")
    print(f"  Prefect UI:     .venv/bin/prefect server start   (then open http://127.0.0.1:4200)")
    print(f"  MLflow UI:      .venv/bin/mlflow ui --backend-store-uri {summary['mlflow_uri']}")
    print(f"  wall time:      {time.perf_counter() - t0:.1f} s")
    return 0 if not summary["failed"] else 1
