"""SAR and optical side by side before and after alignment: checkerboards and colour overlays on
one coarse north-up grid over the footprint overlap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates

from core.grid import Grid, north_up_grid, transform_points
from models.preprocess import prepare_optical, prepare_sar
from models.qa.figure import (
    GAP_PX,
    HEADER_PX,
    PathLike,
    displacement_source,
    figure,
    image_axes,
    read_decimated,
    save,
)
from models.raster import footprint_overlap, open_raster, read_on_grid


@dataclass(frozen=True)
class PairViews:
    """SAR and optical (before, and after alignment when known) on one coarse north-up grid
    over the footprint overlap; each in [0, 1] with NaN outside data."""

    grid: Grid
    sar: np.ndarray
    before: np.ndarray
    after: np.ndarray | None


def warp_on_grid(
    image: np.ndarray, grid: Grid, displacement_path: PathLike, iterations: int = 4
) -> np.ndarray:
    """``image`` (on ``grid``) as the aligned optical would show it: at map point ``X`` the
    optical content of ``Y`` with ``Y + d(Y) = X`` (fixed-point iteration, as :mod:`models.warp`),
    ``d`` read from the SN9 map decimated to the grid's scale."""
    disp = displacement_source(displacement_path)
    d, fx, fy = read_decimated(displacement_path, [1, 2], max(grid.width, grid.height))
    d = np.nan_to_num(d)
    x, y = grid.pixel_centres()
    px, py = x.copy(), y.copy()
    for _ in range(iterations):
        ox, oy = transform_points(grid.crs, disp.grid.crs, px, py)
        col, row = disp.grid.map_to_pixel(ox, oy)
        # SN9 values sit at pixel corners (x = gt0 + col·gt1); a decimated pixel averages f of them
        coords = np.stack(
            [((row - (fy - 1) / 2) / fy).ravel(), ((col - (fx - 1) / 2) / fx).ravel()]
        )
        ddx = map_coordinates(d[0], coords, order=1, mode="nearest").reshape(x.shape)
        ddy = map_coordinates(d[1], coords, order=1, mode="nearest").reshape(x.shape)
        sx, sy = disp.grid.pixel_to_map(col + ddx, row + ddy)
        sx, sy = transform_points(disp.grid.crs, grid.crs, sx, sy)
        px, py = x - (sx - px), y - (sy - py)
    c, r = grid.map_to_pixel(px, py)
    return (
        map_coordinates(
            image,
            np.stack([(r - 0.5).ravel(), (c - 0.5).ravel()]),
            order=1,
            mode="constant",
            cval=np.nan,
        )
        .reshape(image.shape)
        .astype(np.float32)
    )


def pair_views(
    optical_path: PathLike,
    sar_path: PathLike,
    displacement_path: PathLike | None = None,
    aligned_optical_path: PathLike | None = None,
    max_side: int = 512,
) -> PairViews:
    """SAR, optical and aligned optical resampled onto one north-up grid of ``max_side`` pixels
    (long side) over the footprint overlap; "after" from ``aligned_optical_path`` when given,
    else from the optical warped by ``displacement_path``, else none."""
    o_src, s_src = open_raster(optical_path, "optical"), open_raster(sar_path, "sar")
    crs, overlap = footprint_overlap(o_src, s_src)
    minx, miny, maxx, maxy = overlap.bounds
    grid = north_up_grid(crs, overlap.bounds, max(maxx - minx, maxy - miny) / max(8, max_side))
    sar = prepare_sar(read_on_grid(s_src, grid)[0], dtype=s_src.dtype)
    before = prepare_optical(read_on_grid(o_src, grid))
    after = None
    if aligned_optical_path is not None:
        after = prepare_optical(read_on_grid(open_raster(aligned_optical_path, "optical"), grid))
    elif displacement_path is not None:
        after = warp_on_grid(before, grid, displacement_path)
    return PairViews(grid, sar, before, after)


def _panels(views: PairViews) -> list[tuple[str, np.ndarray]]:
    return [("before", views.before)] + (
        [("after", views.after)] if views.after is not None else []
    )


