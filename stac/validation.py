"""The data-quality gate in front of registration (Great Expectations 1.x, ephemeral context).

Two expectation suites, each run on a pandas DataFrame batch:

- scene metadata, one row per scene (:func:`scene_metadata` reads the raster header and a
  decimated read of the pixels, never the whole image): CRS projected or convertible to UTM,
  GSD within the sensor's range, dtype and band count per sensor, no-data fraction, footprint
  validity (and agreement of the item footprint with the raster), optical/SAR overlap;
- tiepoint tables (SN9 CSV ``sar_row,sar_col,optical_row,optical_col``): header, numeric and
  complete, within each image, no duplicate rows or optical points, plausible offsets (metres
  when the image grids are known, else pixels).

A failed expectation becomes a :class:`Failure` naming the check, the scene (or CSV line) and
the observed value; :meth:`ValidationReport.raise_if_failed` raises
:class:`core.errors.ValidationFailed` with that text, which stops that pair only.
Great Expectations is imported lazily with analytics off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationFailed

TIEPOINT_COLUMNS = ["sar_row", "sar_col", "optical_row", "optical_col"]
NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
]
_MAX_ROWS_REPORTED = 10


@dataclass(frozen=True)
class SensorLimits:
    """What a usable image of one sensor looks like."""

    gsd_m: tuple[float, float]
    min_bands: int
    max_bands: int | None
    dtypes: tuple[str, ...]


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
class TiepointRules:
    """Tiepoint-table thresholds. SN9 offsets average 26–32 m; hundreds of metres are a wrong
    pair."""

    max_offset_m: float = 250.0
    max_offset_px: float = 2000.0
    min_rows: int = 3


@dataclass(frozen=True)
class Failure:
    """One failed expectation for one scene (or CSV line)."""

    subject: str
    check: str
    expectation: str
    column: str
    observed: Any

    def line(self) -> str:
        where = f" ({self.column})" if self.column else ""
        return (
            f"{self.subject}: {self.check}{where} — observed {self.observed!r} [{self.expectation}]"
        )


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one suite: ``ok`` when every expectation held."""

    subject: str
    failures: tuple[Failure, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_markdown(self) -> str:
        if self.ok:
            return f"**{self.subject}**: all {self.checked} expectations met"
        rows = "\n".join(
            f"| {f.subject} | {f.check} | {f.column or '—'} | {_md(f.observed)} | `{f.expectation}` |"
            for f in self.failures
        )
        return (
            f"**{self.subject}**: {len(self.failures)} failure(s) in {self.checked} expectations\n\n"
            "| scene | check | field | observed | expectation |\n|---|---|---|---|---|\n" + rows
        )

    def raise_if_failed(self) -> None:
        require_valid(self)

    def __add__(self, other: ValidationReport) -> ValidationReport:
        subject = (
            self.subject if other.subject == self.subject else f"{self.subject}; {other.subject}"
        )
        return ValidationReport(
            subject, self.failures + other.failures, self.checked + other.checked
        )


def require_valid(report: ValidationReport) -> ValidationReport:
    """``report`` when it passed; else raise :class:`ValidationFailed` with every failure spelled
    out."""
    if not report.ok:
        lines = "\n  ".join(f.line() for f in report.failures)
        raise ValidationFailed(
            f"{report.subject} failed validation ({len(report.failures)} failure(s)):\n  {lines}"
        )
    return report


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")[:120]


def _gx() -> Any:
    # analytics off before the first import: the gate must never phone home
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    return gx


def _run(
    df: pd.DataFrame, expectations: list[Any], subject: str, id_column: str
) -> ValidationReport:
    """Validate ``df`` against ``expectations`` in an ephemeral context; one row per failure."""
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
    except (ImportError, AttributeError):  # cosmetic only
        pass
    batch = (
        context.data_sources.add_pandas("coalign")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )
    suite = gx.ExpectationSuite(name="coalign-gate", expectations=expectations)
    result = batch.validate(suite, result_format="COMPLETE")
    failures: list[Failure] = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        column = str(
            config.kwargs.get("column") or ", ".join(config.kwargs.get("column_list") or [])
        )
        check = config.description or config.type
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            failures.append(
                Failure(
                    subject, check, config.type, column, r.exception_info.get("exception_message")
                )
            )
            continue
        index = res.get("unexpected_index_list")
        if index:
            values = res.get("unexpected_list") or [None] * len(index)
            for i, value in list(zip(index, values, strict=False))[:_MAX_ROWS_REPORTED]:
                row = i.get("index", i) if isinstance(i, dict) else i
                who = (
                    str(df.loc[row, id_column]) if id_column in df and row in df.index else subject
                )
                failures.append(Failure(who, check, config.type, column, _plain(value)))
            if len(index) > _MAX_ROWS_REPORTED:
                failures.append(
                    Failure(
                        subject,
                        check,
                        config.type,
                        column,
                        f"… and {len(index) - _MAX_ROWS_REPORTED} more rows",
                    )
                )
        else:
            failures.append(
                Failure(subject, check, config.type, column, _plain(res.get("observed_value")))
            )
    return ValidationReport(subject, tuple(failures), len(expectations))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ----------------------------------------------------------------------------- scene metadata


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


def scene_metadata(
    path: str | os.PathLike[str],
    sensor: str,
    scene_id: str,
    footprint: Any = None,
    max_side: int = 256,
) -> SceneFacts:
    """The :class:`SceneFacts` of a raster. Pixels come from a read decimated to at most
    ``max_side`` pixels a side (GDAL uses the overviews), so the cost does not grow with the image.
    ``footprint`` is the item's WGS84 footprint, checked for validity and against the raster."""
    import rasterio
    from pyproj import CRS, Transformer
    from rasterio.enums import Resampling

    from core.grid import Grid, utm_crs_for

    with rasterio.open(path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (max(1, round(ds.height / f)), max(1, round(ds.width / f)))
        data = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        invalid = ds.dataset_mask(out_shape=shape) == 0
        if np.issubdtype(data.dtype, np.floating):
            invalid |= ~np.isfinite(data)
        crs = CRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None
        kind = _crs_kind(crs)
        gsd = raster_footprint = None
        if kind in ("projected", "geographic"):
            try:
                grid = Grid(crs, ds.transform, ds.width, ds.height)
                raster_footprint = grid.footprint_in(CRS.from_epsg(4326), densify=4)
                c = raster_footprint.centroid
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
                    kind, gsd = "unusable", None
            except Exception:  # noqa: BLE001 - a CRS pyproj cannot transform is "unusable", reported below
                kind, gsd = "unusable", None
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


def validate_scenes(
    rows: Sequence[SceneFacts | dict[str, Any]],
    overlap_fraction: float | None = None,
    rules: SceneRules = SceneRules(),
) -> ValidationReport:
    """The scene-metadata suite over the scenes of one pair.

    The overlap is ``overlap_fraction`` when given (from pairing), else measured between the
    raster footprints of the optical and the SAR scene.
    """
    gx = _gx()
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    facts = [r if isinstance(r, SceneFacts) else SceneFacts(**r) for r in rows]
    df = pd.DataFrame([f.row() for f in facts])
    optical = [f for f in facts if f.sensor == "optical"]
    sar = [f for f in facts if f.sensor == "sar"]
    if overlap_fraction is None and len(optical) == 1 and len(sar) == 1:
        overlap_fraction = _overlap(optical[0].raster_footprint, sar[0].raster_footprint)
    exps = [
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
            min_value=rules.min_footprint_agreement,
            max_value=1.0 + 1e-9,
            description=f"item footprint lies over the raster (share at least {rules.min_footprint_agreement:g})",
        ),
    ]
    for sensor in ("optical", "sar"):
        lim, only = rules.limits(sensor), Column("sensor") == sensor
        exps += [
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
                description=f"{sensor} band count {lim.min_bands}"
                + (
                    "+"
                    if lim.max_bands is None
                    else ""
                    if lim.max_bands == lim.min_bands
                    else f"–{lim.max_bands}"
                ),
            ),
            E.ExpectColumnValuesToBeInSet(
                column="dtype",
                value_set=list(lim.dtypes),
                row_condition=only,
                description=f"{sensor} dtype one of {', '.join(lim.dtypes)}",
            ),
        ]
    subject = "scenes " + ", ".join(f.scene for f in facts)
    if overlap_fraction is not None:
        df["overlap_fraction"] = float(overlap_fraction)
        exps.append(
            E.ExpectColumnValuesToBeBetween(
                column="overlap_fraction",
                min_value=rules.min_overlap_fraction,
                max_value=1.0 + 1e-9,
                description=f"optical and SAR overlap (fraction at least {rules.min_overlap_fraction:g})",
            )
        )
    return _run(df, exps, subject, "scene")


