"""SpaceNet 9 tiepoints and scoring.

Tiepoint CSVs have the header ``sar_row,sar_col,optical_row,optical_col``
(0-based pixel indices, integers or floats). The reference shift at a
tiepoint follows the SN9 scorer: both pixel positions go to map coordinates
with the corner convention (``x = gt0 + col*gt1``; the full affine is applied so
rotated SAR grids are handled, which equals SN9's formula on north-up grids),
the SAR point is reprojected to the optical CRS when the CRSs differ, then
``dx_ref = rint((x_sar - x_opt) / gt_opt[1])`` and
``dy_ref = rint((y_sar - y_opt) / gt_opt[5])``. The error is the Euclidean
distance between the predicted (dx, dy) at (optical_row, optical_col) and the
reference. The error in metres is the ground distance between the predicted and
the reference SAR positions (``x_opt + dx * gt_opt[1]``, ``y_opt + dy * gt_opt[5]``)
measured in the metric working CRS of the optical grid
(:func:`core.grid.metric_crs_for`): pixels × the pixel size on metric grids, and
exact on geographic (degree) or other non-metric grids too.
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from core.errors import InputError
from core.grid import Grid, metric_crs_for, transform_points

log = logging.getLogger(__name__)

TIEPOINT_HEADER = ("sar_row", "sar_col", "optical_row", "optical_col")
# the columns the residual CSV adds to the tiepoint header
RESIDUAL_COLUMNS = ("ref_dx", "ref_dy", "pred_dx", "pred_dy", "error_px", "error_m")


@dataclass(frozen=True)
class Tiepoints:
    """Corresponding SAR and optical pixel positions (0-based, row = y, col = x)."""

    sar_row: np.ndarray
    sar_col: np.ndarray
    optical_row: np.ndarray
    optical_col: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.sar_row)

    def check_bounds(self, optical: Grid, sar: Grid) -> None:
        """InputError naming the first tiepoint outside either image."""
        for name, rows, cols, grid in (
            ("optical", self.optical_row, self.optical_col, optical),
            ("sar", self.sar_row, self.sar_col, sar),
        ):
            bad = np.flatnonzero(
                (rows < 0) | (cols < 0) | (rows >= grid.height) | (cols >= grid.width)
            )
            if bad.size:
                i = int(bad[0])
                raise InputError(
                    f"tiepoint file {self.source}: row {i + 2} has {name} pixel (row {rows[i]}, "
                    f"col {cols[i]}) "
                    f"outside the {name} image ({grid.height} rows × {grid.width} cols); "
                    f"{bad.size} tiepoint(s) out of bounds — check that the CSV belongs to "
                    "these images"
                )


def _check_duplicates(a: np.ndarray, p: Path, duplicates: str) -> np.ndarray:
    """Conflicting rows (one optical pixel, two SAR pixels) are errors; exact repeats follow
    ``duplicates``.

    Exact repeats occur in the real SN9 training CSVs; the SN9 scorer counts
    them twice, so ``warn`` (the default) keeps them.
    """
    _, first, inverse = np.unique(a[:, 2:], axis=0, return_index=True, return_inverse=True)
    for i in range(len(a)):
        j = int(first[inverse.ravel()[i]])
        if j != i and not np.array_equal(a[i], a[j]):
            raise InputError(
                f"tiepoint file {p}: lines {j + 2} and {i + 2} give optical pixel (row "
                f"{a[i, 2]:g}, col {a[i, 3]:g}) "
                f"two different SAR pixels; fix or remove one"
            )
    _, keep, counts = np.unique(a, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        line = int(np.sort(keep[counts > 1])[0]) + 2
        repeats = int((counts - 1).sum())
        msg = f"tiepoint file {p}: {repeats} exact duplicate row(s), first at line {line}"
        if duplicates == "error":
            raise InputError(msg + "; remove duplicates")
        if duplicates == "drop":
            return a[np.sort(keep)]
        log.warning("%s (kept, as the SN9 scorer does)", msg)
    return a


def _check_text(p: Path) -> None:
    """InputError unless the tiepoint file ``p`` is UTF-8 text (a binary file is no CSV)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"tiepoint file {p} is not text (byte {offset + exc.start} is not UTF-8); "
                    f"give the SN9 CSV with header {','.join(TIEPOINT_HEADER)}"
                ) from None
            offset += len(chunk)


