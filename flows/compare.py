"""The ``compare`` flow: MLflow comparison of registration method versions over an event's runs."""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from models.cog import atomic_path
from tasks.tracking import tracking_uri


def method_table(uri: str, experiment: str) -> list[dict[str, Any]]:
    """Mean scores per method version over the experiment's scored child runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        from models.errors import InputError

        raise InputError(f"no MLflow experiment {experiment!r} in {uri}")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for run in client.search_runs([exp.experiment_id], max_results=5000):
        tags, metrics = run.data.tags, run.data.metrics
        if "coalign.method" in tags and "mean_m" in metrics:
            groups[(tags["coalign.method"], tags.get("coalign.method_version", "?"))].append(metrics)
    rows = []
    for (method, version), ms in sorted(groups.items()):
        def mean(key: str) -> float | None:
            vals = [m[key] for m in ms if key in m and math.isfinite(m[key])]
            return round(sum(vals) / len(vals), 4) if vals else None

        rows.append({"method": method, "version": version, "runs": len(ms), "mean_m": mean("mean_m"), "mean_px": mean("mean_px"),
                     "p90_m": mean("p90_m"), "zero_mean_m": mean("zero_mean_m"), "oracle_affine_mean_m": mean("oracle_affine_mean_m"),
                     "runtime_s": mean("runtime_register_total_s")})
    return rows


def plot(rows: list[dict[str, Any]], out_png: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 4))
    labels = [f"{r['method']}\n{r['version']}" for r in rows]
    ax.bar(labels, [r["mean_m"] or 0 for r in rows], color="#4477aa")
    for key, style, name in (("zero_mean_m", "--", "zero shift"), ("oracle_affine_mean_m", ":", "oracle affine")):
        vals = [r[key] for r in rows if r[key] is not None]
        if vals:
            ax.axhline(sum(vals) / len(vals), color="k", linestyle=style, label=name)
    ax.set_ylabel("mean tiepoint error (m)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out_png


@flow(name="compare", log_prints=True)
def compare(experiment: str, workdir: str = "coalign-work") -> dict[str, Any]:
    """Compare method versions over the MLflow runs of an event (or a benchmark) experiment.

    Writes ``<workdir>/compare/<experiment>.csv`` and ``.png`` and a markdown and a table artifact.
    """
    work = Path(workdir)
    rows = method_table(tracking_uri(work), experiment)
    out = work / "compare"
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{experiment}.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["method"])
        w.writeheader()
        w.writerows(rows)
    png = plot(rows, out / f"{experiment}.png", f"{experiment}: mean error per method version")
    create_table_artifact(key="compare-methods", table=rows, description=f"{experiment}: method versions")
    best = min((r for r in rows if r["mean_m"] is not None), key=lambda r: r["mean_m"], default=None)
    create_markdown_artifact(
        key="compare-summary",
        markdown=f"## {experiment}\n\n{len(rows)} method versions compared. Best: "
        + (f"**{best['method']} {best['version']}**, mean {best['mean_m']} m over {best['runs']} runs" if best else "none scored")
        + f"\n\nCSV `{csv_path}`, plot `{png}`",
    )
    return {"rows": rows, "csv": str(csv_path), "plot": str(png), "best": best}


def run_compare(experiment: str, workdir: str | os.PathLike[str]) -> dict[str, Any]:
    return compare(experiment=experiment, workdir=str(workdir))
