"""``coalign demo`` (what ``make demo`` runs): a whole activation on a synthetic sample event, no
network.

The sample event (``samples.event``) is written as Maxar-like and Umbra-like static catalogs
(``samples.catalog``); the ``activation`` flow then runs against them on Prefect's temporary
local server, logs to MLflow and publishes the output catalog, all under the working directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from flows.options import WORKDIR_HELP
from flows.workdir import Workdir

OPTICAL_ID = "10300100SAMPLE01"  # Maxar catalog-id style
SAR_ID = "5a3e1f02-9b7c-4d2a-8e11-0c6f2b9d4a11"  # Umbra task-uuid style
DEMO_METHODS = ["local", "zero"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run an activation end to end on an embedded synthetic event (no network)"
    )
    p.add_argument("--workdir", help=WORKDIR_HELP)
    p.add_argument(
        "--size", type=float, default=400.0, help="side of the sample scene in metres (default 400)"
    )
    p.add_argument(
        "--method",
        action="append",
        default=[],
        help=f"registration method (repeatable; default: {' and '.join(DEMO_METHODS)})",
    )
    p.set_defaults(run=run)


def build_demo_catalogs(workdir: str | Path, size_m: float = 400.0):
    """The sample event as Maxar-like and Umbra-like static catalogs under
    ``<workdir>/sample-event``.

    Returns ``(event, maxar_catalog, umbra_catalog)``; an existing event of the same size is reused
    (same files, so a rerun hits the task cache).
    """
    from samples.catalog import SampleScene, write_maxar_catalog, write_umbra_catalog
    from samples.event import sample_event

    root = Path(workdir) / "sample-event"
    maxar, umbra, stamp = (
        root / "maxar" / "events" / "catalog.json",
        root / "umbra" / "stac" / "catalog.json",
        root / "catalogs.json",
    )
    ev = sample_event(root / "images", size_m)
    written_for = repr(ev.pair.spec)
    if not (
        maxar.exists()
        and umbra.exists()
        and stamp.exists()
        and json.loads(stamp.read_text()) == written_for
    ):
        write_maxar_catalog(
            root / "maxar",
            ev.name,
            [
                SampleScene(
                    ev.pair.optical,
                    OPTICAL_ID,
                    ev.optical_time,
                    "WV03",
                    0.3,
                    {"view:off_nadir": 14.2, "view:azimuth": 201.5},
                )
            ],
        )
        write_umbra_catalog(
            root / "umbra",
            [
                SampleScene(
                    ev.pair.sar,
                    SAR_ID,
                    ev.sar_time,
                    "Umbra-08",
                    0.4,
                    {"view:incidence_angle": 38.5, "view:azimuth": 97.0},
                )
            ],
        )
        stamp.write_text(json.dumps(written_for))
    return ev, maxar, umbra


def demo_parameters(workdir: Path, size_m: float, methods: list[str]) -> dict[str, Any]:
    """The activation parameters of the demo: the event's window, both catalogs, tiepoints for the
    SAR scene."""
    ev, maxar, umbra = build_demo_catalogs(workdir, size_m)
    return {
        "event": ev.name,
        "start": (ev.event_date - dt.timedelta(days=30)).isoformat(),
        "end": (ev.event_date + dt.timedelta(days=30)).isoformat(),
        "event_date": ev.event_date.isoformat(),
        "catalogs": [str(maxar), str(umbra)],
        "methods": methods,
        "tiepoints": {SAR_ID: str(ev.pair.tiepoints)},
        "workdir": str(workdir),
    }


def run(args: argparse.Namespace) -> int:
    from flows.activation_summary import format_summary
    from flows.commands.activate import run_activation

    started = time.perf_counter()
    work = Workdir.of(args.workdir)
    summary = run_activation(demo_parameters(work.root, args.size, args.method or DEMO_METHODS))
    print(format_summary(summary, time.perf_counter() - started, "coalign demo"))
    return 1 if summary["failed"] else 0
