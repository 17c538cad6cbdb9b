"""Tiepoint residuals as a GeoPackage point layer in the optical CRS (written with pyogrio/OGR).

One point per tiepoint, at its optical pixel position taken to map coordinates with the corner
convention of the SN9 scorer (``x = gt0 + col*gt1 + row*gt2``, the full affine of the optical
grid, so rotated and geographic grids are placed where the scorer puts them). Layer
``residuals``; fields, one row per tiepoint in the order of the residual CSV:

- ``tiepoint``: 0-based position of the tiepoint in the residual CSV;
- ``sar_row``, ``sar_col``, ``optical_row``, ``optical_col``: the tiepoint's pixels;
- ``ref_dx``, ``ref_dy``, ``pred_dx``, ``pred_dy``: reference and predicted SN9 shifts (optical
  pixels);
- ``error_px``, ``error_m``: the tiepoint error in optical pixels and in metres;
- ``error_x_m``, ``error_y_m``: predicted minus reference position in metres along map x and y
  of the optical grid's metric working CRS (east and north in UTM);
- ``confidence``: the confidence raster at the tiepoint's optical pixel (NULL without one).

Non-finite values are stored as NULL.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyogrio.raw import write as ogr_write

from core.errors import InputError
from core.files import atomic_path
from core.grid import Grid
from models.scoring import (
    RESIDUAL_COLUMNS,
    TIEPOINT_HEADER,
    Score,
    Tiepoints,
    sample_pixels,
    shift_error_vector_m,
)

LAYER = "residuals"
MEDIA_TYPE = "application/geopackage+sqlite3"
FIELDS = (
    "tiepoint",
    *TIEPOINT_HEADER,
    *RESIDUAL_COLUMNS,
    "error_x_m",
    "error_y_m",
    "confidence",
)


# how the command line names the GeoPackage written beside ``--residuals``
RESIDUAL_POINTS = "GeoPackage of --residuals"


def gpkg_path(residuals_csv: str | os.PathLike[str]) -> Path:
    """The GeoPackage written beside a residual CSV (``x.csv`` → ``x.gpkg``).

    Args:
        residuals_csv: The residual CSV.
    """
    return Path(residuals_csv).with_suffix(".gpkg")


def sample_confidence(
    path: str | os.PathLike[str], optical: Grid, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Band 1 of a confidence raster on the optical grid at optical pixels (no-data as NaN).

    Args:
        path: The confidence raster (the COG written with the displacement map).
        optical: The optical grid it must share.
        rows: Optical pixel rows (floored).
        cols: Optical pixel columns (floored).
    """
    if not Path(path).is_file():
        raise InputError(f"confidence map not found: {path}")
    with rasterio.open(path) as ds:
        if (ds.width, ds.height) != (optical.width, optical.height):
            raise InputError(
                f"confidence map {path} is {ds.width}×{ds.height} but the optical image is "
                f"{optical.width}×{optical.height}; give the confidence COG written with the "
                "displacement map"
            )
        nodata = ds.nodata
    values = sample_pixels(path, rows, cols, (1,))[0]
    if nodata is not None and np.isfinite(nodata):
        values[values == nodata] = np.nan
    return values


def residual_fields(
    score: Score,
    tiepoints: Tiepoints,
    optical: Grid,
    confidence: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """The layer's field values by name (:data:`FIELDS`), one entry per tiepoint.

    Args:
        score: The score of the tiepoints.
        tiepoints: The scored tiepoints.
        optical: The optical grid the shifts are expressed on.
        confidence: The confidence raster on the optical grid; none = NaN everywhere.
    """
    tp = tiepoints
    error_x, error_y = shift_error_vector_m(
        score.pred_dx, score.pred_dy, score.ref_dx, score.ref_dy, tp, optical
    )
    conf = (
        sample_confidence(confidence, optical, tp.optical_row, tp.optical_col)
        if confidence
        else np.full(len(tp), np.nan)
    )
    columns = (
        np.arange(len(tp), dtype=np.int64),
        tp.sar_row,
        tp.sar_col,
        tp.optical_row,
        tp.optical_col,
        score.ref_dx,
        score.ref_dy,
        score.pred_dx,
        score.pred_dy,
        score.error_px,
        score.error_m,
        error_x,
        error_y,
        conf,
    )
    return {
        name: np.asarray(v, np.int64 if name == "tiepoint" else np.float64)
        for name, v in zip(FIELDS, columns, strict=True)
    }


def _crs_text(optical: Grid) -> str:
    """``EPSG:n`` when the optical CRS has an EPSG code, else its WKT."""
    epsg = optical.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else optical.crs.to_wkt()


def write_residuals_gpkg(
    path: str | os.PathLike[str],
    score: Score,
    tiepoints: Tiepoints,
    optical: Grid,
    confidence: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the residuals as the point layer ``residuals`` of a new GeoPackage (atomically, with
    the mode the umask gives); its path.

    Args:
        path: The GeoPackage to write (replaced when it exists).
        score: The score of the tiepoints.
        tiepoints: The scored tiepoints.
        optical: The optical grid: point positions and the layer's CRS.
        confidence: The confidence raster on the optical grid; none = NULL confidence.
    """
    fields = residual_fields(score, tiepoints, optical, confidence)
    xs, ys = optical.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    points = shapely.to_wkb(shapely.points(xs, ys))
    with atomic_path(path) as tmp:
        tmp.unlink()  # the GeoPackage driver creates the file itself
        ogr_write(
            str(tmp),
            points,
            list(fields.values()),
            list(fields),
            layer=LAYER,
            driver="GPKG",
            geometry_type="Point",
            crs=_crs_text(optical),
            nan_as_null=True,
        )
    return Path(path)
