"""The ``compare`` flow: registration method versions compared over MLflow runs.

It reads the finished, scored pair runs of one experiment (an event, or a benchmark logged with
:func:`tracking.benchmark.log_benchmark`), keeps the latest run per pair × method version, and
reports per method version the mean SN9 error in metres and pixels beside the zero-shift and
best-affine (oracle) references when they were logged (``zero_mean_m``, ``oracle_affine_mean_m``).
Outputs: ``<workdir>/compare/<experiment>.csv`` and ``.png``, a Prefect table artifact and a
markdown summary artifact (linking the experiment's runs table in the MLflow UI).
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from core.errors import InputError
from core.files import atomic_path
from core.ids import key_slug
from flows.workdir import Workdir
from tracking.benchmark import log_benchmark
from tracking.store import client, runs_url, tracking_uri

_SCORES = (
    "mean_m",
    "mean_px",
    "median_m",
    "p90_m",
    "zero_mean_m",
    "oracle_affine_mean_m",
)
COLUMNS = ("method", "version", "runs", "pairs", *_SCORES, "ratio_to_zero", "runtime_s")
_RUN_METRICS = (*_SCORES, "runtime_register_total_s")


def scored_runs(uri: str, experiment: str) -> list[dict[str, Any]]:
    """The experiment's finished pair runs that carry a score, latest per pair × method ×
    version."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise InputError(
            f"no MLflow experiment {experiment!r} in {uri}; experiments there: "
            f"{', '.join(names) or 'none'}"
        )
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    token = None
    while True:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string="attributes.status = 'FINISHED'",
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        for run in page:
            tags, metrics = run.data.tags, run.data.metrics
            if "coalign.method" not in tags or not math.isfinite(metrics.get("mean_m", math.nan)):
                continue
            row = {
                "run_id": run.info.run_id,
                "pair": tags.get("coalign.pair", run.info.run_id),
                "method": tags["coalign.method"],
                "version": tags.get("coalign.method_version", "unknown"),
                **{k: metrics.get(k) for k in _RUN_METRICS},
            }
            latest[(row["pair"], row["method"], row["version"])] = (
                row  # ascending start time: the last wins
            )
        token = page.token
        if not token:
            break
    return list(latest.values())


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return round(statistics.fmean(vals), 4) if vals else None


def method_table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method version (sorted by mean error): mean scores over its runs, and the
    zero-shift and oracle errors of the same pairs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["method"], r["version"])].append(r)
    rows = []
    for (method, version), rs in groups.items():
        row = {
            "method": method,
            "version": version,
            "runs": len(rs),
            "pairs": len({r["pair"] for r in rs}),
            **{k: _mean([r[k] for r in rs]) for k in _SCORES},
            "runtime_s": _mean([r["runtime_register_total_s"] for r in rs]),
        }
        row["ratio_to_zero"] = (
            round(row["mean_m"] / row["zero_mean_m"], 4) if row["zero_mean_m"] else None
        )
        rows.append({k: row[k] for k in COLUMNS})
    return sorted(rows, key=lambda r: (r["mean_m"], r["method"], r["version"]))