def read_tiepoints(path: str | os.PathLike[str], duplicates: str = "warn") -> Tiepoints:
    """Read and check an SN9 tiepoint CSV (header, numbers, conflicting or repeated rows)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"tiepoint file not found: {p}")
    _check_text(p)
    # utf-8-sig: Excel's "CSV UTF-8" starts the file with a byte-order mark
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(
                f"tiepoint file {p} is empty; expected header {','.join(TIEPOINT_HEADER)}"
            ) from None
        header = [h.strip().lower() for h in header]
        if tuple(header[:4]) != TIEPOINT_HEADER or len(header) != 4:
            raise InputError(
                f"tiepoint file {p} has header {','.join(header)!r}; expected exactly "
                f"{','.join(TIEPOINT_HEADER)}"
            )
        rows: list[list[float]] = []
        for lineno, record in enumerate(reader, start=2):
            if not record or all(not c.strip() for c in record):
                continue
            if len(record) != 4:
                raise InputError(
                    f"tiepoint file {p} line {lineno}: expected 4 values, got {len(record)}"
                )
            try:
                values = [float(c) for c in record]
            except ValueError:
                raise InputError(
                    f"tiepoint file {p} line {lineno}: non-numeric value in {record}"
                ) from None
            if not all(np.isfinite(values)):
                raise InputError(f"tiepoint file {p} line {lineno}: non-finite value in {record}")
            rows.append(values)
    if not rows:
        raise InputError(f"tiepoint file {p} has a header but no tiepoints")
    a = np.asarray(rows, dtype=np.float64)
    a = _check_duplicates(a, p, duplicates)
    return Tiepoints(a[:, 0], a[:, 1], a[:, 2], a[:, 3], str(p))


def write_tiepoints(
    path: str | os.PathLike[str], tiepoints: Tiepoints, decimals: int | None = None
) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TIEPOINT_HEADER)
        for row in zip(
            tiepoints.sar_row,
            tiepoints.sar_col,
            tiepoints.optical_row,
            tiepoints.optical_col,
            strict=False,
        ):
            w.writerow([int(v) if decimals is None else round(float(v), decimals) for v in row])


def reference_shift(
    tiepoints: Tiepoints, optical: Grid, sar: Grid, rounding: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The SN9 reference (dx, dy) in optical pixels at each tiepoint."""
    xo, yo = optical.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    xs, ys = sar.pixel_to_map(tiepoints.sar_col, tiepoints.sar_row)
    xs, ys = transform_points(sar.crs, optical.crs, xs, ys)
    dx = (xs - xo) / optical.transform.a
    dy = (ys - yo) / optical.transform.e
    if rounding:
        return np.rint(dx), np.rint(dy)
    return dx, dy


def sample_pixels(
    path: str | os.PathLike[str], rows: np.ndarray, cols: np.ndarray, bands: tuple[int, ...]
) -> np.ndarray:
    """Values of ``bands`` of a raster at pixel indices (floored), shaped ``(bands, points)``;
    read point window by point window.

    Args:
        path: The raster.
        rows: Fractional pixel rows of the points.
        cols: Fractional pixel columns of the points.
        bands: 1-based band numbers to read.
    """
    r = np.floor(rows).astype(int)
    c = np.floor(cols).astype(int)
    out = np.empty((len(bands), len(r)))
    with rasterio.open(path) as ds:
        for i, (ri, ci) in enumerate(zip(r, c, strict=False)):
            out[:, i] = ds.read(list(bands), window=Window(int(ci), int(ri), 1, 1))[:, 0, 0]
    return out


def sample_displacement(
    path: str | os.PathLike[str], rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) of a displacement raster at pixel indices, read point window by point window."""
    with rasterio.open(path) as ds:
        if ds.count < 2:
            raise InputError(f"displacement map {path} has {ds.count} band(s); expected 2 (dx, dy)")
    dx, dy = sample_pixels(path, rows, cols, (1, 2))
    return dx, dy


@dataclass(frozen=True)
class Score:
    """Per-tiepoint errors (optical pixels and metres on the ground) and their summary (SN9
    metric: the mean, in metres)."""

    error_px: np.ndarray
    error_m: np.ndarray
    pred_dx: np.ndarray
    pred_dy: np.ndarray
    ref_dx: np.ndarray
    ref_dy: np.ndarray

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"tiepoints": int(len(self.error_px))}
        for unit, errors in (("px", self.error_px), ("m", self.error_m)):
            e = np.nan_to_num(errors, nan=np.inf)
            out[f"mean_{unit}"] = float(np.mean(e)) if np.isfinite(e).all() else float("inf")
            out[f"median_{unit}"] = float(np.median(e))
            out[f"p90_{unit}"] = float(np.percentile(e, 90))
        return out

    def write_residuals(
        self,
        path: str | os.PathLike[str],
        tiepoints: Tiepoints,
        optical: Grid,
        confidence: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Write the per-tiepoint residual CSV at ``path`` and, beside it (``.gpkg``), the same
        residuals as a GeoPackage point layer (:mod:`models.residuals_gpkg`); the GeoPackage's
        path.

        Args:
            path: The CSV to write (atomically).
            tiepoints: The scored tiepoints, in the order of the score's arrays.
            optical: The optical grid: the points' map positions and CRS.
            confidence: The confidence raster on the optical grid to sample at each tiepoint;
                none = the confidence field is empty (NULL).
        """
        from core.files import atomic_path
        from models.residuals_gpkg import gpkg_path, write_residuals_gpkg

        gpkg = write_residuals_gpkg(gpkg_path(path), self, tiepoints, optical, confidence)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*TIEPOINT_HEADER, *RESIDUAL_COLUMNS])
            for i in range(len(tiepoints)):
                w.writerow(
                    [
                        tiepoints.sar_row[i],
                        tiepoints.sar_col[i],
                        tiepoints.optical_row[i],
                        tiepoints.optical_col[i],
                        self.ref_dx[i],
                        self.ref_dy[i],
                        *(
                            round(float(v[i]), 4)
                            for v in (self.pred_dx, self.pred_dy, self.error_px, self.error_m)
                        ),
                    ]
                )
        return gpkg


