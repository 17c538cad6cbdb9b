"""The data-quality gate in front of registration (Great Expectations 1.x, ephemeral context).

Two suites: scene metadata (one row per scene: CRS, GSD, dtype and band count
per sensor, no-data fraction read from a decimated window, footprint validity,
overlap) and tiepoint tables (SN9 header, numeric, in bounds, no duplicates,
plausible offsets). A failure names the expectation, the scene and the observed
value; it stops that pair only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling

from models.errors import ValidationFailed

GSD_RANGE = {"optical": (0.1, 5.0), "sar": (0.05, 10.0)}
DTYPES = {"optical": ["uint8", "uint16"], "sar": ["uint8", "uint16", "float32", "float64"]}


@dataclass
class ValidationReport:
    subject: str
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_markdown(self) -> str:
        if self.ok:
            return f"**{self.subject}**: all expectations met"
        rows = "\n".join(f"| {f['scene']} | {f['expectation']} | {f['column']} | {f['observed']} |" for f in self.failures)
        return f"**{self.subject}**: {len(self.failures)} failed expectation(s)\n\n| scene | expectation | field | observed |\n|---|---|---|---|\n{rows}"

    def raise_if_failed(self) -> None:
        if not self.ok:
            lines = "; ".join(f"{f['scene']}: {f['expectation']} on {f['column']} (observed {f['observed']})" for f in self.failures)
            raise ValidationFailed(f"{self.subject} failed validation: {lines}")


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _run(df: pd.DataFrame, expectations: list, subject: str, id_column: str) -> ValidationReport:
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except (ImportError, AttributeError):  # progress bars are cosmetic
        pass
    source = context.data_sources.add_pandas("coalign")
    asset = source.add_dataframe_asset("table")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    report = ValidationReport(subject)
    for exp in expectations:
        res = batch.validate(exp, result_format="COMPLETE")
        if res.success:
            continue
        column = getattr(exp, "column", "") or ""
        r = res.result or {}
        bad_idx = r.get("partial_unexpected_index_list") or r.get("unexpected_index_list") or []
        observed = r.get("partial_unexpected_list") or r.get("observed_value")
        scenes = [str(df.loc[i, id_column]) for i in bad_idx[:3]] if bad_idx and id_column in df else [subject]
        report.failures.append({"scene": ", ".join(scenes), "expectation": type(exp).__name__, "column": column,
                                "observed": observed if not isinstance(observed, list) else observed[:3]})
    return report


def scene_metadata(path: str, sensor: str, scene_id: str, max_side: int = 256) -> dict[str, Any]:
    """One validation row of a raster, its pixels read through a decimated window (overviews)."""
    with rasterio.open(path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max_side)
        data = ds.read(1, out_shape=(max(1, int(ds.height / f)), max(1, int(ds.width / f))), resampling=Resampling.nearest)
        mask = ds.read_masks(1, out_shape=data.shape)
        nodata = ds.nodata
        invalid = mask == 0
        if nodata is not None and not np.isnan(nodata):
            invalid |= data == nodata
        if np.issubdtype(data.dtype, np.floating):
            invalid |= ~np.isfinite(data)
        crs = ds.crs
        gsd = abs(ds.transform.a * ds.transform.e - ds.transform.b * ds.transform.d) ** 0.5
        if crs is not None and crs.is_geographic:
            gsd *= 111_320.0
        return {
            "scene": scene_id, "sensor": sensor, "count": ds.count, "dtype": ds.dtypes[0],
            "has_crs": crs is not None, "crs_projected_or_convertible": crs is not None,
            "gsd": float(gsd), "nodata_fraction": float(invalid.mean()),
        }


def validate_scenes(rows: list[dict[str, Any]], overlap_fraction: float | None = None, max_nodata: float = 0.9) -> ValidationReport:
    gx = _gx()
    df = pd.DataFrame(rows)
    df["band_count_ok"] = [(r["count"] == 1) if r["sensor"] == "sar" else (r["count"] == 1 or r["count"] >= 3) for r in rows]
    df["gsd_ok"] = [GSD_RANGE[r["sensor"]][0] <= r["gsd"] <= GSD_RANGE[r["sensor"]][1] for r in rows]
    df["dtype_ok"] = [r["dtype"] in DTYPES[r["sensor"]] for r in rows]
    E = gx.expectations
    exps = [
        E.ExpectColumnValuesToBeInSet(column="has_crs", value_set=[True]),
        E.ExpectColumnValuesToBeInSet(column="band_count_ok", value_set=[True]),
        E.ExpectColumnValuesToBeInSet(column="gsd_ok", value_set=[True]),
        E.ExpectColumnValuesToBeInSet(column="dtype_ok", value_set=[True]),
        E.ExpectColumnValuesToBeBetween(column="nodata_fraction", min_value=0.0, max_value=max_nodata),
    ]
    if overlap_fraction is not None:
        df["overlap_fraction"] = overlap_fraction
        exps.append(E.ExpectColumnValuesToBeBetween(column="overlap_fraction", min_value=0.01, max_value=1.0))
    return _run(df, exps, "scenes " + ", ".join(r["scene"] for r in rows), "scene")


def validate_tiepoint_table(csv_path: str, optical_shape: tuple[int, int], sar_shape: tuple[int, int], max_offset_px: float = 2000.0) -> ValidationReport:
    gx = _gx()
    E = gx.expectations
    try:
        df = pd.read_csv(csv_path)
    except Exception as exc:  # noqa: BLE001 - any unreadable CSV is a validation failure
        return ValidationReport(csv_path, [{"scene": csv_path, "expectation": "readable CSV", "column": "", "observed": str(exc)}])
    df["row"] = range(2, len(df) + 2)
    exps = [E.ExpectTableColumnsToMatchOrderedList(column_list=["sar_row", "sar_col", "optical_row", "optical_col", "row"])]
    report = _run(df, exps, f"tiepoints {csv_path}", "row")
    if not report.ok:
        return report
    df["offset_px"] = np.hypot(df["sar_row"] - df["optical_row"], df["sar_col"] - df["optical_col"])
    exps = [
        *(E.ExpectColumnValuesToBeOfType(column=c, type_="float64") if df[c].dtype.kind == "f" else E.ExpectColumnValuesToBeOfType(column=c, type_="int64")
          for c in ("sar_row", "sar_col", "optical_row", "optical_col")),
        E.ExpectColumnValuesToBeBetween(column="optical_row", min_value=0, max_value=optical_shape[0] - 1),
        E.ExpectColumnValuesToBeBetween(column="optical_col", min_value=0, max_value=optical_shape[1] - 1),
        E.ExpectColumnValuesToBeBetween(column="sar_row", min_value=0, max_value=sar_shape[0] - 1),
        E.ExpectColumnValuesToBeBetween(column="sar_col", min_value=0, max_value=sar_shape[1] - 1),
        E.ExpectCompoundColumnsToBeUnique(column_list=["sar_row", "sar_col", "optical_row", "optical_col"]),
        E.ExpectColumnValuesToBeBetween(column="offset_px", min_value=0, max_value=max_offset_px),
    ]
    return _run(df, exps, f"tiepoints {csv_path}", "row")
