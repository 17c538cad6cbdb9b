"""The tiepoint-table suite over an SN9 CSV: header, types, bounds, duplicates, offsets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stac.validation.report import Failure, ValidationReport, gx, run_suite

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


@dataclass(frozen=True)
class TiepointRules:
    """Tiepoint-table thresholds. SN9 offsets average 26–32 m; hundreds of metres are a wrong
    pair."""

    max_offset_m: float = 250.0
    max_offset_px: float = 2000.0
    min_rows: int = 3


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


def _header_suite(df: pd.DataFrame, rules: TiepointRules, subject: str) -> ValidationReport:
    E = gx().expectations
    return run_suite(
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


def _typed_suite(df: pd.DataFrame, subject: str) -> ValidationReport:
    E = gx().expectations
    return run_suite(
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


def _placement_expectations(
    df: pd.DataFrame, optical_shape: tuple[int, int], sar_shape: tuple[int, int]
) -> list[Any]:
    """No duplicates, one SAR point per optical point, every point inside its image."""
    E = gx().expectations
    exps = [
        E.ExpectCompoundColumnsToBeUnique(
            column_list=TIEPOINT_COLUMNS, description="no duplicate tiepoints"
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["optical_row", "optical_col"],
            description="one SAR point per optical point",
        ),
    ]
    limit = {"optical": optical_shape, "sar": sar_shape}
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
    return exps


def _offset_expectation(
    df: pd.DataFrame, rules: TiepointRules, max_offset_px: float | None, grids: tuple[Any, Any]
) -> Any:
    """The offset check: adds ``offset_m`` (both grids known) or ``offset_px`` to ``df``."""
    E = gx().expectations
    optical_grid, sar_grid = grids
    if optical_grid is not None and sar_grid is not None:
        from core.grid import transform_points

        ox, oy = optical_grid.pixel_to_map(
            df["optical_col"].to_numpy(float), df["optical_row"].to_numpy(float)
        )
        sx, sy = sar_grid.pixel_to_map(df["sar_col"].to_numpy(float), df["sar_row"].to_numpy(float))
        sx, sy = transform_points(sar_grid.crs, optical_grid.crs, sx, sy)
        df["offset_m"] = np.hypot(sx - ox, sy - oy)
        return E.ExpectColumnValuesToBeBetween(
            column="offset_m",
            min_value=0,
            max_value=rules.max_offset_m,
            description=f"SAR–optical offset at most {rules.max_offset_m:g} m",
        )
    max_px = rules.max_offset_px if max_offset_px is None else max_offset_px
    df["offset_px"] = np.hypot(df["sar_row"] - df["optical_row"], df["sar_col"] - df["optical_col"])
    return E.ExpectColumnValuesToBeBetween(
        column="offset_px",
        min_value=0,
        max_value=max_px,
        description=f"SAR–optical offset at most {max_px:g} px",
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
    """The tiepoint suite over an SN9 CSV.

    Offsets are checked in metres when both grids are given — each point through its own
    image's geotransform, the SAR point reprojected to the optical CRS — and in pixels otherwise.

    Args:
        csv_path: The SN9 CSV (``sar_row,sar_col,optical_row,optical_col``).
        optical_shape: The optical image's (rows, cols).
        sar_shape: The SAR image's (rows, cols).
        max_offset_px: Overrides ``rules.max_offset_px``.
        rules: The thresholds.
        optical_grid: The optical image's ``core.grid.Grid``.
        sar_grid: The SAR image's ``core.grid.Grid``.
    """
    subject = f"tiepoints {Path(csv_path).name}"
    try:
        df = pd.read_csv(csv_path, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return ValidationReport(
            subject, (Failure(str(csv_path), "readable CSV", "read_csv", "", str(exc)[:200]),), 1
        )
    df.insert(0, "line", [f"{Path(csv_path).name} line {i + 2}" for i in range(len(df))])
    header = _header_suite(df, rules, subject)
    if not header.ok:
        return header
    typed = _typed_suite(df, subject)
    if not typed.ok:
        return header + typed
    exps = _placement_expectations(df, optical_shape, sar_shape)
    exps.append(_offset_expectation(df, rules, max_offset_px, (optical_grid, sar_grid)))
    return header + typed + run_suite(df, exps, subject, "line")
