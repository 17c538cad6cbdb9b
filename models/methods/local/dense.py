"""Sparse residual vectors → dense residual: normalised convolution or TPS, blended into a trend."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.spatial import cKDTree

from core.grid import Grid

T = TypeVar("T")
R = TypeVar("R")

# grid cells the thin-plate spline is evaluated at per call
TPS_CHUNK = 200_000
# held-out pairs of the smoothing choice handled at once (bounds its memory on large scenes)
PAIR_CHUNK = 1_000_000
# cells per Gaussian scale the smoothing choice keeps: it scores wider candidates on a grid
# coarsened by an integer factor (held-out errors within a few per cent of the full grid's)
SIGMA_CELLS = 12.0


def _no_step() -> None:
    """Default step sink."""


def dense_steps(grid: Grid, interpolation: str) -> int:
    """Steps :func:`dense_residual` reports on ``grid``: one, or one per chunk of the
    thin-plate spline's evaluation."""
    if interpolation != "tps":
        return 1
    return max(1, math.ceil(grid.width * grid.height / TPS_CHUNK))


def grid_cells(grid: Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell of ``grid`` under each point (clamped to the grid)."""
    col, row = grid.map_to_pixel(x, y)
    c = np.clip(np.floor(col).astype(int), 0, grid.width - 1)
    r = np.clip(np.floor(row).astype(int), 0, grid.height - 1)
    return r, c


def coarsening(sigma: float) -> int:
    """Integer factor by which a grid can be coarsened for a Gaussian of ``sigma`` cells and
    keep :data:`SIGMA_CELLS` cells per scale (1: not coarsened)."""
    return max(1, int(sigma // SIGMA_CELLS))


def _side_by_side(fn: Callable[[T], R], items: list[T]) -> Iterator[R]:
    """``fn`` of each item, in order, run on threads across the cores (the Gaussians release
    the GIL)."""
    with ThreadPoolExecutor(max(1, min(len(items), os.cpu_count() or 1))) as threads:
        yield from threads.map(fn, items)


def filter_taps(sigma: float) -> np.ndarray:
    """The discrete kernel ``gaussian_filter`` applies along each axis.

    Args:
        sigma: Gaussian scale, cells.
    """
    reach = int(4.0 * sigma + 0.5)
    delta = np.zeros(2 * reach + 1)
    delta[reach] = 1.0
    return gaussian_filter1d(delta, sigma, mode="constant")


def _blurred(
    shape: tuple[int, int],
    r: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    sigma: float,
    torch_device: str | None = None,
) -> np.ndarray:
    """Gaussian (``sigma`` cells, zero outside) of the values ``v`` added at cells ``(r, c)``:
    by SciPy, or by torch on ``torch_device`` (:func:`~models.gpu.splat_blur_torch`)."""
    if torch_device:
        from models.gpu.gaussian import splat_blur_torch

        return splat_blur_torch(shape, r, c, v, filter_taps(sigma), torch_device)
    a = np.zeros(shape, np.float64)
    np.add.at(a, (r, c), v)
    return gaussian_filter(a, sigma, mode="constant")


def normalised_convolution(
    shape: tuple[int, int],
    r: np.ndarray,
    c: np.ndarray,
    quality: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    sigma: float,
    torch_device: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quality-weighted Gaussian averages of (dx, dy) on a grid.

    Args:
        shape: The grid's (rows, columns).
        r: Row of each point's cell.
        c: Column of each point's cell.
        quality: Weight of each point.
        dx: The vectors' x components.
        dy: The vectors' y components.
        sigma: Gaussian scale, cells.
        torch_device: Where torch computes the Gaussian sums; None: SciPy on the CPU.

    Returns:
        The averaged dx and dy on the grid, and the Gaussian sum of the weights (the points'
        support).
    """
    den, sdx, sdy = _side_by_side(
        lambda v: _blurred(shape, r, c, v, sigma, torch_device),
        [quality, quality * dx, quality * dy],
    )
    return sdx / np.maximum(den, 1e-12), sdy / np.maximum(den, 1e-12), den


def held_out_errors(
    shape: tuple[int, int],
    r: np.ndarray,
    c: np.ndarray,
    quality: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    sigma: float,
    near: np.ndarray | None = None,
    torch_device: str | None = None,
) -> np.ndarray:
    """Each point's error when :func:`normalised_convolution` predicts it without itself and its
    ``near`` pairs (index pairs), so vectors whose templates overlap it, and so share its
    matching error, do not predict it.

    A Gaussian of at least twice :data:`SIGMA_CELLS` cells runs on the grid coarsened by
    :func:`coarsening` (the points binned to its cells; the errors are exact on it).

    Args:
        shape: The grid's (rows, columns).
        r: Row of each point's cell.
        c: Column of each point's cell.
        quality: Weight of each point.
        dx: The vectors' x components.
        dy: The vectors' y components.
        sigma: Gaussian scale, cells.
        near: Index pairs of points held out together, or None.
        torch_device: Where torch computes the Gaussian sums; None: SciPy on the CPU.
    """
    f = coarsening(sigma)
    coarse, r, c, sigma = (-(-shape[0] // f), -(-shape[1] // f)), r // f, c // f, sigma / f
    den = _blurred(coarse, r, c, quality, sigma, torch_device)[r, c]
    # the kernel the sums were filtered with, so the held-out sums are exact
    taps = filter_taps(sigma)
    near_w, near_dx, near_dy = _held_out_sums(r, c, quality, dx, dy, taps, near)
    held = [
        (_blurred(coarse, r, c, quality * v, sigma, torch_device)[r, c] - near_v)
        / np.maximum(den - near_w, 1e-12)
        for v, near_v in ((dx, near_dx), (dy, near_dy))
    ]
    return np.hypot(held[0] - dx, held[1] - dy)


def _held_out_sums(
    r: np.ndarray,
    c: np.ndarray,
    quality: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    k1: np.ndarray,
    near: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point, the kernel weight and the weighted (dx, dy) its held-out set (itself and its
    ``near`` pairs) adds to the Gaussian sums at its cell.

    The pairs are taken :data:`PAIR_CHUNK` at a time, so the memory stays bounded on a scene
    of millions of templates.
    """
    n, reach = len(r), len(k1) // 2
    sums = np.zeros((3, n))
    pairs = np.zeros((0, 2), np.intp) if near is None else near
    chunks = [np.column_stack([np.arange(n), np.arange(n)])]  # each point with itself
    chunks += [pairs[s : s + PAIR_CHUNK] for s in range(0, len(pairs), PAIR_CHUNK)]
    for k, chunk in enumerate(chunks):
        i, j = chunk[:, 0], chunk[:, 1]
        if k:  # a pair counts for both of its points
            i, j = np.concatenate([i, j]), np.concatenate([j, i])
        dr, dc = r[i] - r[j], c[i] - c[j]
        inside = (np.abs(dr) <= reach) & (np.abs(dc) <= reach)
        i, j = i[inside], j[inside]
        kw = quality[j] * k1[reach + dr[inside]] * k1[reach + dc[inside]]
        sums[0] += np.bincount(i, kw, n)
        sums[1] += np.bincount(i, kw * dx[j], n)
        sums[2] += np.bincount(i, kw * dy[j], n)
    return sums[0], sums[1], sums[2]


def choose_sigma(
    grid: Grid,
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    quality: np.ndarray,
    candidates_m: list[float],
    template_m: float = 0.0,
    step: Callable[[], None] = _no_step,
    torch_device: str | None = None,
) -> float:
    """The smoothing scale whose held-out prediction of the vectors is best (median error).

    ``template_m``: template side; vectors closer than that (overlapping
    templates, correlated errors) are held out together, else the smallest
    scale would always win by fitting the shared error. Wide candidates are scored on a
    coarser grid (:func:`held_out_errors`); the residual of the chosen scale is computed on
    the grid itself. ``step`` is called after each candidate is scored. ``torch_device``:
    where torch computes the Gaussian sums (None: SciPy on the CPU).
    """
    r, c = grid_cells(grid, x, y)
    # templates overlap when their centres are closer than a side along both axes
    near = (
        cKDTree(np.column_stack([x, y])).query_pairs(
            template_m * (1 - 1e-9), p=np.inf, output_type="ndarray"
        )
        if template_m > 0
        else None
    )
    sigmas = [max(s_m / grid.resolution, 0.5) for s_m in candidates_m]
    scores = []
    for err in _side_by_side(
        lambda sigma: held_out_errors(grid.shape, r, c, quality, dx, dy, sigma, near, torch_device),
        sigmas,
    ):
        scores.append(float(np.median(err)))
        step()
    return candidates_m[int(np.argmin(scores))]


def _tps(
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    quality: np.ndarray,
    smoothing: float,
    gx: np.ndarray,
    gy: np.ndarray,
    step: Callable[[], None] = _no_step,
) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate-spline RBF of the vectors (smoothing ``smoothing / quality``) at ``(gx, gy)``,
    evaluated in chunks of ``TPS_CHUNK`` points (``step`` called after each)."""
    pts = np.column_stack([x, y])
    centre, scale = pts.mean(axis=0), max(float(np.ptp(pts, axis=0).max()), 1.0)
    rbf = RBFInterpolator(
        (pts - centre) / scale,
        np.column_stack([dx, dy]),
        kernel="thin_plate_spline",
        smoothing=smoothing / np.maximum(quality, 0.05),
        neighbors=min(len(pts), 64),
        degree=1,
    )
    q = (np.column_stack([gx.ravel(), gy.ravel()]) - centre) / scale
    chunks = []
    for s in range(0, len(q), TPS_CHUNK):
        chunks.append(rbf(q[s : s + TPS_CHUNK]))
        step()
    out = np.concatenate(chunks)
    return out[:, 0].reshape(gx.shape), out[:, 1].reshape(gx.shape)


def dense_residual(
    grid: Grid,
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    quality: np.ndarray,
    sigma_m: float,
    interpolation: str = "gaussian",
    smoothing: float = 1.0,
    step: Callable[[], None] = _no_step,
    torch_device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse residual vectors → dense residual on ``grid``, fading into their trend off support.

    ``gaussian``: normalised convolution (quality-weighted Gaussian average with
    scale ``sigma_m``), linear in the number of points and grid cells, so it
    scales to whole scenes. ``tps``: thin-plate-spline RBF with per-point
    smoothing ``smoothing / quality``. Where the points thin out (borders,
    featureless ground) the residual blends into :func:`residual_trend`, so a
    shift carried by a level does not decay towards the edges of the overlap.
    ``step`` is called :func:`dense_steps` times as the residual is computed.
    ``torch_device``: where torch computes the Gaussian sums (None: SciPy on the CPU).
    """
    gx, gy = grid.pixel_centres()
    sigma = max(sigma_m / grid.resolution, 0.5)
    r, c = grid_cells(grid, x, y)
    rdx, rdy, den = normalised_convolution(grid.shape, r, c, quality, dx, dy, sigma, torch_device)
    # support: 1 where points are as dense as one per few cells of the kernel, fading beyond
    typical = float(np.percentile(den[den > 0], 75)) if (den > 0).any() else 1.0
    fade = den / (den + 0.1 * typical)
    if interpolation == "tps":
        rdx, rdy = _tps(x, y, dx, dy, quality, smoothing, gx, gy, step)
    else:
        step()
    tdx, tdy = residual_trend(x, y, dx, dy, quality, gx, gy)
    return (
        (rdx * fade + tdx * (1 - fade)).astype(np.float32),
        (rdy * fade + tdy * (1 - fade)).astype(np.float32),
    )


def residual_trend(
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    quality: np.ndarray,
    qx: np.ndarray,
    qy: np.ndarray,
    ridge: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Quality-weighted affine trend of the vectors, evaluated at ``(qx, qy)``.

    The linear part is ridge-shrunk towards a translation (few or clustered
    points give a translation), and query points are clamped to a margin of a
    quarter of the points' extent around them, so the trend never extrapolates
    far.
    """
    w = np.maximum(np.asarray(quality, np.float64), 1e-6)
    centre = np.array([np.average(x, weights=w), np.average(y, weights=w)])
    lo, hi = np.array([x.min(), y.min()]), np.array([x.max(), y.max()])
    scale = max(float((hi - lo).max()), 1e-6)
    u, v = (x - centre[0]) / scale, (y - centre[1]) / scale
    a = np.column_stack([np.ones_like(u), u, v])
    lhs = a.T @ (a * w[:, None]) + ridge * w.sum() * np.diag([0.0, 1.0, 1.0])
    coef = np.linalg.solve(lhs, a.T @ (np.column_stack([dx, dy]) * w[:, None]))
    margin = 0.25 * (hi - lo)
    qu = (np.clip(qx, lo[0] - margin[0], hi[0] + margin[0]) - centre[0]) / scale
    qv = (np.clip(qy, lo[1] - margin[1], hi[1] + margin[1]) - centre[1]) / scale
    return (
        coef[0, 0] + coef[1, 0] * qu + coef[2, 0] * qv,
        coef[0, 1] + coef[1, 1] * qu + coef[2, 1] * qv,
    )
