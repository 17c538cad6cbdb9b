"""The activation's summary, its Prefect artifacts and its final state."""

from __future__ import annotations

import statistics
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from core.ids import key_slug
from flows.workdir import Workdir
from tracking.store import experiment_id, runs_url


def summarise(
    event: str,
    work: Workdir,
    uri: str,
    parent: str,
    n_scenes: int,
    n_pairs: int,
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """The activation's summary: counts, one row per registration, mean errors per method, and
    where the catalog and the MLflow runs are (paths and browser links).

    Args:
        event: The event name (the MLflow experiment).
        work: The working directory.
        uri: The MLflow tracking URI.
        parent: The activation's MLflow parent run id.
        n_scenes: Scenes discovered.
        n_pairs: Pairs formed.
        results: One record or failure per registration.
    """
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
                "item_url": (r.get("catalog_urls") or {}).get("item"),
                "mlflow_run_id": r.get("mlflow_run_id"),
                "mlflow_run_url": r.get("mlflow_run_url"),
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
        "catalog_url": work.catalog_url(work.catalog / "index.html"),
        "workdir": str(work.root),
        "mlflow_uri": uri,
        "mlflow_runs_url": runs_url(uri, experiment_id(uri, event)),
        "mlflow_parent_run": parent,
        "results": rows,
    }


def report(summary: dict[str, Any]) -> None:
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
    warning = f"> **{failure_line(summary)}**\n\n" if failures else ""
    create_markdown_artifact(
        key=f"activation-{key}",
        description=f"activation {summary['event']}",
        markdown=(
            f"## Activation {summary['event']}\n\n{warning}{summary['scenes']} scenes, "
            f"{summary['pairs']} pairs, "
            f"{summary['runs']} registrations, **{summary['failed']} failed**.\n\n"
            f"| method | mean tiepoint error (m) |\n|---|---|\n{scores}\n\n"
            + "".join(f"- failed: {r['pair']} {r['method']}: {r['error']}\n" for r in failures)
            + "\n"
            + links(summary)
        ),
    )


def links(summary: dict[str, Any]) -> str:
    """The markdown lines that open the catalog view and the MLflow runs table in a browser."""
    view = summary["catalog_url"]
    catalog = f"[catalog view]({view}) (`{summary['catalog']}`)" if view else summary["catalog"]
    return (
        f"- STAC catalog: {catalog}; `coalign open --workdir {summary['workdir']}` serves it\n"
        f"- MLflow: [runs of experiment {summary['event']}]({summary['mlflow_runs_url']}), "
        f"parent run `{summary['mlflow_parent_run']}` (store `{summary['mlflow_uri']}`)\n"
    )


def failure_line(summary: dict[str, Any]) -> str:
    """``"2 of 5 registrations failed"``; ``"all 3 registrations failed"`` when none succeeded."""
    failed, runs = summary["failed"], summary["runs"]
    if failed < runs:
        return f"{failed} of {runs} registrations failed"
    return f"all {runs} registrations failed" if runs > 1 else "the registration failed"


def end_state(summary: dict[str, Any]) -> dict[str, Any] | State:
    """The activation's final state: Failed when every registration failed, Completed with a
    warning when some did; the summary is its result either way."""
    if not summary["failed"]:
        return summary
    line = failure_line(summary)
    if summary["failed"] == summary["runs"]:
        return Failed(message=line, data=summary)
    get_run_logger().warning("%s: see the activation's artifacts", line)
    return Completed(message=line, data=summary)


def format_summary(summary: dict[str, Any], wall_s: float, command: str = "coalign demo") -> str:
    """The activation's summary as text: scores, failures, where the outputs are, how to open them.

    Args:
        summary: The activation's summary (:func:`summarise`).
        wall_s: Seconds the command took.
        command: The command named on the first line.
    """
    lines = [
        f"\n{command} — event {summary['event']}: {summary['pairs']} pair(s), "
        f"{summary['runs']} registration(s), {summary['failed']} failed, {wall_s:.0f} s",
        "",
        f"  {'method':<16}{'mean error':>12}{'zero shift':>12}{'tiepoints':>11}{'runtime':>10}",
    ]
    lines += [_result_line(r) for r in summary["results"]]
    if summary["failed"]:
        lines += ["", f"  {failure_line(summary)}"]
    work = summary["workdir"]
    lines += [
        "",
        f"  STAC catalog   {summary['catalog']}",
        f"  catalog view   {summary['catalog_url']}",
        f"  MLflow runs    {summary['mlflow_runs_url']}   (store {summary['mlflow_uri']})",
        f"  products       {work}/pairs/<pair>/<method>/<key>/",
        "",
        f"  open them      coalign open --workdir {work} --mlflow-ui   (catalog view, MLflow UI; "
        "prints the Prefect UI)",
    ]
    return "\n".join(lines)


def _result_line(r: dict[str, Any]) -> str:
    """One registration's row of the text summary."""
    if r["status"] != "ok":
        return f"  {r['method']:<16}  FAILED: {r['pair']}: {r['error']}"
    mean = f"{r['mean_m']:.2f} m" if r["mean_m"] is not None else "—"
    zero = f"{r['zero_m']:.2f} m" if r["zero_m"] is not None else "—"
    runtime = f"{r['runtime_s']:>9.1f}s" if r.get("runtime_s") is not None else f"{'—':>10}"
    return f"  {r['method']:<16}{mean:>12}{zero:>12}{r['tiepoints'] or '—':>11}{runtime}"
