"""The markdown summary of one register-pair run, with links a browser opens from the Prefect UI."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def score_text(score: Mapping[str, float] | None) -> str:
    """The SN9 score in one line (markdown bold on the mean), or that there was none.

    Args:
        score: The scores of ``models.scoring`` (mean/median/p90 in m, mean in px, tiepoints,
            zero-shift mean); none = not scored.
    """
    if not score:
        return "not scored (no tiepoints)"
    return (
        f"mean **{score['mean_m']:.2f} m** ({score['mean_px']:.2f} px), median "
        f"{score['median_m']:.2f} m, p90 {score['p90_m']:.2f} m over {score['tiepoints']} "
        f"tiepoints; zero shift {score['zero_mean_m']:.2f} m"
    )


def file_link(path: str, url: str | None) -> str:
    """A markdown link to the http ``url`` of a file, else its path in backticks (a browser will
    not open a ``file://`` link from an http page).

    Args:
        path: The file.
        url: Its URL in the served catalog; none = not served.
    """
    return f"[{Path(path).name}]({url})" if url else f"`{path}`"


def qa_images(outputs: Mapping[str, str], urls: Mapping[str, str]) -> list[str]:
    """Markdown images of the QA pictures that have a URL, in output order.

    Args:
        outputs: The run's files by output key (QA pictures: ``qa_*`` PNGs).
        urls: Catalog URLs by output key.
    """
    return [
        f"![{key}]({urls[key]})"
        for key, path in outputs.items()
        if key.startswith("qa_") and path.lower().endswith(".png") and key in urls
    ]


def pair_markdown(record: Mapping[str, Any], checks: str) -> str:
    """The summary of a register-pair record: score, counts, links to the published Item and
    products (http URLs of the served catalog), the MLflow run, the QA pictures and the
    data-quality report.

    Args:
        record: The run's record (``flows.register_pair``: ``catalog_urls``, ``mlflow_run_url``,
            ``outputs``...).
        checks: The data-quality report (markdown).
    """
    urls: Mapping[str, str] = record.get("catalog_urls", {})
    run_url = record.get("mlflow_run_url")
    run_id = record["mlflow_run_id"]
    lines = [
        f"### {record['pair']} — {record['method']} {record['version']}",
        "",
        f"- score: {score_text(record['score'])}",
        f"- matches {record['matches']}, inliers {record['inliers']}; runtime "
        f"{record['runtime_s']:.1f} s on {record['device']}",
        f"- STAC item: {file_link(record['item'], urls.get('item'))}",
        f"- MLflow run: [{run_id}]({run_url})" if run_url else f"- MLflow run: `{run_id}`",
        *(f"- {k}: {file_link(v, urls.get(k))}" for k, v in record["outputs"].items()),
    ]
    images = qa_images(record["outputs"], urls)
    if images:
        lines += ["", "#### QA", "", "\n\n".join(images)]
    lines += ["", "#### Data-quality gate", "", checks, ""]
    return "\n".join(lines)
