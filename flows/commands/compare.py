"""``coalign compare``: mean error per registration method version over an event's MLflow runs."""

from __future__ import annotations

import argparse
import json
import os


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare registration method versions in MLflow (table, CSV, plot)")
    p.add_argument("--experiment", required=True, help="MLflow experiment: the event name, or a benchmark")
    p.add_argument("--workdir", default=os.environ.get("COALIGN_WORKDIR", "coalign-work"), help="working directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.compare import run_compare

    result = run_compare(args.experiment, args.workdir)
    for r in result["rows"]:
        print(f"{r['method']:<14} {r['version']:<8} runs {r['runs']:>3}  mean {r['mean_m']} m  zero {r['zero_mean_m']} m")
    print(json.dumps({"csv": result["csv"], "plot": result["plot"]}))
    return 0
