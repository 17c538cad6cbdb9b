"""The ``register-pair`` flow: validate → register → warp → score → QA → track → publish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from stac.publish import PublishedPair
from stac.scene import Scene
from tasks.pipeline import fetch_asset, publish, qa, register_pair, score, validate_pair, warp
from tasks.tracking import track_pair


@flow(name="register-pair", log_prints=True)
def register_pair_flow(
    optical: dict[str, Any],
    sar: dict[str, Any],
    method: str = "local",
    settings: dict[str, str] | None = None,
    workdir: str = "coalign-work",
    activation: str = "manual",
    tiepoints: str | None = None,
    overlap_fraction: float = 1.0,
    mlflow_uri: str | None = None,
    parent_run_id: str | None = None,
    stac_api: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Align one optical scene to one SAR scene and publish the products.

    optical / sar: scene records (``stac.scene.Scene.to_record()``); method and settings: a
    registration method and overrides (see ``coalign methods``); tiepoints: SN9 CSV for scoring.
    """
    t0 = time.perf_counter()
    o, s = Scene.from_record(optical), Scene.from_record(sar)
    pair_id = f"{o.id}__{s.id}".replace("/", "-")
    work = Path(workdir)
    out = work / "pairs" / pair_id / method
    optical_path = fetch_asset(o.href, str(work / "cache"), o.checksum)
    sar_path = fetch_asset(s.href, str(work / "cache"), s.checksum)
    validation = validate_pair(optical_path, sar_path, o.id, s.id, overlap_fraction, tiepoints)
    reg = register_pair(optical_path, sar_path, method, settings or {}, str(out), device, progress_key=f"progress-{method}"[:60].lower())
    aligned = warp(optical_path, reg["displacement"], str(out / "aligned_optical.tif"))
    metrics: dict[str, float] = {"matches": reg["matches"], "inliers": reg["inliers"],
                                 **{f"runtime_{k}_s": v for k, v in reg["runtime_s"].items()}}
    residuals = None
    scores = None
    if tiepoints:
        residuals = str(out / "residuals.csv")
        scores = score(reg["displacement"], optical_path, sar_path, tiepoints, residuals)
        metrics.update({k: v for k, v in scores.items() if k != "tiepoints"})
    pictures = qa(optical_path, sar_path, reg["displacement"], str(out / "qa"), aligned, residuals)
    outputs = {"displacement": reg["displacement"], "confidence": reg["confidence"], "aligned_optical": aligned,
               **pictures, **({"residuals": residuals} if residuals else {})}
    published = publish(
        PublishedPair(pair_id, o, s, {k: Path(v) for k, v in outputs.items()}, reg["method"], reg["version"], activation,
                      {k: v for k, v in (scores or {}).items() if k.startswith(("mean", "median", "p90"))} or None),
        str(work / "catalog"), stac_api,
    )
    run_id = None
    if mlflow_uri and parent_run_id:
        run_id = track_pair(uri=mlflow_uri, parent_run_id=parent_run_id, run_name=f"{pair_id} {method}", method=reg["method"],
                            method_version=reg["version"], config=reg["config"], metrics=metrics,
                            tags={"coalign.pair": pair_id, "coalign.stac_item": published["item"], "coalign.device": reg["device"]},
                            artifacts=outputs)
    runtime = time.perf_counter() - t0
    score_line = f"mean {scores['mean_m']:.2f} m ({scores['mean_px']:.2f} px), zero shift {scores['zero_mean_m']:.2f} m" if scores else "no tiepoints"
    create_markdown_artifact(
        key=f"pair-{method}"[:60].lower(),
        markdown=(f"### {pair_id} — {reg['method']} {reg['version']}\n\n- score: {score_line}\n- matches {reg['matches']}, "
                  f"inliers {reg['inliers']}, runtime {runtime:.1f} s on {reg['device']}\n- STAC item: `{published['item']}`\n"
                  f"- displacement: `{reg['displacement']}`\n- aligned optical: `{aligned}`\n- QA: "
                  + ", ".join(f"`{p}`" for p in pictures.values()) + f"\n\n{validation}"),
        description=f"{pair_id} {method}",
    )
    get_run_logger().info("%s %s: %s", pair_id, method, score_line)
    return {"pair": pair_id, "method": reg["method"], "version": reg["version"], "runtime_s": round(runtime, 2),
            "matches": reg["matches"], "inliers": reg["inliers"], "score": scores, "item": published["item"],
            "outputs": outputs, "mlflow_run_id": run_id}
