"""``local``: coarse-to-fine local alignment (global prior → tiled area-based levels → smooth dense
field).

1. Priors: ``global-affine``'s ALIKED+LightGlue affine, a coarse CFOG correlation
   of the whole overlap (a translation) and zero; the first level is matched from
   each and its evidence decides, or, where it cannot (small chips, close calls),
   the images' correlation through each first-level field at the next pass.
2. Levels, coarse to fine (working pixel = native pixel × factor): the overlap is
   cut into tiles; each tile reads its optical window and the SAR resampled
   *through the current field* (so residual shifts are small), preprocesses the
   SAR adaptively (:mod:`models.sar_adaptive`), and matches CFOG templates on a
   regular grid (:mod:`models.areamatch`). Tile jobs are pure and picklable:
   they run in-process, in a process pool or on a Dask cluster.
3. Residual vectors are screened (peak, peak margin, agreement with their
   neighbours), turned into a dense residual by thin-plate-spline RBF
   interpolation with per-point smoothing (weaker points are smoothed more),
   blended into the vectors' affine trend where support thins out, and
   composed with the field. A level whose vectors pile up on the border of
   the search window runs again through the updated field.
4. Verification: the field is kept only when its template correlations beat
   those of zero shift clearly (paired test plus a minimum gain); otherwise the
   method returns zero displacement rather than a confident wrong answer.
Confidence is local support density × match quality at the finest level.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from core.errors import InputError
from core.grid import Grid, north_up_grid
from models.areamatch import (
    cfog,
    consistent,
    match_templates,
    ncc_surface,
    neighbour_median,
    second_peak,
)
from models.displacement import DisplacementField, linear_weights
from models.methods.base import (
    Progress,
    RegistrationInput,
    RegistrationResult,
    check_extent,
    config_dict,
    field_grid,
    inlier_confidence,
    no_progress,
    setting,
)
from models.methods.global_affine import (
    MIN_MATCH_SIDE_PX,
    GlobalAffineConfig,
    coarse_resolution,
    fit_global_affine,
)
from models.preprocess import LUMA, prepare_optical, sar_to_db
from models.raster import RasterSource, read_on_grid, sample_points
from models.sar_adaptive import adaptive_sar

log = logging.getLogger(__name__)

# a coarse translation whose correlation peak stands this far above the best other local maximum is
# distinct
DISTINCT_PEAK = 0.02


@dataclass(frozen=True)
class LocalConfig:
    """Settings of ``local``.

    levels: working-pixel factors over the native pixel (the coarser image's), coarse to fine;
    optical_level: when the finer image's pixel is more than 10 % finer than the last level's, one
        more level at
    that pixel (search radius one less), so the optical detail the native pixel blurs is used; it
    counts as the
    first refine pass;
    refine_passes: extra passes at the finest level (search radius one less).
    repeat_saturated / repeat_min_vectors / max_level_repeats: a level whose consistent vectors sit
    on the border of
    the search window in more than this share and at least this number (the residual there is larger
    than the radius,
    so one pass measures only part of it) is run again through the updated field, at most this many
    times.
    prior_margin: the first level tries every prior (global affine, coarse translation, zero) and
        keeps
    the first in that order whose evidence (summed quality of consistent templates) is at least this
    fraction of the best; min_accept_fraction: a finer level whose consistent share of templates is
    below this is skipped (finer than the images' real detail).
    descriptor_sigma_px: CFOG spatial smoothing (working pixels; 1.2 tames SAR speckle better than
        the paper's 0.8, see the README).
    radius_px: search radius per level (working pixels). template_px / spacing_px: template
    side and grid step (working pixels). tile_px: tile core side (working pixels).
    interpolation: sparse-to-dense scheme; sigma_templates: candidate Gaussian scales in template
    sides, chosen per level by held-out prediction of the accepted vectors (the templates
    overlapping the held-out
    one are held out with it: they share its matching error, so the plain leave-one-out always chose
        the finest);
    smoothing: TPS smoothing for a point of quality 1 (normalised coordinates). workers: tile
        processes
    (0 = one per CPU core when a level has several tiles, 1 = in-process);
    dask_address: run tile jobs on that Dask scheduler instead.
    verify: keep the field only when its template correlations beat those of no shift by
        ``verify_z`` standard
    errors and ``verify_min_gain`` (paired over at least ``verify_min_templates`` templates) and
    average at least
    ``verify_min_ncc``; otherwise return zero displacement.
    """

    global_prior: bool = setting(True)
    prior_margin: float = setting(0.7, ge=0, le=1)
    min_accept_fraction: float = setting(0.2, ge=0, le=1)
    optical_level: bool = setting(True)
    refine_passes: int = setting(1, ge=0, le=10)
    repeat_saturated: float = setting(0.1, ge=0, le=1)
    repeat_min_vectors: int = setting(16, ge=1)
    max_level_repeats: int = setting(1, ge=0, le=10)
    features: Literal["aliked", "disk", "aliked+disk"] = setting("aliked")
    global_max_side: int = setting(1024, ge=MIN_MATCH_SIDE_PX, le=16384)
    inlier_threshold_m: float = setting(6.0, gt=0)
    levels: tuple[float, ...] = setting((4.0, 2.0, 1.0), gt=0, le=64)
    radius_px: tuple[int, ...] = setting((12, 6, 3), ge=1, le=128)
    template_px: int = setting(48, ge=8, le=512)
    descriptor_sigma_px: float = setting(1.2, gt=0, le=10)
    spacing_px: int = setting(16, ge=4, le=512)
    tile_px: int = setting(1024, ge=64, le=8192)
    min_peak: float = setting(0.15, ge=-1, le=1)
    min_margin: float = setting(0.01, ge=0, le=2)
    consistency_px: float = setting(1.5, gt=0)
    interpolation: Literal["gaussian", "tps"] = setting("gaussian")
    sigma_templates: tuple[float, ...] = setting((0.5, 1.0, 2.0), gt=0, le=100)
    smoothing: float = setting(1e-3, ge=0)
    # 0: half the template spacing of the last of ``levels``
    field_resolution_m: float = setting(0.0, ge=0)
    verify: bool = setting(True)
    verify_z: float = setting(2.0, ge=0)
    verify_min_gain: float = setting(0.03, ge=0, le=1)
    verify_min_templates: int = setting(16, ge=2)
    verify_min_ncc: float = setting(0.05, ge=-1, le=1)
    workers: int = setting(0, ge=0, le=1024)
    dask_address: str = setting("", text="a Dask scheduler address (host:port), or empty")

    def inconsistency(self) -> str | None:
        """What makes the settings contradict each other (None when they fit together)."""
        if len(self.radius_px) != len(self.levels):
            return (
                f"radius_px needs one value per level ({len(self.levels)} levels: "
                f"{','.join(map(str, self.levels))}), got {len(self.radius_px)}"
            )
        return None


@dataclass(frozen=True)
class TileJob:
    """Everything one tile needs, small and picklable."""

    optical: RasterSource
    sar: RasterSource
    grid: Grid  # tile grid including the margin
    core: tuple[int, int, int, int]  # col0, row0, col1, row1 of the core in ``grid`` pixels
    field: DisplacementField  # current field cropped to the tile
    template: int
    spacing: int
    radius: int
    sigma: float  # CFOG spatial smoothing (working pixels)


@dataclass
class TileResult:
    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray  # metres, map axes
    dy: np.ndarray
    peak: np.ndarray
    margin: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def sar_through_field(sar: RasterSource, grid: Grid, fld: DisplacementField) -> np.ndarray:
    """SAR amplitude sampled at ``X + d(X)`` for every pixel centre ``X`` of ``grid`` (NaN outside).

    GDAL's warper first resamples the SAR window around the displaced tile onto a
    north-up grid at the working pixel (its bilinear kernel widens with the
    scale change of rotated grids, which tames speckle; sampling straight from
    the rotated grid matched worse), then the field is applied by ``remap``.
    """
    x, y = grid.pixel_centres()
    dx, dy = field_on_grid(fld, grid)
    tx, ty = x + dx, y + dy
    res = grid.resolution
    pad = 3 * res
    src_grid = north_up_grid(
        grid.crs, (tx.min() - pad, ty.min() - pad, tx.max() + pad, ty.max() + pad), res
    )
    sar_img = read_on_grid(sar, src_grid)[0]
    col, row = src_grid.map_to_pixel(tx, ty)
    return cv2.remap(
        sar_img,
        (col - 0.5).astype(np.float32),
        (row - 0.5).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def field_on_grid(fld: DisplacementField, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The field's (dx, dy) at every pixel centre of ``grid``: ``fld.sample`` there, done separably.

    When both grids are north-up in one CRS, bilinear interpolation at a
    lattice is two small matrix products (exactly ``sample``'s result);
    otherwise it falls back to sampling point by point.
    """
    a, b = fld.grid.transform, grid.transform
    if fld.grid.is_rotated or grid.is_rotated or fld.grid.crs != grid.crs:
        x, y = grid.pixel_centres()
        dx, dy, _ = fld.sample(x, y)
        return dx, dy
    cols = (b.c + (np.arange(grid.width) + 0.5) * b.a - a.c) / a.a - 0.5
    rows = (b.f + (np.arange(grid.height) + 0.5) * b.e - a.f) / a.e - 0.5
    # only the field cells under the grid take part
    c0 = int(np.clip(np.floor(cols.min()), 0, fld.grid.width - 1))
    c1 = int(np.clip(np.floor(cols.max()) + 2, c0 + 1, fld.grid.width))
    r0 = int(np.clip(np.floor(rows.min()), 0, fld.grid.height - 1))
    r1 = int(np.clip(np.floor(rows.max()) + 2, r0 + 1, fld.grid.height))
    wx = linear_weights(cols - c0, c1 - c0)
    wy = linear_weights(rows - r0, r1 - r0)
    return tuple(
        (wy @ (np.asarray(v[r0:r1, c0:c1], np.float64) @ wx.T)).astype(np.float32)
        for v in (fld.dx, fld.dy)
    )  # type: ignore[return-value]


def read_optical(optical: RasterSource, grid: Grid) -> np.ndarray:
    """Optical luminance (or the single band) sampled at the pixel centres of ``grid`` (NaN
    outside)."""
    x, y = grid.pixel_centres()
    return sample_points(optical, x, y, grid.crs, LUMA if optical.count >= 3 else None)


def match_tile(job: TileJob) -> TileResult:
    """Area-based matching of one tile (the unit of work for pools and Dask)."""
    optical = prepare_optical(read_optical(job.optical, job.grid))
    sar_amp = sar_through_field(job.sar, job.grid, job.field)
    sar, mode = adaptive_sar(sar_to_db(sar_amp, "auto", job.sar.dtype))
    c0, r0, c1, r1 = job.core
    half = job.spacing / 2
    cols = np.arange(c0 + half, c1, job.spacing)
    rows = np.arange(r0 + half, r1, job.spacing)
    cc, rr = np.meshgrid(cols, rows)
    centres = np.column_stack([cc.ravel(), rr.ravel()])
    m = match_templates(
        cfog(optical, sigma=job.sigma),
        cfog(sar, sigma=job.sigma),
        centres,
        job.template,
        job.radius,
    )
    res = job.grid.resolution
    x, y = (
        job.grid.pixel_to_map(m.centres[:, 0], m.centres[:, 1])
        if len(m)
        else (np.zeros(0), np.zeros(0))
    )
    # pixel shifts (x right, y down) → map metres on a north-up grid
    ddx = m.shifts[:, 0] * res
    ddy = -m.shifts[:, 1] * res
    return TileResult(
        np.asarray(x),
        np.asarray(y),
        ddx,
        ddy,
        m.peak,
        m.margin,
        {"sar_mode": mode, "templates": len(centres), "matches": len(m)},
    )


def _tiles(
    level_grid: Grid, tile: int, margin: int
) -> list[tuple[Grid, tuple[int, int, int, int]]]:
    out = []
    for r in range(0, level_grid.height, tile):
        for c in range(0, level_grid.width, tile):
            c1, r1 = min(c + tile, level_grid.width), min(r + tile, level_grid.height)
            g = level_grid.window_grid(
                c - margin, r - margin, c1 - c + 2 * margin, r1 - r + 2 * margin
            )
            out.append((g, (margin, margin, margin + c1 - c, margin + r1 - r)))
    return out


def _crop_field(fld: DisplacementField, grid: Grid) -> DisplacementField:
    """The part of the field under ``grid`` (plus a border) so tile jobs stay small."""
    fp = grid.footprint_in(fld.grid.crs)
    c, r = fld.grid.map_to_pixel(*np.asarray(fp.exterior.coords).T)
    c0, r0 = max(0, int(c.min()) - 2), max(0, int(r.min()) - 2)
    c1, r1 = (
        min(fld.grid.width, int(math.ceil(c.max())) + 2),
        min(fld.grid.height, int(math.ceil(r.max())) + 2),
    )
    if c1 <= c0 or r1 <= r0:
        return fld
    sub = fld.grid.window_grid(c0, r0, c1 - c0, r1 - r0)
    return DisplacementField(
        sub, fld.dx[r0:r1, c0:c1], fld.dy[r0:r1, c0:c1], fld.confidence[r0:r1, c0:c1]
    )


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """Make this process end as soon as process ``parent`` (its parent) is gone.

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``; it
    fires when the thread that started this process ends, and a pool's workers are started by
    the thread that maps the tiles, which outlives the pool); everywhere a daemon thread also
    checks every ``poll_s`` seconds whether this process was handed to another parent.
    Without this, spawn workers of a killed run live on, and so does multiprocessing's
    resource tracker, which waits for them.

    Args:
        parent: PID of the process that started this one.
        poll_s: Seconds between the watch thread's checks.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this C library: the thread still watches
            pass
    if os.getppid() != parent:  # the parent died before the above took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent, poll_s), name="coalign-parent-watch", daemon=True
    ).start()


def _worker_init(parent: int) -> None:
    # one tile per process: OpenCV's own threads would only contend with the other workers
    cv2.setNumThreads(1)
    die_with_parent(parent)


class TilePool:
    """A process pool for tile jobs, started on first use and kept for every level of one run.

    Its workers end with the process that started them (:func:`die_with_parent`).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn, jobs):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool.map(fn, jobs)

    def close(self, abandon: bool = False) -> None:
        """Stop the workers: after the tiles running finish, or at once when ``abandon`` (an
        error or a signal ended the run: queued tiles are cancelled, running ones killed)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abandon:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=abandon)

    def __enter__(self) -> TilePool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(abandon=exc_type is not None)


def run_tiles(
    jobs: list[TileJob],
    conf: LocalConfig,
    progress: Progress,
    stage: str,
    pool: TilePool | None = None,
) -> list[TileResult]:
    """Run tile jobs in-process, in a process pool, or on Dask; results keep job order."""
    progress(stage, 0, len(jobs))
    if conf.dask_address:
        from dask.distributed import Client

        with Client(conf.dask_address) as client:
            futures = client.map(match_tile, jobs, pure=False)
            results = client.gather(futures)
        progress(stage, len(jobs), len(jobs))
        return list(results)
    workers = conf.workers or min(os.cpu_count() or 1, 4)
    if workers > 1 and len(jobs) > 1:
        p = TilePool(workers) if pool is None else pool
        try:
            results = []
            for i, r in enumerate(p.map(match_tile, jobs)):
                results.append(r)
                progress(stage, i + 1, len(jobs))
        except BaseException:
            if pool is None:
                p.close(abandon=True)
            raise
        if pool is None:
            p.close()
        return results
    results = []
    for i, job in enumerate(jobs):
        results.append(match_tile(job))
        progress(stage, i + 1, len(jobs))
    return results


def _normalised_convolution(shape, r, c, quality, dx, dy, sigma, near: np.ndarray | None = None):
    """Quality-weighted Gaussian averages of (dx, dy) on a grid, and held-out predictions at the
    points.

    The held-out prediction of a point leaves out the point itself and its
    ``near`` pairs (index pairs), so vectors whose templates overlap it, and so
    share its matching error, do not predict it.
    """
    from scipy.ndimage import gaussian_filter, gaussian_filter1d

    w = np.zeros(shape, np.float64)
    np.add.at(w, (r, c), quality)
    den = gaussian_filter(w, sigma, mode="constant")
    # the discrete kernel gaussian_filter applies along each axis (so held-out sums are exact)
    reach = int(4.0 * sigma + 0.5)
    delta = np.zeros(2 * reach + 1)
    delta[reach] = 1.0
    k1 = gaussian_filter1d(delta, sigma, mode="constant")
    pairs = np.zeros((0, 2), int) if near is None else near
    i, j = (
        np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(len(r))]),
        np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(len(r))]),
    )
    dr, dc = r[i] - r[j], c[i] - c[j]
    inside = (np.abs(dr) <= reach) & (np.abs(dc) <= reach)
    i, j = i[inside], j[inside]
    kw = quality[j] * k1[reach + dr[inside]] * k1[reach + dc[inside]]
    near_w = np.bincount(i, kw, len(r))
    out, held = [], []
    for v in (dx, dy):
        a = np.zeros(shape, np.float64)
        np.add.at(a, (r, c), quality * v)
        num = gaussian_filter(a, sigma, mode="constant")
        out.append(num / np.maximum(den, 1e-12))
        held.append(
            (num[r, c] - np.bincount(i, kw * v[j], len(r))) / np.maximum(den[r, c] - near_w, 1e-12)
        )
    return out[0], out[1], np.hypot(held[0] - dx, held[1] - dy)


def choose_sigma(
    grid: Grid, x, y, dx, dy, quality, candidates_m: list[float], template_m: float = 0.0
) -> float:
    """The smoothing scale whose held-out prediction of the vectors is best (median error).

    ``template_m``: template side; vectors closer than that (overlapping
    templates, correlated errors) are held out together, else the smallest
    scale would always win by fitting the shared error.
    """
    col, row = grid.map_to_pixel(x, y)
    c = np.clip(np.floor(col).astype(int), 0, grid.width - 1)
    r = np.clip(np.floor(row).astype(int), 0, grid.height - 1)
    # templates overlap when their centres are closer than a side along both axes
    near = (
        cKDTree(np.column_stack([x, y])).query_pairs(
            template_m * (1 - 1e-9), p=np.inf, output_type="ndarray"
        )
        if template_m > 0
        else None
    )
    scores = []
    for s_m in candidates_m:
        err = _normalised_convolution(
            grid.shape, r, c, quality, dx, dy, max(s_m / grid.resolution, 0.5), near
        )[2]
        scores.append(float(np.median(err)))
    return candidates_m[int(np.argmin(scores))]


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
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse residual vectors → dense residual on ``grid``, blending into their global trend away
    from support.

    ``gaussian``: normalised convolution (quality-weighted Gaussian average with
    scale ``sigma_m``), linear in the number of points and grid cells, so it
    scales to whole scenes. ``tps``: thin-plate-spline RBF with per-point
    smoothing ``smoothing / quality`` (the sparse-to-dense of several SN9 winners).
    Where the points thin out (borders, featureless ground) the residual blends
    into :func:`residual_trend`, so a shift carried by a level does not decay
    towards the edges of the overlap.
    """
    from scipy.ndimage import gaussian_filter

    col, row = grid.map_to_pixel(x, y)
    gx, gy = grid.pixel_centres()
    sigma = max(sigma_m / grid.resolution, 0.5)
    w = np.zeros(grid.shape, np.float64)
    c = np.clip(np.floor(col).astype(int), 0, grid.width - 1)
    r = np.clip(np.floor(row).astype(int), 0, grid.height - 1)
    np.add.at(w, (r, c), quality)
    den = gaussian_filter(w, sigma, mode="constant")
    # support: 1 where points are as dense as one per few cells of the kernel, fading beyond
    typical = float(np.percentile(den[den > 0], 75)) if (den > 0).any() else 1.0
    fade = den / (den + 0.1 * typical)
    if interpolation == "tps":
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
        out = np.concatenate([rbf(q[s : s + 200_000]) for s in range(0, len(q), 200_000)])
        rdx, rdy = out[:, 0].reshape(grid.shape), out[:, 1].reshape(grid.shape)
    else:
        rdx, rdy = _normalised_convolution(grid.shape, r, c, quality, dx, dy, sigma)[:2]
    tdx, tdy = residual_trend(x, y, dx, dy, quality, gx, gy)
    return (rdx * fade + tdx * (1 - fade)).astype(np.float32), (
        rdy * fade + tdy * (1 - fade)
    ).astype(np.float32)


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
    return coef[0, 0] + coef[1, 0] * qu + coef[2, 0] * qv, coef[0, 1] + coef[1, 1] * qu + coef[
        2, 1
    ] * qv


def saturated_share(
    x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, limit: float
) -> float:
    """Share of vectors on the border of their search window (``±limit``) whose neighbours lean the
    same way.

    Such a vector is a lower bound: the residual there is at least the radius.
    A peak that lands on the border by chance (most of a small window is
    border) has neighbours near zero and does not count; it must be beyond
    half the radius, on the same side, in the neighbours' median.
    """
    if len(x) < 4:
        return 0.0
    med, _ = neighbour_median(np.column_stack([x, y]), np.column_stack([dx, dy]))
    edge = limit * (1 - 1e-6)
    lean = [
        (np.abs(v) >= edge) & (np.sign(m) == np.sign(v)) & (np.abs(m) >= 0.5 * limit)
        for v, m in ((dx, med[:, 0]), (dy, med[:, 1]))
    ]
    return round(float((lean[0] | lean[1]).mean()), 3)


def level_templates(
    side: int, template_px: int, spacing_px: int, min_template: int = 24
) -> tuple[int, int]:
    """Template side and grid step for a level whose overlap is ``side`` pixels across.

    The configured template when two fit across; on smaller overlaps (whose templates
    would hang over the no-data border) a third of the side, down to ``min_template``,
    in multiples of 8 so templates stay on a block lattice.
    """
    if side >= 2 * template_px:
        return template_px, spacing_px
    template = max(min_template, min(template_px, side // 3 // 8 * 8))
    return template, max(8, spacing_px * template // template_px // 8 * 8)


def level_schedule(conf: LocalConfig, finest_factor: float) -> list[tuple[float, int]]:
    """(factor over the native pixel, search radius) of every pass, coarse to fine, refine passes
    included.

    ``finest_factor``: the finer image's pixel over the native pixel.
    """
    schedule = list(zip(conf.levels, conf.radius_px, strict=False))
    refine = conf.refine_passes
    if conf.optical_level and finest_factor < 0.9 * conf.levels[-1]:
        # it re-matches after warping, at a finer pixel: it stands in for the first refine pass
        schedule.append((finest_factor, max(2, conf.radius_px[-1] - 1)))
        refine = max(0, refine - 1)
    factor, radius = schedule[-1]
    return schedule + [(factor, max(2, radius - 1))] * refine


def level_layout(
    pair: RegistrationInput, conf: LocalConfig, res: float, radius: int
) -> tuple[Grid, int, int, bool]:
    """A level's grid over the overlap, its template side and step, and whether one template plus
    search fits."""
    level_grid = north_up_grid(pair.crs, pair.overlap.bounds, res)
    template, spacing = level_templates(min(level_grid.shape), conf.template_px, conf.spacing_px)
    return level_grid, template, spacing, min(level_grid.shape) >= template + 2 * radius


def min_level_side(conf: LocalConfig, radius: int) -> int:
    """Fewest working pixels across the overlap for a level with search ``radius`` to fit one
    template (shrunk on small overlaps as :func:`level_templates` does) plus its search."""
    side = 1
    while side < level_templates(side, conf.template_px, conf.spacing_px)[0] + 2 * radius:
        side += 1
    return side


def min_overlap(pair: RegistrationInput, conf: LocalConfig) -> tuple[float, str]:
    """The narrowest overlap (metres) on which some pass of the schedule fits, and that pass in
    words (its template and search in working pixels)."""
    native = pair.native_resolution()
    needs = []
    for factor, radius in level_schedule(conf, pair.finest_resolution() / native):
        side = min_level_side(conf, radius)
        template = level_templates(side, conf.template_px, conf.spacing_px)[0]
        needs.append((side * native * factor, template, radius, native * factor))
    metres, template, radius, res = min(needs)
    return metres, f"one {template}-pixel template plus its +-{radius}-pixel search at {res:.2f} m"


def level_jobs(
    pair: RegistrationInput, conf: LocalConfig, fld: DisplacementField, res: float, radius: int
) -> tuple[dict[str, Any], list[TileJob] | None]:
    """The tile jobs of one level (None when the overlap is too small for it)."""
    level_grid, template, spacing, fits = level_layout(pair, conf, res, radius)
    margin = template // 2 + radius + 2
    info: dict[str, Any] = {
        "resolution_m": res,
        "radius_px": radius,
        "template_px": template,
        "spacing_px": spacing,
    }
    if not fits:
        info["skipped"] = "overlap smaller than one template plus search"
        return info, None
    jobs = [
        TileJob(
            pair.optical,
            pair.sar,
            g,
            core,
            _crop_field(fld, g),
            template,
            spacing,
            radius,
            conf.descriptor_sigma_px,
        )
        for g, core in _tiles(level_grid, conf.tile_px, margin)
    ]
    return info, jobs


def _template_scores(tiles: list[TileResult]) -> dict[tuple[int, int], float]:
    """Correlation per template, keyed by its centre (decimetres) so two passes over one grid pair
    up."""
    return {
        (int(round(x * 10)), int(round(y * 10))): float(p)
        for t in tiles
        for x, y, p in zip(t.x, t.y, t.peak, strict=False)
    }


def template_correlations(
    pair: RegistrationInput,
    conf: LocalConfig,
    fields: list[DisplacementField],
    res: float,
    progress: Progress = no_progress,
    pool: TilePool | None = None,
    max_tiles: int = 0,
) -> list[dict[tuple[int, int], float]] | None:
    """Per field, every template's CFOG correlation with the SAR seen through it (no search) at
    working pixel ``res``.

    Keyed by template centre (decimetres), so the fields' scores pair up
    template by template; all fields' tiles go to the pool in one batch. None
    when the overlap is too small for a template at ``res``. ``max_tiles``: at
    most that many tiles, evenly spread over the overlap (0: all), each holding
    thousands of templates, so a comparison on a whole scene stays cheap.
    """
    batches: list[list[TileJob]] = []
    for fld in fields:
        jobs = level_jobs(pair, conf, fld, res, 0)[1]
        if jobs is None:
            return None
        if max_tiles and len(jobs) > max_tiles:
            jobs = [jobs[int(i)] for i in np.linspace(0, len(jobs) - 1, max_tiles).round()]
        batches.append(jobs)
    tiles = run_tiles([job for jobs in batches for job in jobs], conf, progress, "verify", pool)
    out, at = [], 0
    for jobs in batches:
        out.append(_template_scores(tiles[at : at + len(jobs)]))
        at += len(jobs)
    return out


def _template_count(pair: RegistrationInput, conf: LocalConfig, res: float) -> int:
    """Templates a level at ``res`` would have over the overlap (before screening)."""
    level_grid, _, spacing, fits = level_layout(pair, conf, res, 0)
    return (level_grid.width // spacing) * (level_grid.height // spacing) if fits else 0


def pass_resolutions(pair: RegistrationInput, conf: LocalConfig) -> list[float]:
    """The distinct working pixels of the schedule's passes (metres), coarse to fine."""
    native = pair.native_resolution()
    return [
        native * f
        for f in sorted(
            {f for f, _ in level_schedule(conf, pair.finest_resolution() / native)}, reverse=True
        )
    ]


def resolution_with_templates(pair: RegistrationInput, conf: LocalConfig, minimum: int) -> float:
    """Working pixel of the coarsest pass with at least ``minimum`` templates over the overlap
    (cheap, and gross
    failures show at any scale); on small overlaps, of the pass with the most templates (the optical
    level
    included), so a small chip is still judged on as many as it has."""
    resolutions = pass_resolutions(pair, conf)
    counts = [_template_count(pair, conf, res) for res in resolutions]
    plenty = next((res for res, n in zip(resolutions, counts, strict=False) if n >= minimum), None)
    return plenty if plenty is not None else resolutions[int(np.argmax(counts))]


def paired_gain(
    better: dict[tuple[int, int], float],
    base: dict[tuple[int, int], float],
    keys: list[tuple[int, int]],
) -> tuple[float, float]:
    """Mean per-template correlation gain of ``better`` over ``base`` on ``keys``, and its z score
    (paired test)."""
    if len(keys) < 2:
        return 0.0, 0.0
    gain = np.array([better[k] - base[k] for k in keys])
    return float(gain.mean()), float(
        gain.mean() / max(gain.std(ddof=1) / math.sqrt(len(gain)), 1e-9)
    )


def structural_agreement(
    pair: RegistrationInput,
    fld: DisplacementField,
    conf: LocalConfig | None = None,
    max_side: int = 1024,
) -> tuple[float, int]:
    """Mean CFOG correlation of optical and SAR templates when the SAR is seen through ``fld`` (no
    search), and the count.

    A method-independent check of a field, reference fields included: pairs
    that line up score well above zero (0.1–0.4 on the real pairs), a field
    that leaves them misaligned scores near zero. The grid is the native pixel,
    coarsened so the overlap is at most ``max_side`` pixels across.
    """
    conf = conf or LocalConfig()
    side_m = max(
        pair.overlap.bounds[2] - pair.overlap.bounds[0],
        pair.overlap.bounds[3] - pair.overlap.bounds[1],
    )
    scores = template_correlations(
        pair, conf, [fld], max(pair.native_resolution(), side_m / max_side)
    )
    if not scores or not scores[0]:
        return float("nan"), 0
    return float(np.mean(list(scores[0].values()))), len(scores[0])


def coarse_translation(
    pair: RegistrationInput, result: RegistrationResult
) -> tuple[float, float, float] | None:
    """Whole-overlap CFOG correlation at a coarse scale: a translation (map metres) when learned
    matching fails, and
    the peak's distinctness (how far it stands above the best other local maximum); None when the
    overlap is too
    small for the search."""
    res = coarse_resolution(pair, 256)
    grid = pair.grid_over(pair.overlap, res)
    optical = cfog(prepare_optical(read_on_grid(pair.optical, grid)))
    sar, _ = adaptive_sar(sar_to_db(read_on_grid(pair.sar, grid)[0], "auto", pair.sar.dtype))
    sar_d = cfog(sar)
    h, w = grid.shape
    radius = max(4, int(0.2 * min(h, w)))
    tpl = min(h, w) - 2 * radius - 2
    if tpl < 16:
        return None
    y0, x0 = (h - tpl) // 2, (w - tpl) // 2
    surface = ncc_surface(
        sar_d[:, y0 - radius : y0 + tpl + radius, x0 - radius : x0 + tpl + radius],
        optical[:, y0 : y0 + tpl, x0 : x0 + tpl],
    )
    _, peak, _, (pc, pr) = cv2.minMaxLoc(surface)
    distinct = float(peak - second_peak(surface, pr, pc))
    result.details["coarse_translation_peak"] = round(float(peak), 4)
    result.details["coarse_translation_distinctness"] = round(distinct, 4)
    sx, sy = pc - radius, pr - radius
    return float(sx * res), float(-sy * res), distinct


def _nothing_measured(result: RegistrationResult) -> str:
    """The warning of a run that ends with zero shift without a field to verify."""
    accepted = sum(info.get("accepted", 0) for info in result.details.get("levels", []))
    return (
        f"local measured no displacement ({accepted} consistent template vectors over "
        f"{len(result.details.get('levels', []))} passes, {result.matches} feature matches): "
        "returning zero shift with confidence 0"
    )


class LocalMethod:
    name: ClassVar[str] = "local"
    version: ClassVar[str] = "1.5.0"
    description: ClassVar[str] = (
        "Global LightGlue affine prior, then coarse-to-fine tiled CFOG template matching through the current "
        "field with adaptive SAR preprocessing, neighbour-consistency screening, thin-plate-spline RBF "
        "sparse-to-dense and a final check against zero shift. For non-rigid misalignment (terrain, look geometry): the default."
    )
    Config: ClassVar[type] = LocalConfig

    def run(
        self, pair: RegistrationInput, conf: LocalConfig, progress: Progress = no_progress
    ) -> RegistrationResult:
        """Register the pair coarse to fine and verify the field against zero shift.

        Degenerate inputs: an image or an overlap narrower than the least the schedule needs
        (one template plus its search at the pass where that is smallest in metres,
        :func:`min_overlap`) is refused with an InputError before any work. A pair that is
        large enough but where no field is measured or verified (featureless ground, too few
        consistent templates) gives zero shift with confidence 0 and a warning in the result.

        Args:
            pair: The pair to register.
            conf: The method's settings.
            progress: Called as ``(stage, done, total)``.

        Raises:
            InputError: Settings that contradict each other, or a pair too small to register.
        """
        problem = conf.inconsistency()
        if problem:
            raise InputError(f"{self.name} settings: {problem}")
        check_extent(pair, self.name, *min_overlap(pair, conf))
        native = pair.native_resolution()
        last_level = native * conf.levels[-1]
        resolution = conf.field_resolution_m or max(last_level * conf.spacing_px / 2, native)
        grid = field_grid(pair, resolution)
        result = RegistrationResult(
            self.name, self.version, config_dict(conf), DisplacementField.constant(grid)
        )
        priors = self._priors(pair, conf, grid, result, progress)
        with TilePool(
            conf.workers or min(os.cpu_count() or 1, 4)
        ) as pool:  # started on first use, kept for all levels
            result.field = self._levels(pair, conf, priors, result, progress, pool)
            if conf.verify:
                result.field = self._verify(pair, conf, result, progress, pool)
        rejected = not result.details.get("verify", {}).get("passed", True)  # already warned
        if not rejected and not (np.any(result.field.dx) or np.any(result.field.dy)):
            result.warnings.append(_nothing_measured(result))
        return result

    def _verify(
        self, pair, conf: LocalConfig, result: RegistrationResult, progress, pool: TilePool | None
    ) -> DisplacementField:
        """The field, or zero when it does not explain the images better than no shift.

        Every template's CFOG correlation through the field is paired with its
        correlation with no shift. A field that moves the pair by more than two
        verification pixels is kept only when the mean gain is at least
        ``verify_min_gain`` and ``verify_z`` standard errors (a one-sided paired
        test; the field was fitted to these correlations, so it gains a little
        even on unrelated images); a field that barely moves it is kept unless it
        is significantly worse, judged at the finest pass (a correction of a pixel
        or less is noise at the coarse pass: there, zero shift beat the field that
        took the real CFOG tiepoints from 0.95 to 0.71 px). So a wrong prior or a level fooled by
        repetitive
        texture cannot leave the pair worse than it came.
        """
        if not (np.any(result.field.dx) or np.any(result.field.dy)):
            return result.field  # nothing moved: nothing to check
        # screening drops many templates: ask for plenty
        res = resolution_with_templates(pair, conf, 16 * conf.verify_min_templates)
        zero = DisplacementField.constant(result.field.grid)
        moved = float(np.median(np.hypot(result.field.dx, result.field.dy)))
        finest = pass_resolutions(pair, conf)[-1]
        scores = None
        with result.timed("verify"):
            if moved <= 2 * res and finest < res:
                # a field that barely moves the pair corrects by a pixel or less: judged where such
                # a shift shows
                fine = template_correlations(
                    pair, conf, [result.field, zero], finest, progress, pool, max_tiles=4
                )
                if (
                    fine is not None
                    and len(set(fine[0]) & set(fine[1])) >= conf.verify_min_templates
                ):
                    res, scores = finest, fine
            if scores is None:
                scores = template_correlations(
                    pair, conf, [result.field, zero], res, progress, pool
                )
        if scores is None:
            return result.field
        common = sorted(set(scores[0]) & set(scores[1]))
        gain, z = paired_gain(scores[0], scores[1], common)
        check: dict[str, Any] = {"resolution_m": round(res, 3), "templates": len(common)}
        if len(common) >= 2:
            check.update(mean_gain=round(gain, 4), z=round(z, 2))
        field_ncc = float(np.mean([scores[0][k] for k in common])) if common else 0.0
        check["mean_ncc"] = round(field_ncc, 4)
        check["median_shift_m"] = round(moved, 2)
        if len(common) < conf.verify_min_templates:
            passed = False
        elif moved <= 2 * res:
            # near zero either way: keep the field unless it is significantly worse
            passed = z > -conf.verify_z
        else:
            # a fitted field gains a little even on unrelated images (about 0.01 on synthetic
            # pairs): demand more
            # and the images must line up through it at all: aligned real pairs correlate at
            # 0.1–0.4, while a field
            # through which they still barely correlate has shown a gain over no shift, not an
            # alignment
            passed = (
                z >= conf.verify_z
                and gain >= conf.verify_min_gain
                and field_ncc >= conf.verify_min_ncc
            )
        check["passed"] = bool(passed)
        result.details["verify"] = check
        if passed:
            return result.field
        result.warnings.append(
            f"the local field does not match the images better than no shift ({len(common)} templates, "
            f"mean correlation gain {check.get('mean_gain', 0.0)}, z = {check.get('z', 0.0)}, "
            f"mean correlation through it {check['mean_ncc']}); "
            "returning zero displacement with zero confidence"
        )
        return zero

    def _levels(
        self,
        pair,
        conf: LocalConfig,
        priors,
        result: RegistrationResult,
        progress,
        pool: TilePool | None = None,
    ) -> DisplacementField:
        native = pair.native_resolution()
        result.details["levels"] = []
        # the refinement loop: re-match at the finest level after warping by the refined field
        schedule = level_schedule(conf, pair.finest_resolution() / native)
        # the first level decides between the priors: the one whose warp leaves the most consistent
        # evidence
        # every prior's tiles go to the pool together (one batch keeps all workers busy)
        first = next(
            (i for i, (f, r) in enumerate(schedule) if level_layout(pair, conf, native * f, r)[3]),
            0,
        )
        for f, r in schedule[:first]:
            result.details["levels"].append(level_jobs(pair, conf, priors[-1][1], native * f, r)[0])
        schedule = schedule[first:]
        res0, radius0 = native * schedule[0][0], schedule[0][1]
        staged = [
            (name, prior, *level_jobs(pair, conf, prior, res0, radius0)) for name, prior in priors
        ]
        all_jobs = [job for *_, jobs in staged for job in (jobs or [])]
        with result.timed("level0_match"):
            all_tiles = (
                run_tiles(
                    all_jobs,
                    conf,
                    progress,
                    f"level 1/{len(schedule)} tiles ({len(priors)} priors)",
                    pool,
                )
                if all_jobs
                else []
            )
        trials, at = [], 0
        for name, prior, info, jobs in staged:
            if jobs is None:
                fld = prior
            else:
                fld, info = self._level_finish(
                    conf, prior, res0, 0, info, all_tiles[at : at + len(jobs)], result
                )
                at += len(jobs)
            trials.append((info.get("evidence", 0.0), name, fld, info))
        # priority order (learned affine, coarse translation, zero) unless a later prior has clearly
        # more evidence
        best = max(t[0] for t in trials)
        evidence, name, fld, info = next(t for t in trials if t[0] >= conf.prior_margin * best)
        few = max(t[3].get("accepted", 0) for t in trials) < conf.verify_min_templates
        if few or sum(t[0] >= conf.prior_margin * best for t in trials) > 1:
            # too few templates fit the first level to decide (small overlaps), or several priors
            # come close: the
            # images' correlation through each first-level field decides, judged at the next pass
            # (the first level's
            # own templates fitted these fields) or, where too few templates fit there, at the pass
            # with the most
            judge = [
                native * schedule[min(1, len(schedule) - 1)][0],
                resolution_with_templates(pair, conf, 16 * conf.verify_min_templates),
            ]
            evidence, name, fld, info = self._prior_by_correlation(
                pair, conf, trials, name, judge, result, progress, pool
            )
        result.details["prior"] = name
        result.details["prior_evidence"] = {t[1]: round(t[0], 2) for t in trials}
        result.details["levels"].append(info)
        fld = self._repeat_saturated(
            pair, conf, fld, info, 0, len(schedule), result, progress, pool
        )
        for level, (factor, radius) in enumerate(schedule[1:], start=1):
            fld, info = self._level(
                pair,
                conf,
                fld,
                native * factor,
                radius,
                level,
                len(schedule),
                result,
                progress,
                pool,
            )
            result.details["levels"].append(info)
            fld = self._repeat_saturated(
                pair, conf, fld, info, level, len(schedule), result, progress, pool
            )
        return fld

    def _prior_by_correlation(
        self,
        pair,
        conf: LocalConfig,
        trials,
        default: str,
        resolutions: list[float],
        result,
        progress,
        pool: TilePool | None,
    ):
        """The ``default`` first-level trial, unless the images correlate significantly better
        through another's field.

        Mean template CFOG correlation with no search at the first working pixel of
        ``resolutions`` where at least ``verify_min_templates`` templates are kept by
        every field (else at the last one, given four); the best trial
        replaces the default when it is better template by template by
        ``verify_z`` standard errors and by ``verify_min_gain`` on average, as in
        the final verification (so noise between fields that agree does not
        overturn the priority order; a wrong prior loses by far more).
        """
        chosen = next(i for i, t in enumerate(trials) if t[1] == default)
        for res in dict.fromkeys(resolutions):  # each distinct pass once
            with result.timed("prior_correlation"):
                scores = template_correlations(
                    pair, conf, [t[2] for t in trials], res, progress, pool, max_tiles=4
                )
            common = sorted(set.intersection(*(set(s) for s in scores))) if scores else []
            if len(common) >= conf.verify_min_templates:
                break
        if len(common) < 4:
            return trials[chosen]
        means = [float(np.mean([s[k] for k in common])) for s in scores]
        best = int(np.argmax(means))
        gain, z = paired_gain(scores[best], scores[chosen], common)
        result.details["prior_correlation"] = {
            "resolution_m": round(res, 3),
            "templates": len(common),
            "z": round(z, 2),
            **{t[1]: round(m, 4) for t, m in zip(trials, means, strict=False)},
        }
        return (
            trials[best] if z >= conf.verify_z and gain >= conf.verify_min_gain else trials[chosen]
        )

    def _repeat_saturated(
        self,
        pair,
        conf: LocalConfig,
        fld: DisplacementField,
        info: dict[str, Any],
        level: int,
        n_levels: int,
        result,
        progress,
        pool: TilePool | None,
    ) -> DisplacementField:
        """Run a level again while too many of its consistent vectors sit on the border of the
        search window.

        Such a vector is a lower bound: the residual there exceeds the search
        radius (a strongly non-rigid field the coarser level smoothed over). Its
        direction is right, so the field moved that way, and matching again
        through it measures the rest (given enough such vectors to tell: a share of a
        handful is noise). A repeat that does not at least halve that
        share did not converge (the border peaks were not a residual beyond the
        radius but a pull of ambiguous texture), so its field is dropped. Costs
        nothing where levels converge.
        """
        for _ in range(conf.max_level_repeats):
            share = info.get("saturated", 0.0)
            if (
                "skipped" in info
                or share <= conf.repeat_saturated
                or share * info.get("accepted", 0) < conf.repeat_min_vectors
            ):
                break
            inliers = result.inliers
            again, info = self._level(
                pair,
                conf,
                fld,
                info["resolution_m"],
                info["radius_px"],
                level,
                n_levels,
                result,
                progress,
                pool,
            )
            info["repeat"] = (
                "kept"
                if "skipped" not in info and info.get("saturated", 0.0) <= 0.5 * share
                else "dropped: did not converge"
            )
            result.details["levels"].append(info)
            if info["repeat"] != "kept":
                result.inliers = inliers  # the dropped field's support does not count
                break
            fld = again
        return fld

    def _priors(
        self, pair, conf: LocalConfig, grid: Grid, result: RegistrationResult, progress
    ) -> list[tuple[str, DisplacementField]]:
        """Candidate starting fields: the global affine, a coarse CFOG translation, and zero."""
        priors: list[tuple[str, DisplacementField]] = []
        if conf.global_prior:
            ga = GlobalAffineConfig(
                features=conf.features,
                max_side=conf.global_max_side,
                inlier_threshold_m=conf.inlier_threshold_m,
            )
            fit, _, _ = fit_global_affine(pair, ga, result, progress)
            if fit is not None:
                result.inliers = fit.n_inliers
                priors.append(
                    ("global-affine", DisplacementField.from_function(grid, fit.displacement, 0.0))
                )
        with result.timed("coarse_translation"):
            t = coarse_translation(pair, result)
        zero = ("zero", DisplacementField.constant(grid))
        if t is None:
            return priors + [zero]
        translation = DisplacementField.constant(grid, t[0], t[1], 0.0)
        if t[2] >= DISTINCT_PEAK:
            return priors + [("coarse-translation", translation), zero]
        # an ambiguous peak (another almost as high elsewhere) is tried after zero: it is kept only
        # when the first
        # level's evidence or the images' correlation through it clearly favours it
        return priors + [zero, ("coarse-translation-ambiguous", translation)]

    def _level(
        self,
        pair,
        conf: LocalConfig,
        fld: DisplacementField,
        res: float,
        radius: int,
        level: int,
        n_levels: int,
        result,
        progress,
        pool: TilePool | None = None,
    ) -> tuple[DisplacementField, dict[str, Any]]:
        info, jobs = level_jobs(pair, conf, fld, res, radius)
        if jobs is None:
            return fld, info
        with result.timed(f"level{level}_match"):
            tiles = run_tiles(jobs, conf, progress, f"level {level + 1}/{n_levels} tiles", pool)
        return self._level_finish(conf, fld, res, level, info, tiles, result)

    def _level_finish(
        self,
        conf: LocalConfig,
        fld: DisplacementField,
        res: float,
        level: int,
        info: dict[str, Any],
        tiles: list[TileResult],
        result,
    ) -> tuple[DisplacementField, dict[str, Any]]:
        """Screen a level's vectors and compose their dense residual with the field."""
        with result.timed(f"level{level}_dense"):
            x, y, dx, dy, peak, marg = (
                np.concatenate([getattr(t, k) for t in tiles])
                for k in ("x", "y", "dx", "dy", "peak", "margin")
            )
            modes = [t.info["sar_mode"] for t in tiles]
            info.update(
                tiles=len(tiles),
                templates=int(sum(t.info["templates"] for t in tiles)),
                candidates=int(len(x)),
                sar_modes={m: modes.count(m) for m in set(modes)},
            )
            keep = (peak >= conf.min_peak) & (marg >= conf.min_margin)
            pts = np.column_stack([x, y])
            ok = np.zeros(len(x), bool)
            if keep.sum() >= 4:
                ok[np.flatnonzero(keep)] = consistent(
                    pts[keep], np.column_stack([dx, dy])[keep], tolerance=conf.consistency_px * res
                )
            info["accepted"] = int(ok.sum())
            info["saturated"] = saturated_share(
                x[ok], y[ok], dx[ok], dy[ok], info["radius_px"] * res
            )
            result.matches += int(len(x))
            if level > 0 and ok.sum() < conf.min_accept_fraction * max(len(x), 1):
                # most templates disagree: this level is finer than the images' real detail
                result.warnings.append(
                    f"level {level + 1}: only {int(ok.sum())}/{len(x)} templates consistent; level skipped"
                )
                info["skipped"] = "too few consistent templates"
                return fld, info
            if ok.sum() < 4:
                info["evidence"] = 0.0
                if level > 0:
                    result.warnings.append(
                        f"level {level + 1}: only {int(ok.sum())} reliable templates; field kept"
                    )
                return fld, info
            quality = np.clip((peak[ok] - conf.min_peak) / (1 - conf.min_peak), 0, 1) * np.clip(
                marg[ok] / 0.1, 0.2, 1
            )
            info["evidence"] = float(quality.sum())
            spacing_m = info["spacing_px"] * res
            sigma_m = choose_sigma(
                fld.grid,
                x[ok],
                y[ok],
                dx[ok],
                dy[ok],
                quality,
                [f * info["template_px"] * res for f in conf.sigma_templates],
                info["template_px"] * res,
            )
            info["sigma_m"] = round(sigma_m, 2)
            rdx, rdy = dense_residual(
                fld.grid,
                x[ok],
                y[ok],
                dx[ok],
                dy[ok],
                quality,
                sigma_m,
                conf.interpolation,
                conf.smoothing,
            )
            # the residual was measured after warping by the field: d'(X) = r(X) + d(X + r(X))
            gx, gy = fld.grid.pixel_centres()
            pdx, pdy, _ = fld.sample(gx + rdx, gy + rdy)
            support = inlier_confidence(fld.grid, x[ok], y[ok], radius_m=2 * spacing_m)
            confidence = np.clip(support * (0.5 + float(np.median(quality))), 0, 1)
            result.inliers = max(result.inliers, int(ok.sum()))
            return DisplacementField(
                fld.grid,
                (rdx + pdx).astype(np.float32),
                (rdy + pdy).astype(np.float32),
                confidence.astype(np.float32),
            ), info