def score_shifts(
    pred_dx: np.ndarray,
    pred_dy: np.ndarray,
    tiepoints: Tiepoints,
    optical: Grid,
    sar: Grid,
    rounding: bool = True,
) -> Score:
    """Score predicted shifts (already sampled at the optical tiepoints)."""
    ref_dx, ref_dy = reference_shift(tiepoints, optical, sar, rounding)
    err = np.hypot(pred_dx - ref_dx, pred_dy - ref_dy)
    err_m = shift_error_m(pred_dx, pred_dy, ref_dx, ref_dy, tiepoints, optical)
    return Score(err, err_m, pred_dx, pred_dy, ref_dx, ref_dy)


def shift_error_m(
    pred_dx: np.ndarray,
    pred_dy: np.ndarray,
    ref_dx: np.ndarray,
    ref_dy: np.ndarray,
    tiepoints: Tiepoints,
    optical: Grid,
) -> np.ndarray:
    """Ground distance (metres) between predicted and reference SAR positions at each tiepoint:
    the length of :func:`shift_error_vector_m`. A non-finite prediction gives a non-finite error.

    Args:
        pred_dx: Predicted SN9 dx (optical pixels) at the tiepoints.
        pred_dy: Predicted SN9 dy (optical pixels) at the tiepoints.
        ref_dx: Reference SN9 dx (optical pixels) at the tiepoints.
        ref_dy: Reference SN9 dy (optical pixels) at the tiepoints.
        tiepoints: The tiepoints (their optical pixels locate the shifts).
        optical: The optical grid the shifts are expressed on.
    """
    return np.hypot(*shift_error_vector_m(pred_dx, pred_dy, ref_dx, ref_dy, tiepoints, optical))


def shift_error_vector_m(
    pred_dx: np.ndarray,
    pred_dy: np.ndarray,
    ref_dx: np.ndarray,
    ref_dy: np.ndarray,
    tiepoints: Tiepoints,
    optical: Grid,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted minus reference SAR position at each tiepoint, as map (x, y) metres of the
    optical grid's metric working CRS (:func:`core.grid.metric_crs_for`; east and north in UTM).

    Both SN9 shifts go back to map positions of the optical CRS (``x_opt + dx * gt_opt[1]``,
    ``y_opt + dy * gt_opt[5]``) and are compared in the metric working CRS; on a metric optical
    grid this is the pixel error vector scaled by ``gt_opt[1]`` and ``gt_opt[5]``. A non-finite
    prediction gives non-finite components.

    Args:
        pred_dx: Predicted SN9 dx (optical pixels) at the tiepoints.
        pred_dy: Predicted SN9 dy (optical pixels) at the tiepoints.
        ref_dx: Reference SN9 dx (optical pixels) at the tiepoints.
        ref_dy: Reference SN9 dy (optical pixels) at the tiepoints.
        tiepoints: The tiepoints (their optical pixels locate the shifts).
        optical: The optical grid the shifts are expressed on.
    """
    a, e = optical.transform.a, optical.transform.e
    ex = np.asarray(pred_dx, float) - ref_dx
    ey = np.asarray(pred_dy, float) - ref_dy
    crs = metric_crs_for(optical)
    if crs == optical.crs:
        return ex * a, ey * e
    xo, yo = optical.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    finite = np.isfinite(ex) & np.isfinite(ey)
    px, py = transform_points(
        optical.crs,
        crs,
        xo + np.where(finite, pred_dx, 0.0) * a,
        yo + np.where(finite, pred_dy, 0.0) * e,
    )
    rx, ry = transform_points(optical.crs, crs, xo + ref_dx * a, yo + ref_dy * e)
    return np.where(finite, px - rx, ex), np.where(finite, py - ry, ey)


def score_displacement(
    displacement: str | os.PathLike[str],
    tiepoints: Tiepoints,
    optical: Grid,
    sar: Grid,
    rounding: bool = True,
) -> Score:
    """Score an SN9 displacement raster against tiepoints."""
    with rasterio.open(displacement) as ds:
        if (ds.width, ds.height) != (optical.width, optical.height):
            raise InputError(
                f"displacement map {displacement} is {ds.width}×{ds.height} but the optical "
                f"image is {optical.width}×{optical.height}; SN9 maps have the optical image's size"
            )
    tiepoints.check_bounds(optical, sar)
    pdx, pdy = sample_displacement(displacement, tiepoints.optical_row, tiepoints.optical_col)
    return score_shifts(pdx, pdy, tiepoints, optical, sar, rounding)
