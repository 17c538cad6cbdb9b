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
reference; metres = pixels × the optical pixel size.
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

from models.errors import InputError
from models.grid import Grid, transform_points

log = logging.getLogger(__name__)

TIEPOINT_HEADER = ("sar_row", "sar_col", "optical_row", "optical_col")


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
                    f"tiepoint file {self.source}: row {i + 2} has {name} pixel (row {rows[i]}, col {cols[i]}) "
                    f"outside the {name} image ({grid.height} rows × {grid.width} cols); "
                    f"{bad.size} tiepoint(s) out of bounds — check that the CSV belongs to these images"
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
                f"tiepoint file {p}: lines {j + 2} and {i + 2} give optical pixel (row {a[i, 2]:g}, col {a[i, 3]:g}) "
                f"two different SAR pixels; fix or remove one"
            )
    _, keep, counts = np.unique(a, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        line = int(np.sort(keep[counts > 1])[0]) + 2
        msg = f"tiepoint file {p}: {int((counts - 1).sum())} exact duplicate row(s), first at line {line}"
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
    with open(p, newline="") as fh:
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
                f"tiepoint file {p} has header {','.join(header)!r}; expected exactly {','.join(TIEPOINT_HEADER)}"
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


def sample_displacement(
    path: str | os.PathLike[str], rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) of a displacement raster at pixel indices, read point window by point window."""
    r = np.floor(rows).astype(int)
    c = np.floor(cols).astype(int)
    dx = np.empty(len(r))
    dy = np.empty(len(r))
    with rasterio.open(path) as ds:
        if ds.count < 2:
            raise InputError(f"displacement map {path} has {ds.count} band(s); expected 2 (dx, dy)")
        for i, (ri, ci) in enumerate(zip(r, c, strict=False)):
            v = ds.read([1, 2], window=Window(int(ci), int(ri), 1, 1))
            dx[i], dy[i] = float(v[0, 0, 0]), float(v[1, 0, 0])
    return dx, dy


@dataclass(frozen=True)
class Score:
    """Per-tiepoint errors and their summary (SN9 metric: the mean, in metres)."""

    error_px: np.ndarray
    pixel_size: float
    pred_dx: np.ndarray
    pred_dy: np.ndarray
    ref_dx: np.ndarray
    ref_dy: np.ndarray

    @property
    def error_m(self) -> np.ndarray:
        return self.error_px * self.pixel_size

    def summary(self) -> dict[str, float]:
        e = np.nan_to_num(self.error_px, nan=np.inf)
        finite = np.isfinite(e)
        out = {
            "tiepoints": int(len(e)),
            "mean_px": float(np.mean(e)) if finite.all() else float("inf"),
            "median_px": float(np.median(e)),
            "p90_px": float(np.percentile(e, 90)),
        }
        for k in ("mean", "median", "p90"):
            out[f"{k}_m"] = out[f"{k}_px"] * self.pixel_size
        return out

    def write_residuals(self, path: str | os.PathLike[str], tiepoints: Tiepoints) -> None:
        from models.cog import atomic_path

        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [*TIEPOINT_HEADER, "ref_dx", "ref_dy", "pred_dx", "pred_dy", "error_px", "error_m"]
            )
            for i in range(len(tiepoints)):
                w.writerow(
                    [
                        tiepoints.sar_row[i],
                        tiepoints.sar_col[i],
                        tiepoints.optical_row[i],
                        tiepoints.optical_col[i],
                        self.ref_dx[i],
                        self.ref_dy[i],
                        round(float(self.pred_dx[i]), 4),
                        round(float(self.pred_dy[i]), 4),
                        round(float(self.error_px[i]), 4),
                        round(float(self.error_m[i]), 4),
                    ]
                )


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
    return Score(err, abs(optical.transform.a), pred_dx, pred_dy, ref_dx, ref_dy)


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
                f"displacement map {displacement} is {ds.width}×{ds.height} but the optical image is "
                f"{optical.width}×{optical.height}; SN9 maps have the optical image's size"
            )
    tiepoints.check_bounds(optical, sar)
    pdx, pdy = sample_displacement(displacement, tiepoints.optical_row, tiepoints.optical_col)
    return score_shifts(pdx, pdy, tiepoints, optical, sar, rounding)