def _side_by_side(views: PairViews, render, title: str, out_png: PathLike) -> Path:
    panels = _panels(views)
    h, w = views.grid.height, views.grid.width
    fig = figure(len(panels) * w + (len(panels) - 1) * GAP_PX, h + HEADER_PX)
    for i, (name, optical) in enumerate(panels):
        x0 = i * (w + GAP_PX)
        ax = image_axes(fig, x0, HEADER_PX, w, h)
        ax.imshow(render(optical), interpolation="nearest", cmap="gray", vmin=0, vmax=1)
        fig.text(
            (x0 + 4) / fig.bbox.width,
            1 - 6 / fig.bbox.height,
            f"{name}: {title}",
            va="top",
            fontsize=10,
        )
    return save(fig, out_png)


def panel_side(max_side: int, panels: int) -> int:
    """The side of each of ``panels`` panels side by side within ``max_side`` pixels."""
    return max(16, (max_side - (panels - 1) * GAP_PX) // panels)


def checkerboard_image(sar: np.ndarray, optical: np.ndarray, squares: int = 8) -> np.ndarray:
    """Alternating squares of SAR and optical (``squares`` along the long side); 0 where no data."""
    h, w = sar.shape
    cell = max(1, math.ceil(max(h, w) / squares))
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // cell + xx // cell) % 2).astype(bool)
    return np.nan_to_num(np.where(board, sar, optical), nan=0.0)


def overlay_image(sar: np.ndarray, optical: np.ndarray) -> np.ndarray:
    """RGB overlay: SAR in red and blue (magenta), optical luminance in green; aligned
    structures look grey-white, misaligned ones show magenta/green fringes."""
    s, o = np.nan_to_num(sar, nan=0.0), np.nan_to_num(optical, nan=0.0)
    return np.clip(np.dstack([s, o, s]), 0, 1)


def render_checkerboard(views: PairViews, out_png: PathLike, squares: int) -> Path:
    """The before/after checkerboard PNG of ready views."""
    return _side_by_side(
        views,
        lambda opt: checkerboard_image(views.sar, opt, squares),
        "SAR / optical checkerboard",
        out_png,
    )


def render_overlay(views: PairViews, out_png: PathLike) -> Path:
    """The before/after colour-overlay PNG of ready views."""
    return _side_by_side(
        views, lambda opt: overlay_image(views.sar, opt), "SAR (magenta) + optical (green)", out_png
    )


def _views_for_png(
    optical_path: PathLike,
    sar_path: PathLike,
    displacement_path: PathLike | None,
    aligned_optical_path: PathLike | None,
    max_side: int,
) -> PairViews:
    """The views for one picture ``max_side`` wide: a before panel, and an after panel when
    there is an after."""
    panels = 2 if (displacement_path or aligned_optical_path) else 1
    return pair_views(
        optical_path,
        sar_path,
        displacement_path,
        aligned_optical_path,
        panel_side(max_side, panels),
    )


def checkerboard_png(
    optical_path: PathLike,
    sar_path: PathLike,
    out_png: PathLike,
    displacement_path: PathLike | None = None,
    aligned_optical_path: PathLike | None = None,
    max_side: int = 1024,
    squares: int = 8,
) -> Path:
    """Before/after checkerboards of SAR and optical on one coarse grid over their overlap."""
    views = _views_for_png(
        optical_path, sar_path, displacement_path, aligned_optical_path, max_side
    )
    return render_checkerboard(views, out_png, squares)


def overlay_png(
    optical_path: PathLike,
    sar_path: PathLike,
    out_png: PathLike,
    displacement_path: PathLike | None = None,
    aligned_optical_path: PathLike | None = None,
    max_side: int = 1024,
) -> Path:
    """Before/after colour overlays (SAR magenta, optical green) on one coarse grid over the
    overlap."""
    views = _views_for_png(
        optical_path, sar_path, displacement_path, aligned_optical_path, max_side
    )
    return render_overlay(views, out_png)