def reference_lines(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Zero-shift and oracle-affine mean errors (m) over the distinct pairs of the runs."""
    by_pair: dict[str, dict[str, Any]] = {}
    for r in runs:
        by_pair.setdefault(r["pair"], r)
    return {
        k: _mean([r[k] for r in by_pair.values()]) for k in ("zero_mean_m", "oracle_affine_mean_m")
    }


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def plot(
    rows: list[dict[str, Any]], lines: dict[str, float | None], out_png: Path, title: str
) -> Path:
    """Bar chart of the mean error per method version with the zero-shift and oracle lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(min(12.0, max(5.5, 1.3 * len(rows) + 2.5)), 4.5), dpi=100, layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [f"{r['method']}\n{r['version']}" for r in rows]
    bars = ax.bar(labels, [r["mean_m"] for r in rows], color="#4477aa")
    ax.bar_label(
        bars, labels=[f"{r['mean_m']:.2f} m\n{r['pairs']} pair(s)" for r in rows], fontsize=8
    )
    for key, style, colour, name in (
        ("zero_mean_m", "--", "#cc3311", "zero shift"),
        ("oracle_affine_mean_m", ":", "#009988", "oracle affine"),
    ):
        if lines.get(key) is not None:
            ax.axhline(
                lines[key], color=colour, linestyle=style, label=f"{name} {lines[key]:.2f} m"
            )
    ax.set_ylabel("mean tiepoint error (m)")
    ax.set_title(title)
    ax.margins(y=0.2)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    return out_png


def _markdown(
    experiment: str,
    rows: list[dict[str, Any]],
    lines: dict[str, float | None],
    csv_path: Path,
    png: Path,
    runs_page: str,
) -> str:
    """The summary: best method version, the table, and where the CSV, the plot (paths: they
    are not served) and the MLflow runs (a link) are."""

    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    best = rows[0]
    head = (
        "| method | version | runs | pairs | mean (m) | mean (px) | p90 (m) | zero (m) "
        "| oracle (m) | / zero |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['method']} | {r['version']} | {r['runs']} | {r['pairs']} | {f(r['mean_m'])} | "
        f"{f(r['mean_px'])} | "
        f"{f(r['p90_m'])} | {f(r['zero_mean_m'])} | {f(r['oracle_affine_mean_m'])} | "
        f"{f(r['ratio_to_zero'])} |\n"
        for r in rows
    )
    pair_sets = {r["pairs"] for r in rows}
    caveat = (
        ""
        if len(pair_sets) == 1
        else "\n> Method versions were scored on different numbers of pairs; compare with care.\n"
    )
    return (
        f"## Method comparison: {experiment}\n\nBest: **{best['method']} {best['version']}**, mean "
        f"{f(best['mean_m'])} m over {best['pairs']} pair(s). Zero shift {f(lines['zero_mean_m'])} "
        "m, "
        f"oracle affine {f(lines['oracle_affine_mean_m'])} m.\n\n{head}{body}{caveat}\n"
        f"- CSV: `{csv_path}`\n- plot: `{png}`\n- MLflow: [runs of {experiment}]({runs_page})\n"
    )


@flow(name="compare", log_prints=True)
def compare(
    experiment: str,
    workdir: str | None = None,
    mlflow_uri: str | None = None,
    bench_report: str | None = None,
) -> dict[str, Any]:
    """Compare registration method versions over the MLflow runs of an event (or benchmark)
    experiment.

    Args:
        experiment: MLflow experiment: the event name of an activation, or a benchmark experiment.
        workdir: Working directory (default $COALIGN_WORKDIR or ./coalign-work); outputs go to
            <workdir>/compare.
        mlflow_uri: MLflow tracking URI (default: sqlite:///<workdir>/mlflow.db, or
            $COALIGN_MLFLOW_URI).
        bench_report: A `coalign bench` JSON report to log into the experiment first (once per
            report).
    """
    work = Workdir.of(workdir)
    uri = mlflow_uri or tracking_uri(work.root)
    if bench_report:
        log_benchmark(uri, bench_report, experiment)
    runs = _required_runs(uri, experiment)
    rows, lines = method_table(runs), reference_lines(runs)
    csv_path, png = _write_outputs(rows, lines, work.root / "compare", experiment)
    runs_page = runs_url(uri, client(uri).get_experiment_by_name(experiment).experiment_id)
    _report(experiment, rows, lines, csv_path, png, runs_page)
    return {
        "experiment": experiment,
        "mlflow_uri": uri,
        "mlflow_runs_url": runs_page,
        "rows": rows,
        **lines,
        "best": rows[0],
        "csv": str(csv_path),
        "plot": str(png),
    }


def _required_runs(uri: str, experiment: str) -> list[dict[str, Any]]:
    """:func:`scored_runs`, refusing an experiment without any."""
    runs = scored_runs(uri, experiment)
    if not runs:
        raise InputError(
            f"experiment {experiment!r} in {uri} has no finished, scored pair runs (metric "
            "mean_m); "
            "run an activation with tiepoints first"
        )
    return runs


def _write_outputs(
    rows: list[dict[str, Any]], lines: dict[str, float | None], out: Path, experiment: str
) -> tuple[Path, Path]:
    """The comparison's CSV and bar chart in ``out``, named after the experiment."""
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", experiment)
    csv_path = write_csv(rows, out / f"{stem}.csv")
    png = plot(rows, lines, out / f"{stem}.png", f"{experiment}: mean error per method version")
    return csv_path, png


def _report(
    experiment: str,
    rows: list[dict[str, Any]],
    lines: dict[str, float | None],
    csv_path: Path,
    png: Path,
    runs_page: str,
) -> None:
    """The table and markdown summary artifacts, and the best method version in the log."""
    key = key_slug(f"compare-{experiment}", "compare")
    create_table_artifact(
        table=rows, key=key, description=f"{experiment}: mean SN9 error per method version"
    )
    create_markdown_artifact(
        markdown=_markdown(experiment, rows, lines, csv_path, png, runs_page),
        key=f"{key}-summary"[:100],
        description=f"{experiment}: method comparison",
    )
    best = rows[0]
    get_run_logger().info(
        "%s: best %s %s, mean %.2f m over %d pair(s)",
        experiment,
        best["method"],
        best["version"],
        best["mean_m"],
        best["pairs"],
    )


def run_compare(
    experiment: str,
    workdir: str | None = None,
    mlflow_uri: str | None = None,
    bench_report: str | None = None,
) -> dict[str, Any]:
    """The ``compare`` flow as the CLI runs it."""
    return compare(
        experiment=experiment, workdir=workdir, mlflow_uri=mlflow_uri, bench_report=bench_report
    )