# ----------------------------------------------------------------------------- tiepoint tables


def _grid(path: str | os.PathLike[str]) -> Any:
    import rasterio
    from pyproj import CRS

    from core.grid import Grid

    with rasterio.open(path) as ds:
        return Grid(
            CRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None, ds.transform, ds.width, ds.height
        )


def validate_tiepoints(
    csv_path: str | os.PathLike[str],
    optical: str | os.PathLike[str],
    sar: str | os.PathLike[str],
    rules: TiepointRules = TiepointRules(),
) -> ValidationReport:
    """The tiepoint suite with both images' grids read from their headers (offsets in metres)."""
    og, sg = _grid(optical), _grid(sar)
    return validate_tiepoint_table(
        csv_path,
        (og.height, og.width),
        (sg.height, sg.width),
        rules=rules,
        optical_grid=og if og.crs else None,
        sar_grid=sg if sg.crs else None,
    )


def validate_tiepoint_table(
    csv_path: str | os.PathLike[str],
    optical_shape: tuple[int, int],
    sar_shape: tuple[int, int],
    max_offset_px: float | None = None,
    rules: TiepointRules = TiepointRules(),
    optical_grid: Any = None,
    sar_grid: Any = None,
) -> ValidationReport:
    """The tiepoint suite over an SN9 CSV; ``*_shape`` are (rows, cols).

    Offsets are checked in metres when both grids (``core.grid.Grid``) are given — each point
    through its own image's geotransform, the SAR point reprojected to the optical CRS — and
    in pixels otherwise (``max_offset_px`` overrides ``rules.max_offset_px``).
    """
    gx = _gx()
    E = gx.expectations
    subject = f"tiepoints {Path(csv_path).name}"
    try:
        df = pd.read_csv(csv_path, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return ValidationReport(
            subject, (Failure(str(csv_path), "readable CSV", "read_csv", "", str(exc)[:200]),), 1
        )
    df.insert(0, "line", [f"{Path(csv_path).name} line {i + 2}" for i in range(len(df))])
    header = _run(
        df.drop(columns="line"),
        [
            E.ExpectTableColumnsToMatchOrderedList(
                column_list=TIEPOINT_COLUMNS,
                description="SN9 header sar_row,sar_col,optical_row,optical_col",
            ),
            E.ExpectTableRowCountToBeBetween(
                min_value=rules.min_rows, description=f"at least {rules.min_rows} tiepoints"
            ),
        ],
        subject,
        "line",
    )
    if not header.ok:
        return header
    typed = _run(
        df,
        [
            e
            for c in TIEPOINT_COLUMNS
            for e in (
                E.ExpectColumnValuesToNotBeNull(column=c, description="every cell filled"),
                E.ExpectColumnValuesToBeInTypeList(
                    column=c, type_list=NUMERIC_TYPES, description="numeric pixel index"
                ),
            )
        ],
        subject,
        "line",
    )
    if not typed.ok:
        return header + typed
    limit = {"optical": optical_shape, "sar": sar_shape}
    exps = [
        E.ExpectCompoundColumnsToBeUnique(
            column_list=TIEPOINT_COLUMNS, description="no duplicate tiepoints"
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["optical_row", "optical_col"],
            description="one SAR point per optical point",
        ),
    ]
    for image in ("optical", "sar"):
        for axis, size in zip(("row", "col"), limit[image], strict=True):
            c = f"{image}_{axis}"
            integer = df[c].dtype.kind in "iu"
            exps.append(
                E.ExpectColumnValuesToBeBetween(
                    column=c,
                    min_value=0,
                    max_value=size - 1 if integer else size,
                    strict_max=not integer,
                    description=f"{c} inside the {image} image (0..{size - 1})",
                )
            )
    if optical_grid is not None and sar_grid is not None:
        from core.grid import transform_points

        ox, oy = optical_grid.pixel_to_map(
            df["optical_col"].to_numpy(float), df["optical_row"].to_numpy(float)
        )
        sx, sy = sar_grid.pixel_to_map(df["sar_col"].to_numpy(float), df["sar_row"].to_numpy(float))
        sx, sy = transform_points(sar_grid.crs, optical_grid.crs, sx, sy)
        df["offset_m"] = np.hypot(sx - ox, sy - oy)
        exps.append(
            E.ExpectColumnValuesToBeBetween(
                column="offset_m",
                min_value=0,
                max_value=rules.max_offset_m,
                description=f"SAR–optical offset at most {rules.max_offset_m:g} m",
            )
        )
    else:
        max_px = rules.max_offset_px if max_offset_px is None else max_offset_px
        df["offset_px"] = np.hypot(
            df["sar_row"] - df["optical_row"], df["sar_col"] - df["optical_col"]
        )
        exps.append(
            E.ExpectColumnValuesToBeBetween(
                column="offset_px",
                min_value=0,
                max_value=max_px,
                description=f"SAR–optical offset at most {max_px:g} px",
            )
        )
    return header + typed + _run(df, exps, subject, "line")
