"""The scene-metadata suite: CRS, GSD, bands, dtype, no-data, footprint and overlap per scene."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stac.validation.report import ValidationReport, gx, run_suite


@dataclass(frozen=True)
class SensorLimits:
    """What a usable image of one sensor looks like."""

    gsd_m: tuple[float, float]
    min_bands: int
    max_bands: int | None
    dtypes: tuple[str, ...]

    def band_text(self) -> str:
        """The accepted band count: ``3+``, ``1`` or ``1–4``."""
        if self.max_bands is None:
            return f"{self.min_bands}+"
        if self.max_bands == self.min_bands:
            return f"{self.min_bands}"
        return f"{self.min_bands}–{self.max_bands}"


@dataclass(frozen=True)
class SceneRules:
    """Scene-metadata thresholds (defaults: Maxar ARD optical, Umbra GEC SAR)."""

    optical: SensorLimits = SensorLimits((0.2, 2.0), 3, None, ("uint8", "uint16"))
    sar: SensorLimits = SensorLimits((0.1, 5.0), 1, 1, ("uint8", "uint16", "float32", "float64"))
    max_nodata_fraction: float = 0.9
    min_overlap_fraction: float = 0.01
    # an item footprint must lie at least this much over the raster it describes
    min_footprint_agreement: float = 0.5

    def limits(self, sensor: str) -> SensorLimits:
        return self.optical if sensor == "optical" else self.sar


@dataclass(frozen=True)
class SceneFacts:
    """What the gate checks about one scene, read from its raster (header + decimated pixels)."""

    scene: str
    sensor: str
    path: str
    crs: str | None
    crs_kind: str  # projected | geographic (convertible) | missing | unusable
    band_count: int
    dtype: str
    width: int
    height: int
    gsd_m: float | None
    nodata_fraction: float
    footprint: str  # "valid" or what is wrong with it
    footprint_agreement: float | None  # share of the item footprint over the raster
    raster_footprint: Any = field(default=None, compare=False)  # shapely, WGS84

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raster_footprint")
        return d


def _crs_kind(crs: Any) -> str:
    if crs is None:
        return "missing"
    if crs.is_projected:
        return "projected"
    if crs.is_geographic:
        return "geographic"
    return "unusable"


def _footprint_status(footprint: Any) -> str:
    from shapely.validation import explain_validity

    if footprint is None:
        return "missing"
    if footprint.is_empty:
        return "empty"
    if not footprint.is_valid:
        return f"invalid: {explain_validity(footprint)}"
    minx, miny, maxx, maxy = footprint.bounds
    if not (-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0):
        return f"outside lon/lat range: bounds {tuple(round(v, 3) for v in footprint.bounds)}"
    if footprint.area == 0:
        return "zero area"
    return "valid"


def _ground_facts(ds: Any, crs: Any) -> tuple[str, float | None, Any]:
    """CRS kind, GSD in metres (square root of the centre pixel's area in the local UTM zone)
    and WGS84 footprint of an open raster; ``unusable`` when pyproj cannot transform its CRS."""
    from pyproj import CRS, Transformer

    from core.grid import Grid, utm_crs_for

    kind = _crs_kind(crs)
    if kind not in ("projected", "geographic"):
        return kind, None, None
    footprint = None
    try:
        grid = Grid(crs, ds.transform, ds.width, ds.height)
        footprint = grid.footprint_in(CRS.from_epsg(4326), densify=4)
        c = footprint.centroid
        local = utm_crs_for(c.x, c.y)
        cols, rows = (
            np.array([ds.width / 2, ds.width / 2 + 1, ds.width / 2]),
            np.array([ds.height / 2] * 2 + [ds.height / 2 + 1]),
        )
        x, y = Transformer.from_crs(crs, local, always_xy=True).transform(
            *grid.pixel_to_map(cols, rows)
        )
        # pixel area in metres (rotation and geographic CRSs included), its square root
        gsd = math.sqrt(abs((x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])))
        if not math.isfinite(gsd):
            return "unusable", None, footprint
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot transform is "unusable", reported below
        return "unusable", None, footprint
    return kind, gsd, footprint


def scene_metadata(
    path: str | os.PathLike[str],
    sensor: str,
    scene_id: str,
    footprint: Any = None,
    max_side: int = 256,
) -> SceneFacts:
    """The :class:`SceneFacts` of a raster.

    Pixels come from a read decimated to at most ``max_side`` pixels a side (GDAL uses the
    overviews), so the cost does not grow with the image.

    Args:
        path: The raster.
        sensor: ``optical`` or ``sar``.
        scene_id: The scene's id, for the report.
        footprint: The item's WGS84 footprint, checked for validity and against the raster.
        max_side: The largest side of the decimated read.
    """
    import rasterio
    from pyproj import CRS
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (max(1, round(ds.height / f)), max(1, round(ds.width / f)))
        data = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        invalid = ds.dataset_mask(out_shape=shape) == 0
        if np.issubdtype(data.dtype, np.floating):
            invalid |= ~np.isfinite(data)
        crs = CRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None
        kind, gsd, raster_footprint = _ground_facts(ds, crs)
        facts = dict(
            scene=scene_id,
            sensor=sensor,
            path=str(path),
            crs=crs.to_string() if crs else None,
            crs_kind=kind,
            band_count=ds.count,
            dtype=ds.dtypes[0],
            width=ds.width,
            height=ds.height,
            gsd_m=gsd,
            nodata_fraction=float(invalid.mean()),
        )
    agreement = None
    status = _footprint_status(footprint if footprint is not None else raster_footprint)
    if footprint is not None and raster_footprint is not None and status == "valid":
        agreement = float(footprint.intersection(raster_footprint).area / footprint.area)
    return SceneFacts(
        **facts, footprint=status, footprint_agreement=agreement, raster_footprint=raster_footprint
    )


def _overlap(a: Any, b: Any) -> float | None:
    from shapely import make_valid

    from stac.pairing import local_metric_crs

    if a is None or b is None:
        return None
    import geopandas as gpd

    a, b = make_valid(a), make_valid(b)
    areas = (
        gpd.GeoSeries([a.intersection(b), a, b], crs="EPSG:4326")
        .to_crs(local_metric_crs(a.union(b)))
        .area
    )
    return float(areas[0] / min(areas[1], areas[2])) if min(areas[1], areas[2]) > 0 else 0.0


def _scene_expectations(rules: SceneRules) -> list[Any]:
    """The expectations every scene meets, whatever its sensor."""
    E = gx().expectations
    agreement = rules.min_footprint_agreement
    return [
        E.ExpectColumnValuesToBeInSet(
            column="sensor", value_set=["optical", "sar"], description="sensor is optical or sar"
        ),
        E.ExpectColumnValuesToBeInSet(
            column="crs_kind",
            value_set=["projected", "geographic"],
            description="CRS projected, or geographic and convertible to UTM",
        ),
        E.ExpectColumnValuesToNotBeNull(
            column="gsd_m", description="GSD measurable (georeferenced grid)"
        ),
        E.ExpectColumnValuesToBeBetween(
            column="nodata_fraction",
            min_value=0.0,
            max_value=rules.max_nodata_fraction,
            description=f"no-data fraction at most {rules.max_nodata_fraction:g}",
        ),
        E.ExpectColumnValuesToBeInSet(
            column="footprint",
            value_set=["valid"],
            description="footprint is a valid lon/lat polygon",
        ),
        E.ExpectColumnValuesToBeBetween(
            column="footprint_agreement",
            min_value=agreement,
            max_value=1.0 + 1e-9,
            description=f"item footprint lies over the raster (share at least {agreement:g})",
        ),
    ]


def _sensor_expectations(sensor: str, lim: SensorLimits) -> list[Any]:
    """GSD, band count and dtype of the scenes of one sensor."""
    from great_expectations.expectations.row_conditions import Column

    E, only = gx().expectations, Column("sensor") == sensor
    return [
        E.ExpectColumnValuesToBeBetween(
            column="gsd_m",
            min_value=lim.gsd_m[0],
            max_value=lim.gsd_m[1],
            row_condition=only,
            description=f"{sensor} GSD within {lim.gsd_m[0]:g}–{lim.gsd_m[1]:g} m",
        ),
        E.ExpectColumnValuesToBeBetween(
            column="band_count",
            min_value=lim.min_bands,
            max_value=lim.max_bands,
            row_condition=only,
            description=f"{sensor} band count {lim.band_text()}",
        ),
        E.ExpectColumnValuesToBeInSet(
            column="dtype",
            value_set=list(lim.dtypes),
            row_condition=only,
            description=f"{sensor} dtype one of {', '.join(lim.dtypes)}",
        ),
    ]


def validate_scenes(
    rows: Sequence[SceneFacts | dict[str, Any]],
    overlap_fraction: float | None = None,
    rules: SceneRules = SceneRules(),
) -> ValidationReport:
    """The scene-metadata suite over the scenes of one pair.

    Args:
        rows: The facts of each scene (:func:`scene_metadata`).
        overlap_fraction: The optical/SAR overlap from pairing; when None it is measured between
            the raster footprints of the optical and the SAR scene.
        rules: The thresholds.
    """
    facts = [r if isinstance(r, SceneFacts) else SceneFacts(**r) for r in rows]
    df = pd.DataFrame([f.row() for f in facts])
    optical = [f for f in facts if f.sensor == "optical"]
    sar = [f for f in facts if f.sensor == "sar"]
    if overlap_fraction is None and len(optical) == 1 and len(sar) == 1:
        overlap_fraction = _overlap(optical[0].raster_footprint, sar[0].raster_footprint)
    exps = _scene_expectations(rules)
    for sensor in ("optical", "sar"):
        exps += _sensor_expectations(sensor, rules.limits(sensor))
    subject = "scenes " + ", ".join(f.scene for f in facts)
    if overlap_fraction is not None:
        df["overlap_fraction"] = float(overlap_fraction)
        exps.append(
            gx().expectations.ExpectColumnValuesToBeBetween(
                column="overlap_fraction",
                min_value=rules.min_overlap_fraction,
                max_value=1.0 + 1e-9,
                description="optical and SAR overlap (fraction at least "
                f"{rules.min_overlap_fraction:g})",
            )
        )
    return run_suite(df, exps, subject, "scene")
