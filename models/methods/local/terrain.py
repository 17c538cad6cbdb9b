"""The terrain prior of ``local``: the layover a height model predicts, fitted to vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates, percentile_filter, uniform_filter

from core.grid import Grid
from models.displacement import DisplacementField
from models.height import read_height
from models.methods.base import RegistrationInput

# side of the window whose low percentile takes buildings out of a DSM without a DTM, metres
DSM_TERRAIN_WINDOW_M = 75.0
# the percentile: the ground between buildings, even where they cover most of the window
DSM_TERRAIN_PERCENTILE = 10
# pixels across the window on the grid it runs on
_WINDOW_PX = 11
# a terrain shift whose spread over the overlap is under this share of a native pixel is flat
FLAT_SHARE = 0.1
# Huber constant, in robust standard deviations of the vectors' residuals
_HUBER_K = 1.345
_IRLS_ITERATIONS = 10


@dataclass(frozen=True)
class TerrainFit:
    """``d(X) ≈ A·[u, v, 1] + gain·T(X)``, fitted to vectors; ``(u, v)`` = ``(X - centre) /
    scale``."""

    affine: np.ndarray  # (2, 3): rows dx, dy; columns u, v, 1
    gain: float
    centre: tuple[float, float]
    scale: float
    vectors: int
    r2: float  # share of the vectors' variance the model explains (Huber-weighted)
    r2_affine: float  # the same for the affine part alone, fitted with the same weights

    def displacement(
        self, x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model at map points ``(x, y)`` whose terrain shift is ``(tx, ty)`` metres.

        Args:
            x: Map x.
            y: Map y.
            tx: Terrain shift along x there.
            ty: Terrain shift along y there.
        """
        u, v = (x - self.centre[0]) / self.scale, (y - self.centre[1]) / self.scale
        a = self.affine
        return (
            a[0, 0] * u + a[0, 1] * v + a[0, 2] + self.gain * tx,
            a[1, 0] * u + a[1, 1] * v + a[1, 2] + self.gain * ty,
        )

    def record(self) -> dict[str, Any]:
        """What the result's details record about the fit."""
        return {
            "gain": round(self.gain, 3),
            "r2": round(self.r2, 3),
            "r2_affine": round(self.r2_affine, 3),
            "vectors": self.vectors,
        }


def unavailable(pair: RegistrationInput) -> str | None:
    """Why the pair cannot have a terrain prior (None when it can).

    Args:
        pair: The pair.
    """
    if pair.height is None and pair.geometry is None:
        return "no height model (--dsm) and no SAR geometry"
    if pair.height is None:
        return "no height model (--dsm)"
    if pair.geometry is None:
        return "no SAR geometry (--sar-incidence, --sar-look-azimuth or SAR tags)"
    if not pair.geometry.ground_projected:
        return "the SAR is in slant range, not ground-projected"
    return None


def terrain_heights(pair: RegistrationInput, grid: Grid) -> tuple[np.ndarray, str]:
    """Bare-terrain heights on ``grid`` (NaN without data) and where they came from.

    The DTM when given; else the DSM's :data:`DSM_TERRAIN_PERCENTILE` th percentile over
    windows :data:`DSM_TERRAIN_WINDOW_M` across (read half a window beyond the grid), so
    buildings and trees do not count as terrain.

    Args:
        pair: The pair (with a height model).
        grid: The grid to read onto.
    """
    assert pair.height is not None
    if pair.height.dtm is not None:
        return read_height(pair.height.dtm, grid), "DTM"
    factor = max(1.0, DSM_TERRAIN_WINDOW_M / _WINDOW_PX / grid.resolution)
    # half a window beyond the grid on every side, so windows at its edges hold real heights
    half = _WINDOW_PX // 2
    scaled = grid.scaled(factor)
    coarse = scaled.window_grid(-half, -half, scaled.width + 2 * half, scaled.height + 2 * half)
    dsm = read_height(pair.height.dsm, coarse)
    valid = np.isfinite(dsm)
    if not valid.any():
        return np.full(grid.shape, np.nan, np.float32), "DSM"
    filled = np.where(valid, dsm, np.nanmedian(dsm)).astype(np.float32)
    low = percentile_filter(filled, DSM_TERRAIN_PERCENTILE, size=_WINDOW_PX, mode="nearest")
    smooth = np.where(valid, low, np.nan)
    col, row = coarse.map_to_pixel(*grid.pixel_centres())
    coords = np.stack([np.ravel(row) - 0.5, np.ravel(col) - 0.5])
    out = map_coordinates(smooth, coords, order=1, mode="nearest", cval=np.nan)
    heights = out.reshape(grid.shape).astype(np.float32)
    return heights, f"DSM, {DSM_TERRAIN_PERCENTILE}th percentile over {DSM_TERRAIN_WINDOW_M:g} m"


