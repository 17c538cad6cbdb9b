"""``coalign compare``: mean error per registration method version over an experiment's MLflow
runs."""

from __future__ import annotations

import argparse
import json

from flows.options import WORKDIR_HELP


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare registration method versions in MLflow (table, CSV, plot, Prefect artifacts)",
        description="Mean SN9 error per method version over the scored pair runs of an MLflow "
        "experiment (an event, or a benchmark), beside the zero-shift and oracle-affine "
        "references. Writes <workdir>/compare/<experiment>.csv and .png and runs as the Prefect "
        "flow `compare`.",
    )
    p.add_argument(
        "--experiment",
        required=True,
        help="MLflow experiment: the event name, or a benchmark experiment",
    )
    p.add_argument("--workdir", help=WORKDIR_HELP)
    p.add_argument(
        "--mlflow-uri",
        help="MLflow tracking URI (default sqlite:///<workdir>/mlflow.db or $COALIGN_MLFLOW_URI)",
    )
    p.add_argument(
        "--bench-report",
        metavar="JSON",
        help="log this `coalign bench --out` report into the experiment first",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.compare import run_compare
    from flows.server import prefect_api

    with prefect_api():
        result = run_compare(args.experiment, args.workdir, args.mlflow_uri, args.bench_report)
    if args.json:
        print(json.dumps(result, default=str))
        return 0

    def f(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    wide = max([10, *(len(r["version"]) + 2 for r in result["rows"])])
    print(
        f"{'method':<16}{'version':<{wide}}{'pairs':>6}{'mean m':>9}{'mean px':>9}"
        f"{'zero m':>9}{'oracle m':>9}"
    )
    for r in result["rows"]:
        print(
            f"{r['method']:<16}{r['version']:<{wide}}{r['pairs']:>6}{f(r['mean_m']):>9}{f(r['mean_px']):>9}"
            f"{f(r['zero_mean_m']):>9}{f(r['oracle_affine_mean_m']):>9}"
        )
    references = (
        f"zero shift {f(result['zero_mean_m'])} m, "
        f"oracle affine {f(result['oracle_affine_mean_m'])} m"
    )
    print(references.replace("– m", "–"))
    print(f"CSV {result['csv']}\nplot {result['plot']}")
    return 0
