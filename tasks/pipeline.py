"""Prefect tasks over ``stac/`` and ``models/``: thin, retried where the network is involved,
cached on inputs + task source with persisted results so reruns skip finished work.

Tasks pass paths and small records, never rasters.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE

from stac.fetch import fetch
from stac.pairing import Pair, PairingRules, pair_scenes
from stac.publish import PublishedPair, build_item, publish_api, publish_static
from stac.readers import discover
from stac.scene import Scene
from stac.validation import scene_metadata, validate_scenes, validate_tiepoint_table

CACHED = dict(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)


@task(name="discover-scenes", retries=3, retry_delay_seconds=[2, 5, 10])
def discover_scenes(
    catalogs: list[str], stac_apis: list[str], bbox: tuple[float, float, float, float] | None,
    start: dt.datetime | None, end: dt.datetime | None, collections: list[str] | None = None,
) -> list[Scene]:
    scenes = discover(catalogs, stac_apis, bbox, start, end, collections)
    get_run_logger().info("found %d scenes (%d optical, %d SAR)", len(scenes),
                          sum(s.sensor == "optical" for s in scenes), sum(s.sensor == "sar" for s in scenes))
    return scenes


@task(name="pair-scenes")
def pair(scenes: list[Scene], rules: PairingRules, bbox: tuple[float, float, float, float] | None) -> list[Pair]:
    pairs = pair_scenes(scenes, rules, bbox)
    get_run_logger().info("%d candidate pairs", len(pairs))
    return pairs


def _transient(task, task_run, state) -> bool:
    """Retry network trouble, not a corrupt file (a checksum mismatch stays one)."""
    return "checksum mismatch" not in (state.message or "") and "not found" not in (state.message or "")


@task(name="fetch-asset", retries=3, retry_delay_seconds=[2, 5, 10], retry_condition_fn=_transient, **CACHED)
def fetch_asset(href: str, cache: str, checksum: str | None = None) -> str:
    return str(fetch(href, cache, checksum))


@task(name="validate-pair")
def validate_pair(optical: str, sar: str, optical_id: str, sar_id: str, overlap_fraction: float, tiepoints: str | None) -> str:
    """Raises ValidationFailed (this pair only) with a readable report; returns the report as markdown."""
    import rasterio

    report = validate_scenes([scene_metadata(optical, "optical", optical_id), scene_metadata(sar, "sar", sar_id)], overlap_fraction)
    report.raise_if_failed()
    text = report.to_markdown()
    if tiepoints:
        with rasterio.open(optical) as o, rasterio.open(sar) as s:
            tp_report = validate_tiepoint_table(tiepoints, (o.height, o.width), (s.height, s.width))
        tp_report.raise_if_failed()
        text += "\n\n" + tp_report.to_markdown()
    return text


class _ProgressArtifact:
    """Feeds the models progress callback ``(stage, done, total)`` into a Prefect progress artifact."""

    def __init__(self, key: str) -> None:
        self.id = create_progress_artifact(0.0, key=key, description="registration progress")
        self.last = -1.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        pct = round(100.0 * done / max(total, 1), 0)
        if pct != self.last:
            self.last = pct
            update_progress_artifact(self.id, pct, description=f"{stage}: {done}/{total}")


@task(name="register", **CACHED)
def register_pair(
    optical: str, sar: str, method: str, settings: dict[str, str], out_dir: str, device: str = "auto", progress_key: str | None = None,
) -> dict[str, Any]:
    """Register, write the displacement and confidence COGs; a small summary record."""
    from models.methods.base import RegistrationInput
    from models.registration import register, write_displacement

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pair = RegistrationInput.open(optical, sar, device)
    progress = _ProgressArtifact(progress_key) if progress_key else None
    result = register(pair, method, settings, progress or (lambda *a: None))
    for w in result.warnings:
        get_run_logger().warning(w)
    with result.timed("write"):
        products = write_displacement(result.field, pair.optical.grid, out / "displacement.tif", out / "confidence.tif")
    return {
        "method": result.method, "version": result.version, "config": result.config, "device": pair.device,
        "matches": result.matches, "inliers": result.inliers, "runtime_s": result.runtime_s,
        "warnings": result.warnings, "displacement": str(products.displacement), "confidence": str(products.confidence),
    }


@task(name="warp-optical", **CACHED)
def warp(optical: str, displacement: str, out: str) -> str:
    from models.warp import warp_optical

    return str(warp_optical(optical, displacement, out))


@task(name="score")
def score(displacement: str, optical: str, sar: str, tiepoints: str, residuals: str) -> dict[str, float]:
    from models.raster import open_raster
    from models.scoring import read_tiepoints, score_displacement

    tp = read_tiepoints(tiepoints)
    o, s = open_raster(optical, "optical"), open_raster(sar, "sar")
    result = score_displacement(displacement, tp, o.grid, s.grid)
    result.write_residuals(residuals, tp)
    summary = result.summary()
    zero = score_displacement_zero(tp, o.grid, s.grid)
    summary.update({"zero_mean_px": zero["mean_px"], "zero_mean_m": zero["mean_m"]})
    return summary


def score_displacement_zero(tp, optical_grid, sar_grid) -> dict[str, float]:
    import numpy as np

    from models.scoring import score_shifts

    return score_shifts(np.zeros(len(tp)), np.zeros(len(tp)), tp, optical_grid, sar_grid).summary()


@task(name="qa-pictures")
def qa(optical: str, sar: str, displacement: str, out_dir: str, aligned: str | None, residuals: str | None) -> dict[str, str]:
    from models.qa import qa_pictures

    return {k: str(v) for k, v in qa_pictures(optical, sar, displacement, out_dir, aligned, residuals).items()}


@task(name="publish", retries=2, retry_delay_seconds=[2, 5])
def publish(published: PublishedPair, catalog_root: str, stac_api: str | None = None) -> dict[str, str]:
    item = build_item(published)
    out = {"item": str(publish_static(item, catalog_root))}
    if stac_api:
        out["stac_api"] = publish_api(item, stac_api)
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, indent=1)
