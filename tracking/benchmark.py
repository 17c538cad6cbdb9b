"""A ``coalign bench`` report logged to MLflow like an event: a parent run, one child run per
case × method, so :func:`flows.compare.compare` reads it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import InputError
from tracking.runs import finish_activation_run, log_pair_run, start_activation_run
from tracking.store import client, experiment_id


def read_report(report: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    """A ``coalign bench`` report from its JSON (or the path to it), checked for its runs and
    cases."""
    if not isinstance(report, Mapping):
        p = Path(report)
        if not p.is_file():
            raise InputError(
                f"benchmark report not found: {p} (write one with `coalign bench --out`)"
            )
        report = json.loads(p.read_text())
    if not isinstance(report.get("runs"), list) or not isinstance(report.get("cases"), list):
        raise InputError(
            "not a coalign bench report: expected 'cases' and 'runs' (see `coalign bench --out`)"
        )
    return report


def _digest(report: Mapping[str, Any]) -> str:
    """The report's identity: its creation time, seed and runs."""
    doc = [report.get("created"), report.get("seed"), report["runs"]]
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _run_metrics(run: Mapping[str, Any], case: Mapping[str, Any]) -> dict[str, Any]:
    """The child-run metrics of one case × method: the SN9 errors of the case's primary
    tiepoints (``field``, or ``real`` for the unwarped case), its times, and the case's
    ``zero_mean_*`` and ``oracle_affine_mean_*`` references."""
    primary = "field" if case.get("warped", True) else "real"
    refs = case.get("references", {}).get(primary, {})
    metrics: dict[str, Any] = {}
    if run.get("ok"):
        metrics.update(run["scores"][primary]["sn9"])
        metrics.update({f"runtime_{k}_s": v for k, v in run.get("runtime_s", {}).items()})
        metrics.update(
            matches=run.get("matches"),
            inliers=run.get("inliers"),
            wall_s=run.get("wall_s"),
            peak_rss_mb=run.get("peak_rss_mb"),
        )
    for ref in ("zero", "oracle_affine"):
        for unit in ("m", "px"):
            metrics[f"{ref}_mean_{unit}"] = refs.get(ref, {}).get(f"mean_{unit}")
    return metrics


def _log_run(uri: str, parent: str, run: Mapping[str, Any], case: Mapping[str, Any]) -> None:
    """One case × method as a child run (FAILED when the run failed, with its error)."""
    log_pair_run(
        uri=uri,
        parent_run_id=parent,
        label=str(run.get("case")),
        method=str(run.get("method")),
        method_version=str(run.get("version", "unknown")),
        config=run.get("settings", {}),
        metrics=_run_metrics(run, case),
        tags={
            "coalign.pair": str(run.get("case")),
            "coalign.case_kind": str(run.get("kind", "")),
            **({"coalign.error": str(run.get("error", ""))[:2000]} if not run.get("ok") else {}),
        },
        artifacts={},
        status="FINISHED" if run.get("ok") else "FAILED",
    )


def log_benchmark(
    uri: str, report: Mapping[str, Any] | str | os.PathLike[str], experiment: str = "benchmark"
) -> str:
    """Log a ``coalign bench`` report (its JSON, or the path to it) as a parent run with one child
    run per case × method; the parent run id.

    Children carry the SN9 errors of the case's primary tiepoints and its zero-shift and
    oracle-affine references; failed runs are FAILED children. Logging the same report twice
    returns the first parent.
    """
    report = read_report(report)
    digest = _digest(report)
    eid = experiment_id(uri, experiment)
    done = client(uri).search_runs(
        [eid], filter_string=f"tags.`coalign.bench_id` = '{digest}'", max_results=1
    )
    if done:
        return done[0].info.run_id
    parent = start_activation_run(
        uri=uri,
        experiment=experiment,
        activation=f"bench {report.get('created', digest)}",
        params={
            "methods": report.get("methods", []),
            "seed": report.get("seed"),
            "data": report.get("data"),
            "settings": report.get("settings", {}),
        },
        tags={"coalign.run_kind": "benchmark", "coalign.bench_id": digest},
    )
    cases = {c["name"]: c for c in report["cases"]}
    for run in report["runs"]:
        _log_run(uri, parent, run, cases.get(run.get("case"), {}))
    runs = report["runs"]
    finish_activation_run(
        uri, parent, {"runs": len(runs), "failed": sum(not r.get("ok") for r in runs)}
    )
    return parent
