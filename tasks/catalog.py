"""Prefect tasks over ``stac/``: discover scenes, pair them, fetch and validate assets, publish
products.

Network-facing tasks retry with backoff; a corrupt file or a missing asset is not retried (it would
fail the same way). Tasks pass paths and small records, never rasters.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pystac
from prefect import get_run_logger, task

from core.errors import InputError, ValidationFailed
from stac.aoi import BBox
from stac.fetch import fetch
from stac.pairing import Pair, PairingRules, pair_scenes
from stac.publish import PublicFolder, PublishedPair, build_item, publish_api, publish_static
from stac.readers import discover
from stac.scene import Scene
from stac.validation import scene_metadata, validate_scenes, validate_tiepoint_table
from tasks.caching import cached

NETWORK_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.5,
}


PERMANENT = (
    "checksum mismatch",
    "not found",
    "http 4",
    "not valid json",
    "malformed",
    "names no file",
    "refused",
)


def _transient(task, task_run, state) -> bool:
    """Retry network trouble; not bad input, a corrupt or missing file, or a refused request (they
    fail the same way again)."""
    exc = state.data
    if isinstance(exc, (InputError, ValidationFailed)):
        return False
    return not any(s in str(exc).lower() for s in PERMANENT)


@task(name="discover-scenes", **NETWORK_RETRIES, retry_condition_fn=_transient)
def discover_scenes(
    catalogs: list[str],
    stac_apis: list[str],
    bbox: BBox | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    collections: list[str] | None = None,
) -> list[Scene]:
    """Optical and SAR scenes of every static catalog and STAC API over the AOI and time window."""
    scenes = discover(catalogs, stac_apis, bbox, start, end, collections)
    get_run_logger().info(
        "found %d scenes (%d optical, %d SAR)",
        len(scenes),
        sum(s.sensor == "optical" for s in scenes),
        sum(s.sensor == "sar" for s in scenes),
    )
    return scenes


@task(name="pair-scenes")
def pair(scenes: list[Scene], rules: PairingRules, bbox: BBox | None) -> list[Pair]:
    """Optical/SAR pairs ranked by overlap and time gap (``stac.pairing``)."""
    pairs = pair_scenes(scenes, rules, bbox)
    get_run_logger().info("%d candidate pairs", len(pairs))
    return pairs


@task(name="fetch-asset", **NETWORK_RETRIES, retry_condition_fn=_transient, **cached("href"))
def fetch_asset(
    href: str, cache: str, checksum: str | None = None, source: str | None = None
) -> str:
    """A local path of the asset (downloaded once into the content-addressed cache,
    checksum-verified); ``source`` is the STAC item it came from (a remote item may not name a
    local file)."""
    return str(fetch(href, cache, checksum, source=source))


@task(name="validate-pair", **cached("optical", "sar", "tiepoints"))
def validate_pair(
    optical: str,
    sar: str,
    optical_id: str,
    sar_id: str,
    overlap_fraction: float,
    tiepoints: str | None,
) -> str:
    """The data-quality gate: raises ValidationFailed (this pair only); returns the report as
    markdown."""
    import rasterio

    report = validate_scenes(
        [scene_metadata(optical, "optical", optical_id), scene_metadata(sar, "sar", sar_id)],
        overlap_fraction,
    )
    report.raise_if_failed()
    text = report.to_markdown()
    if tiepoints:
        with rasterio.open(optical) as o, rasterio.open(sar) as s:
            tp_report = validate_tiepoint_table(tiepoints, (o.height, o.width), (s.height, s.width))
        tp_report.raise_if_failed()
        text += "\n\n" + tp_report.to_markdown()
    return text


@task(name="publish", **NETWORK_RETRIES, retry_condition_fn=_transient)
def publish(
    published: PublishedPair,
    catalog_root: str,
    stac_api: str | None = None,
    catalog_url: str | None = None,
) -> dict[str, str]:
    """The pair's STAC Item in the static catalog (and a STAC API when given, its assets linked
    by their address in the catalog served at ``catalog_url``); idempotent per Item id."""
    item_path = publish_static(build_item(published), catalog_root)
    out = {"item": str(item_path)}
    if stac_api:
        public = PublicFolder(Path(catalog_root), catalog_url) if catalog_url else None
        out["stac_api"] = publish_api(pystac.Item.from_file(item_path), stac_api, public=public)
    return out
