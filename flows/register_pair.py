"""The ``register-pair`` flow: fetch → validate → register → warp → score → QA → publish → track,
for one pair × method."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from core import ids
from core.errors import RegistrationError
from core.files import atomic_path
from flows.descriptor_options import resolve_model_option
from flows.pair_report import pair_markdown, score_text
from flows.workdir import Workdir, catalog_base_url, product_key
from stac.publish import PublishedPair
from stac.scene import Scene
from tasks import Tasks, for_workdir
from tasks.tracking import track_activation_end, track_activation_start, track_pair
from tracking.runs import pair_label
from tracking.store import run_url, tracking_uri

MLFLOW_MAX_COG_BYTES = (
    64 * 2**20
)  # larger products are linked by their STAC href instead of copied into MLflow


@flow(name="register-pair", log_prints=True)
def register_pair(
    optical: dict[str, Any],
    sar: dict[str, Any],
    method: str = "local",
    settings: dict[str, str] | None = None,
    tiepoints: str | None = None,
    workdir: str | None = None,
    activation: str = "manual",
    overlap_fraction: float = 1.0,
    mlflow_uri: str | None = None,
    parent_run_id: str | None = None,
    stac_api: str | None = None,
    device: str = "auto",
    dem: str | None = None,
    dem_checksum: str | None = None,
) -> dict[str, Any]:
    """Align one optical scene to one SAR scene, score it, publish the products and track the run.

    Args:
        optical: The optical scene record (`stac.scene.Scene.to_record()`: id, href, datetime,
            footprint, ...).
        sar: The SAR scene record, same shape.
        method: Registration method (`coalign methods` lists them): local, global-affine, zero.
        settings: Method setting overrides, e.g. {"levels": "4,2,1", "radius_px": "12,6,3"}; a
            ``model`` (learned descriptor weights file or ``models:/`` URI) is resolved to a
            local file first, its registered version set as ``model_uri``.
        tiepoints: SN9 tiepoint CSV (sar_row,sar_col,optical_row,optical_col) to score the result;
            none = not scored.
        workdir: Working directory for products, cache, catalog and MLflow store (default
            $COALIGN_WORKDIR or ./coalign-work).
        activation: Event name: the STAC collection the products are published in. The products
            go to ``<workdir>/pairs/<pair>/<method>/<key>``, ``key`` being
            ``flows.workdir.product_key(activation, method, settings)``.
        overlap_fraction: Footprint overlap found by pairing (checked by the data-quality gate).
        mlflow_uri: MLflow tracking URI (default: sqlite:///<workdir>/mlflow.db, or
            $COALIGN_MLFLOW_URI).
        parent_run_id: MLflow run of the activation; none = a standalone parent run for this pair.
        stac_api: Also publish the STAC Item to this STAC API (Transaction extension).
        device: auto (CUDA when the worker has a GPU), cpu or cuda.
        dem: A DSM or DEM GeoTIFF/COG (path or URL) over the pair, fetched into the cache like
            the scenes and given to the registration as the pair's height model (its sources are
            recorded); none = no height.
        dem_checksum: The DEM's ``file:checksum`` (multihash hex), verified when given.
    """
    started, started_at = time.perf_counter(), time.time()
    o, s = Scene.from_record(optical), Scene.from_record(sar)
    pair_id = ids.pair_id(o.id, s.id)
    work = Workdir.of(workdir)
    uri = mlflow_uri or tracking_uri(work.root)
    settings = resolve_model_option(settings, uri, work.root) or None
    key = product_key(activation, method, settings)
    out, t = work.pair(pair_id, method, key), for_workdir(work.root)

    optical_path = t.fetch_asset(o.href, str(work.cache), o.checksum)
    sar_path = t.fetch_asset(s.href, str(work.cache), s.checksum)
    dem_path = t.fetch_asset(dem, str(work.cache), dem_checksum) if dem else None
    checks = t.validate_pair(optical_path, sar_path, o.id, s.id, overlap_fraction, tiepoints)
    geometry = _sar_geometry(s)
    made = _products(
        t, optical_path, sar_path, method, settings, device, tiepoints, out, dem_path, geometry
    )
    published = _publish(t, pair_id, o, s, made, activation, work, stac_api)
    span = (started_at, started_at + time.perf_counter() - started)
    label = pair_label(o.id, s.id)
    run = _track(pair_id, label, made, published, uri, parent_run_id, activation, span)
    record = _record(pair_id, activation, key, o, s, made, published, run, started)
    _report(record, made.registration["runtime_s"], checks, out)
    return record


@dataclass(frozen=True)
class _Products:
    """What one registration made: its record (the register task's), scores, files by name."""

    registration: dict[str, Any]
    scores: dict[str, float] | None
    outputs: dict[str, str]


@dataclass(frozen=True)
class _Published:
    """The published STAC Item and the http URLs of its files in the served catalog (by output
    key, and ``item``; files outside the catalog have none)."""

    item: str
    urls: dict[str, str]


def _products(
    t: Tasks,
    optical_path: str,
    sar_path: str,
    method: str,
    settings: dict[str, str] | None,
    device: str,
    tiepoints: str | None,
    out: Path,
    dsm: str | None = None,
    sar_geometry: dict[str, Any] | None = None,
) -> _Products:
    """Register (with the height model ``dsm`` and the SAR geometry record ``sar_geometry`` when
    given), warp, score (with tiepoints) and draw the QA pictures into ``out``."""
    reg = t.register(
        optical_path, sar_path, method, settings or {}, str(out), device, dsm, sar_geometry
    )
    aligned = t.warp(optical_path, reg["displacement"], str(out / "aligned_optical.tif"))
    residuals = str(out / "residuals.csv") if tiepoints else None
    scores = (
        t.score(
            reg["displacement"], optical_path, sar_path, tiepoints, residuals, reg["confidence"]
        )
        if tiepoints
        else None
    )
    pictures = t.qa(
        optical_path, sar_path, reg["displacement"], str(out / "qa"), aligned, residuals
    )
    outputs = {
        "displacement": reg["displacement"],
        "confidence": reg["confidence"],
        "aligned_optical": aligned,
        **pictures,
        **(
            {"residuals": residuals, "residual_points": str(out / "residuals.gpkg")}
            if residuals
            else {}
        ),
    }
    return _Products(reg, scores, outputs)


def _sar_geometry(sar: Scene) -> dict[str, Any] | None:
    """The SAR acquisition geometry the SAR scene's STAC item states (a record), or none; why it
    could not be read is logged."""
    geometry, why = sar.sar_geometry()
    if why:
        get_run_logger().warning(why)
    return geometry


def _publish(
    t: Tasks,
    pair_id: str,
    optical: Scene,
    sar: Scene,
    made: _Products,
    activation: str,
    work: Workdir,
    stac_api: str | None,
) -> _Published:
    """Publish the products as the pair's STAC Item in the working directory's catalog (and to
    ``stac_api``); the Item and the catalog URLs of its files."""
    reg = made.registration
    published = t.publish(
        PublishedPair(
            pair_id,
            optical,
            sar,
            {k: Path(v) for k, v in made.outputs.items()},
            reg["method"],
            reg["version"],
            activation,
            made.scores,
        ),
        str(work.catalog),
        stac_api,
        catalog_base_url(),
    )
    item = Path(published["item"])
    files = {"item": item, **_asset_files(item)}
    urls = {k: work.catalog_url(path) for k, path in files.items()}
    return _Published(str(item), {k: url for k, url in urls.items() if url})


def _asset_files(item: Path) -> dict[str, Path]:
    """The local files of a published Item's assets, by key (hrefs relative to the Item)."""
    assets = json.loads(item.read_text()).get("assets", {})
    return {
        key: (item.parent / asset["href"]).resolve()
        for key, asset in assets.items()
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", asset["href"])
    }


def _record(
    pair_id: str,
    activation: str,
    key: str,
    optical: Scene,
    sar: Scene,
    made: _Products,
    published: _Published,
    run: tuple[str, str],
    started: float,
) -> dict[str, Any]:
    """The run's record (``record.json``, the flow's result); runtime counted from ``started``."""
    reg = made.registration
    return {
        "pair": pair_id,
        "activation": activation,
        "key": key,
        "optical_id": optical.id,
        "sar_id": sar.id,
        "method": reg["method"],
        "version": reg["version"],
        "device": reg["device"],
        "runtime_s": round(time.perf_counter() - started, 2),
        "matches": reg["matches"],
        "inliers": reg["inliers"],
        "score": made.scores,
        "item": published.item,
        "outputs": made.outputs,
        "catalog_urls": published.urls,
        "mlflow_run_id": run[0],
        "mlflow_run_url": run[1],
        "warnings": reg["warnings"],
        "height": reg.get("height"),
        "sar_geometry": reg.get("sar_geometry"),
        "descriptor": reg.get("descriptor"),
        "verify": reg.get("verify"),
        "inputs": reg.get("inputs"),
    }


def _track(
    pair_id: str,
    label: str,
    made: _Products,
    published: _Published,
    uri: str,
    parent_run_id: str | None,
    activation: str,
    span: tuple[float, float],
) -> tuple[str, str]:
    """The MLflow child run of this pair × method over ``span`` (start and end, seconds since the
    epoch), under a standalone parent when run on its own: its id and the URL of its page."""
    reg = made.registration
    metrics = {
        "matches": reg["matches"],
        "inliers": reg["inliers"],
        "runtime_total_s": span[1] - span[0],
        **{f"runtime_{k.replace(' ', '_')}_s": v for k, v in reg["runtime_s"].items()},
        **{k: v for k, v in (made.scores or {}).items()},
    }
    parent = parent_run_id or track_activation_start(
        uri=uri,
        experiment=activation,
        activation=f"register-pair · {label}",
        params={"pair": pair_id, "standalone": True},
        tags={"coalign.pair": pair_id},
        started_at=span[0],
    )
    run_id = track_pair(
        uri=uri,
        parent_run_id=parent,
        label=label,
        method=reg["method"],
        method_version=reg["version"],
        config=reg["config"],
        params={
            **_geometry_params(reg.get("sar_geometry")),
            **({"descriptor": reg["descriptor"]} if reg.get("descriptor") else {}),
        },
        metrics=metrics,
        tags={
            "coalign.pair": pair_id,
            "coalign.activation": activation,
            "coalign.device": reg["device"],
            "coalign.stac_item": published.item,
        },
        artifacts=_mlflow_artifacts(made.outputs, published),
        started_at=span[0],
        ended_at=span[1],
    )
    if parent_run_id is None:
        summary = {k: v for k, v in metrics.items() if k in ("mean_m", "runtime_total_s")}
        track_activation_end(uri, parent, summary, ended_at=span[1])
    return run_id, run_url(uri, run_id)


def _geometry_params(geometry: dict[str, Any] | None) -> dict[str, Any]:
    """The SAR geometry as MLflow params ``sar_geometry.*`` (source ``unknown`` without one)."""
    return {"sar_geometry": geometry or {"source": "unknown"}}


def _mlflow_artifacts(outputs: dict[str, str], published: _Published) -> dict[str, str]:
    """The products to copy into MLflow; COGs over ``MLFLOW_MAX_COG_BYTES`` are given by the URL
    of their published copy instead (when it has one)."""
    artifacts = {}
    for key, path in outputs.items():
        big = Path(path).suffix == ".tif" and Path(path).stat().st_size > MLFLOW_MAX_COG_BYTES
        artifacts[key] = published.urls.get(key, path) if big else path
    return artifacts


def _report(
    record: dict[str, Any], stage_runtime: dict[str, float], checks: str, out: Path
) -> None:
    """Markdown summary, QA overlay image and metrics table artifacts, and ``record.json`` next
    to the products."""
    key = ids.key_slug(f"pair-{record['pair']}-{record['method']}", "pair", 88)
    title = f"{record['pair']} {record['method']}"
    create_markdown_artifact(key=key, description=title, markdown=pair_markdown(record, checks))
    overlay = record["catalog_urls"].get("qa_overlay")
    if overlay:
        create_image_artifact(
            image_url=overlay, key=f"{key}-qa-overlay", description=f"{title}: QA overlay"
        )
    s = record["score"]
    rows = [{"metric": k, "value": round(v, 4)} for k, v in (s or {}).items()]
    rows += [{"metric": f"runtime {k} (s)", "value": round(v, 2)} for k, v in stage_runtime.items()]
    create_table_artifact(rows, description=f"{title}: score and runtime")
    with atomic_path(out / "record.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1, default=str))
    get_run_logger().info("%s: %s", title, score_text(s).replace("*", ""))


def read_record(
    workdir: str | os.PathLike[str] | None, pair_id: str, method: str, key: str
) -> dict[str, Any]:
    """The ``record.json`` a finished register-pair run left next to its products.

    Args:
        workdir: The working directory of the run.
        pair_id: The pair (``<optical id>__<sar id>``).
        method: The registration method.
        key: :func:`flows.workdir.product_key` of the run's activation, method and settings: only
            that run's record is returned.
    """
    path = Workdir.of(workdir).pair(pair_id, method, key) / "record.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistrationError(f"no readable register-pair record at {path} ({exc})") from exc