def terrain_shift(pair: RegistrationInput, grid: Grid) -> tuple[DisplacementField, str] | str:
    """The SAR-minus-optical shift the terrain causes on ``grid`` (metres, map axes) and the
    heights' source, or why there is none.

    A ground point at height ``h`` appears in a ground-projected SAR ``h·cot(incidence)``
    towards the sensor; the optical image is taken as orthorectified (no height term). Where
    the height model has no data the median height stands in.

    Args:
        pair: The pair (with a height model and SAR geometry).
        grid: The field grid.
    """
    assert pair.geometry is not None
    heights, source = terrain_heights(pair, grid)
    if not np.isfinite(heights).any():
        return "the height model has no data over the overlap"
    heights = np.where(np.isfinite(heights), heights, np.nanmedian(heights))
    x, y = grid.pixel_centres()
    centre = (float(x.mean()), float(y.mean()))
    tdx, tdy = pair.geometry.layover_shift_m(heights, grid.crs, centre)
    spread = float(np.hypot(np.std(tdx), np.std(tdy)))
    if spread < FLAT_SHARE * pair.native_resolution():
        return f"the terrain is flat over the overlap (shift spread {spread:.2f} m)"
    conf = np.ones(grid.shape, np.float32)
    return DisplacementField(grid, tdx.astype(np.float32), tdy.astype(np.float32), conf), source


def template_mean(terrain: DisplacementField, side_m: float) -> DisplacementField:
    """The terrain shift averaged over square templates ``side_m`` across: what a template
    match measures of it.

    Args:
        terrain: The terrain shift on the field grid.
        side_m: Template side, metres.
    """
    size = max(1, int(round(side_m / terrain.grid.resolution)))
    dx, dy = (uniform_filter(a, size=size, mode="nearest") for a in (terrain.dx, terrain.dy))
    return DisplacementField(terrain.grid, dx, dy, terrain.confidence)


def _design(u: np.ndarray, v: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Rows ``dx_i`` then ``dy_i`` over unknowns ``a_u, a_v, a_1, b_u, b_v, b_1, gain``."""
    n = len(u)
    one, zero = np.ones(n), np.zeros(n)
    top = np.column_stack([u, v, one, zero, zero, zero, tx])
    bottom = np.column_stack([zero, zero, zero, u, v, one, ty])
    return np.vstack([top, bottom])


def _r2(residual: np.ndarray, target: np.ndarray, w: np.ndarray) -> float:
    """Weighted share of the variance of ``target`` (``(2n,)``) that ``residual`` leaves out."""
    n = len(w)
    ww = np.concatenate([w, w])
    mean = [np.average(target[:n], weights=w), np.average(target[n:], weights=w)]
    centred = target - np.repeat(mean, n)
    total = float(np.sum(ww * centred**2))
    return 1.0 - float(np.sum(ww * residual**2)) / total if total > 0 else 0.0


def fit_terrain(
    x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, tx: np.ndarray, ty: np.ndarray
) -> TerrainFit:
    """Fit ``d ≈ A·[u, v, 1] + gain·T`` to vectors by iteratively reweighted least squares
    with Huber weights on each vector's residual length.

    Args:
        x: Vector positions, map x.
        y: Vector positions, map y.
        dx: Measured displacement along x, metres.
        dy: Measured displacement along y, metres.
        tx: Terrain shift at the vectors along x, metres.
        ty: Terrain shift at the vectors along y, metres.
    """
    centre = (float(np.mean(x)), float(np.mean(y)))
    scale = float(max(np.ptp(x), np.ptp(y), 1.0))
    u, v = (x - centre[0]) / scale, (y - centre[1]) / scale
    design = _design(u, v, tx, ty)
    target = np.concatenate([dx, dy]).astype(float)
    n = len(x)
    w = np.ones(n)
    for _ in range(_IRLS_ITERATIONS):
        sw = np.sqrt(np.concatenate([w, w]))
        p = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)[0]
        res = target - design @ p
        length = np.hypot(res[:n], res[n:])
        sigma = max(1.4826 * float(np.median(length)), 1e-6)
        w = np.minimum(1.0, _HUBER_K * sigma / np.maximum(length, 1e-12))
    sw = np.sqrt(np.concatenate([w, w]))
    affine_only = design[:, :6]
    q = np.linalg.lstsq(affine_only * sw[:, None], target * sw, rcond=None)[0]
    return TerrainFit(
        affine=np.array([p[0:3], p[3:6]]),
        gain=float(p[6]),
        centre=centre,
        scale=scale,
        vectors=n,
        r2=_r2(res, target, w),
        r2_affine=_r2(target - affine_only @ q, target, w),
    )


def terrain_field(fit: TerrainFit, terrain: DisplacementField) -> DisplacementField:
    """The fitted model on the terrain shift's grid, as a starting field.

    Args:
        fit: The fitted model.
        terrain: The terrain shift on the field grid.
    """
    x, y = terrain.grid.pixel_centres()
    dx, dy = fit.displacement(x, y, terrain.dx, terrain.dy)
    zero = np.zeros(terrain.grid.shape, np.float32)
    return DisplacementField(terrain.grid, dx.astype(np.float32), dy.astype(np.float32), zero)
