"""QA pictures people look at before they read numbers (issue 5, item 5).

- before/after **checkerboard** and **colour overlay** of SAR and optical on one coarse
  north-up grid over their overlap; "after" is the aligned optical, or the optical warped
  by the SN9 displacement map on the fly;
- the displacement as a **flow-colour** image in the Middlebury coding (Baker et al., "A
  Database and Evaluation Methodology for Optical Flow", IJCV 2011; as in the SpaceNet 9
  paper's Fig. 3): hue = direction, saturation = magnitude relative to the maximum;
- a **quiver** plot of the displacement on a coarse lattice;
- a **histogram** of tiepoint residuals (``error_m`` of
  :meth:`models.scoring.Score.write_residuals`).

Every picture is bounded to about ``max_side`` pixels and reads decimated windows
(overviews where the file has them), never a whole full-resolution raster. Figures are
drawn on matplotlib's Agg canvas without pyplot (no global state: safe in threads) and
written to a temporary file that is renamed when complete.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rasterio.enums import Resampling
from scipy.ndimage import map_coordinates

from core.errors import InputError
from core.files import atomic_path
from core.grid import Grid, ground_pixel_size, north_up_grid, transform_points
from models.cog import check_output_path
from models.preprocess import prepare_optical, prepare_sar
from models.raster import RasterSource, footprint_overlap, open_raster, read_on_grid

PathLike = str | os.PathLike[str]
DPI = 100
GAP_PX = 8  # white gap between panels
HEADER_PX = 30  # title strip above panels


# ----------------------------------------------------------------------------- reading


def _read_decimated(
    path: PathLike, bands: list[int], max_side: int
) -> tuple[np.ndarray, float, float]:
    """``(bands, h, w)`` float32 with NaN at nodata, long side ≤ ``max_side``; and the column/row
    decimation factors (full-resolution pixels per returned pixel)."""
    with rasterio.open(path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max(1, max_side))
        h, w = max(1, int(round(ds.height / f))), max(1, int(round(ds.width / f)))
        data = ds.read(
            bands, out_shape=(len(bands), h, w), resampling=Resampling.average, masked=True
        )
        out = data.filled(np.nan).astype(np.float32)
        return out, ds.width / w, ds.height / h


def _displacement(path: PathLike) -> RasterSource:
    src = open_raster(path, "displacement")
    if src.count < 2:
        raise InputError(
            f"displacement map {path} has {src.count} band(s); expected 2 (dx, dy), as `coalign register` writes"
        )
    return src


def _metres_per_pixel(grid: Grid) -> float:
    """Ground size of a displacement-map pixel in metres (geometric mean of its two sides), also
    on geographic grids."""
    return math.sqrt(math.prod(ground_pixel_size(grid)))


# ----------------------------------------------------------------------------- flow colour


def middlebury_wheel() -> np.ndarray:
    """The 55-colour Middlebury wheel (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6), ``(55, 3)`` in
    0–255."""
    segments = (
        (15, 0, 1, True),
        (6, 1, 0, False),
        (4, 1, 2, True),
        (11, 2, 1, False),
        (13, 2, 0, True),
        (6, 0, 2, False),
    )
    rows = []
    for n, full, ramp, rising in segments:
        seg = np.zeros((n, 3))
        seg[:, full] = 255
        step = np.floor(255 * np.arange(n) / n)
        # rising: the next primary fades in; falling: the previous one fades out
        seg[:, ramp] = step if rising else 255 - step
        rows.append(seg)
    return np.concatenate(rows)


def flow_to_colour(
    dx: np.ndarray, dy: np.ndarray, max_magnitude: float | None = None
) -> np.ndarray:
    """Middlebury flow colour ``(H, W, 3)`` uint8 of image-axis shifts (``dx`` right, ``dy`` down).

    Magnitudes are divided by ``max_magnitude`` (default: the largest finite one), so full
    saturation means the maximum; beyond it colours darken (× 0.75). NaN shifts are black.
    """
    dx, dy = np.asarray(dx, np.float64), np.asarray(dy, np.float64)
    valid = np.isfinite(dx) & np.isfinite(dy)
    mag = np.hypot(np.where(valid, dx, 0.0), np.where(valid, dy, 0.0))
    scale = float(max_magnitude) if max_magnitude else float(mag.max(initial=0.0))
    scale = scale if scale > 0 else 1.0
    u, v = np.where(valid, dx, 0.0) / scale, np.where(valid, dy, 0.0) / scale
    rad = np.hypot(u, v)
    wheel = middlebury_wheel() / 255.0
    ncols = len(wheel)
    fk = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = (1 - f) * wheel[k0] + f * wheel[k1]
    inside = (rad <= 1 + 1e-6)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    img = np.floor(255 * np.clip(col, 0.0, 1.0)).astype(np.uint8)
    img[~valid] = 0
    return img


def colour_wheel(size: int = 151) -> np.ndarray:
    """The legend: the coding of every shift up to the maximum (white outside the disc)."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    img = flow_to_colour(xx, yy, 1.0)
    img[np.hypot(xx, yy) > 1] = 255
    return img


# ----------------------------------------------------------------------------- figures


def _figure(width_px: int, height_px: int) -> Figure:
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_png: PathLike) -> Path:
    check_output_path(out_png)
    with atomic_path(out_png, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return Path(out_png)


def _image_axes(fig: Figure, x0: int, y0: int, w: int, h: int):
    """Axes covering pixel box (x0, y0 from the top-left) of the figure, drawn 1:1."""
    W, H = fig.get_size_inches() * DPI
    ax = fig.add_axes((x0 / W, 1 - (y0 + h) / H, w / W, h / H))
    ax.set_axis_off()
    return ax


def flow_colour_png(displacement_path: PathLike, out_png: PathLike, max_side: int = 1024) -> Path:
    """The SN9 displacement map as a Middlebury flow-colour image, with the colour-wheel legend
    and the maximum shift in optical pixels and metres."""
    src = _displacement(displacement_path)
    legend_w = 190
    d, _, _ = _read_decimated(displacement_path, [1, 2], max_side - legend_w - GAP_PX)
    h, w = d.shape[1:]
    finite = np.isfinite(d[0]) & np.isfinite(d[1])
    max_px = float(np.hypot(d[0], d[1])[finite].max()) if finite.any() else 0.0
    px_m = _metres_per_pixel(src.grid)
    fig = _figure(w + GAP_PX + legend_w, max(h, 260) + HEADER_PX)
    ax = _image_axes(fig, 0, HEADER_PX, w, h)
    ax.imshow(flow_to_colour(d[0], d[1], max_px or None), interpolation="nearest")
    fig.text(
        4 / fig.bbox.width,
        1 - 6 / fig.bbox.height,
        f"displacement (optical → SAR), max {max_px:.2f} px = {max_px * px_m:.2f} m",
        va="top",
        fontsize=10,
    )
    lx, side = w + GAP_PX + 30, legend_w - 60
    leg = _image_axes(fig, lx, HEADER_PX + 20, side, side)
    leg.imshow(colour_wheel(), interpolation="bilinear")
    for x, y, label, ha, va in (
        (75, -4, "−dy", "center", "bottom"),
        (155, 75, "+dx", "left", "center"),
        (75, 155, "+dy", "center", "top"),
        (-4, 75, "−dx", "right", "center"),
    ):
        leg.text(x, y, label, ha=ha, va=va, fontsize=8)
    fig.text(
        (lx + side / 2) / fig.bbox.width,
        1 - (HEADER_PX + side + 46) / fig.bbox.height,
        f"hue: direction\nsaturation: |d| / {max_px:.1f} px\nblack: no data",
        ha="center",
        va="top",
        fontsize=8,
    )
    return _save(fig, out_png)


def quiver_png(
    displacement_path: PathLike, out_png: PathLike, arrows: int = 24, max_side: int = 800
) -> Path:
    """The SN9 displacement as arrows on a coarse lattice (``arrows`` along the long side), over
    the shift magnitude; positions and the arrow key in optical pixels."""
    src = _displacement(displacement_path)
    d, fx, fy = _read_decimated(displacement_path, [1, 2], arrows)
    bg, _, _ = _read_decimated(displacement_path, [1, 2], 256)
    h, w = d.shape[1:]
    rows, cols = (np.arange(h) + 0.5) * fy, (np.arange(w) + 0.5) * fx
    cc, rr = np.meshgrid(cols, rows)
    mag = np.hypot(d[0], d[1])
    max_px = float(np.nanmax(mag)) if np.isfinite(mag).any() else 0.0
    spacing = max(fx, fy)
    # the longest arrow spans 0.9 lattice cells (a zero field gets a plain picture)
    scale = max_px / (0.9 * spacing) if max_px > 0 else 1.0
    aspect = src.grid.height / src.grid.width
    fw = max_side if aspect <= 1 else max(300, int(max_side / aspect))
    fig = Figure(
        figsize=(fw / DPI, min(max_side, fw * aspect + 90) / DPI), dpi=DPI, layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(
        np.hypot(bg[0], bg[1]),
        cmap="Greys",
        alpha=0.6,
        extent=(0, src.grid.width, src.grid.height, 0),
        interpolation="nearest",
    )
    ax.quiver(
        cc,
        rr,
        np.nan_to_num(d[0]),
        np.nan_to_num(d[1]),
        angles="xy",
        scale_units="xy",
        scale=scale,
        color="#b2182b",
        width=0.004,
    )
    ax.set_xlim(0, src.grid.width)
    ax.set_ylim(src.grid.height, 0)  # image rows grow downwards, as +dy does
    ax.set_xlabel("optical column")
    ax.set_ylabel("optical row")
    max_m = max_px * _metres_per_pixel(src.grid)
    ax.set_title(
        f"optical → SAR shift, max {max_px:.2f} px ({max_m:.2f} m)\n"
        f"arrows drawn at {1 / scale:.2g} × their length",
        fontsize=10,
    )
    fig.colorbar(im, ax=ax, label="|d| (optical px)", shrink=0.8)
    return _save(fig, out_png)


def read_residuals(residuals_csv: PathLike) -> np.ndarray:
    """The ``error_m`` column of a residual CSV (:meth:`models.scoring.Score.write_residuals`)."""
    p = Path(residuals_csv)
    if not p.is_file():
        raise InputError(f"residual file not found: {p}")
    with open(p, newline="") as fh:
        reader = csv.DictReader(fh)
        if "error_m" not in (reader.fieldnames or []):
            raise InputError(
                f"residual file {p} has no error_m column (header {reader.fieldnames}); "
                "give the CSV written by `coalign score --residuals`"
            )
        try:
            err = np.array([float(r["error_m"]) for r in reader], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"residual file {p}: non-numeric error_m ({exc})") from None
    if err.size == 0:
        raise InputError(f"residual file {p} holds no tiepoints")
    return err


def residual_histogram_png(residuals_csv: PathLike, out_png: PathLike) -> Path:
    """Histogram of tiepoint errors (m) with the mean, median and 90th percentile marked."""
    err = read_residuals(residuals_csv)
    finite = err[np.isfinite(err)]
    fig = _figure(760, 400)
    ax = fig.add_axes((0.09, 0.13, 0.88, 0.78))
    ax.hist(finite, bins=int(np.clip(len(finite) // 3, 5, 40)), color="#4477aa", edgecolor="white")
    for name, value, style in (
        ("mean", finite.mean(), "-"),
        ("median", np.median(finite), "--"),
        ("p90", np.percentile(finite, 90), ":"),
    ):
        ax.axvline(value, color="k", linestyle=style, label=f"{name} {value:.2f} m")
    ax.set_xlabel("tiepoint error (m)")
    ax.set_ylabel("tiepoints")
    extra = f", {len(err) - len(finite)} not finite" if len(finite) < len(err) else ""
    ax.set_title(f"residuals at {len(err)} tiepoints{extra}", fontsize=10)
    ax.legend()
    return _save(fig, out_png)


# ----------------------------------------------------------------------------- SAR / optical views


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
    disp = _displacement(displacement_path)
    d, fx, fy = _read_decimated(displacement_path, [1, 2], max(grid.width, grid.height))
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
    fig = _figure(len(panels) * w + (len(panels) - 1) * GAP_PX, h + HEADER_PX)
    for i, (name, optical) in enumerate(panels):
        x0 = i * (w + GAP_PX)
        ax = _image_axes(fig, x0, HEADER_PX, w, h)
        ax.imshow(render(optical), interpolation="nearest", cmap="gray", vmin=0, vmax=1)
        fig.text(
            (x0 + 4) / fig.bbox.width,
            1 - 6 / fig.bbox.height,
            f"{name}: {title}",
            va="top",
            fontsize=10,
        )
    return _save(fig, out_png)


def _panel_side(max_side: int, panels: int) -> int:
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


def _checkerboard(views: PairViews, out_png: PathLike, squares: int) -> Path:
    return _side_by_side(
        views,
        lambda opt: checkerboard_image(views.sar, opt, squares),
        "SAR / optical checkerboard",
        out_png,
    )


def _overlay(views: PairViews, out_png: PathLike) -> Path:
    return _side_by_side(
        views, lambda opt: overlay_image(views.sar, opt), "SAR (magenta) + optical (green)", out_png
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
    panels = 2 if (displacement_path or aligned_optical_path) else 1
    views = pair_views(
        optical_path,
        sar_path,
        displacement_path,
        aligned_optical_path,
        _panel_side(max_side, panels),
    )
    return _checkerboard(views, out_png, squares)


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
    panels = 2 if (displacement_path or aligned_optical_path) else 1
    views = pair_views(
        optical_path,
        sar_path,
        displacement_path,
        aligned_optical_path,
        _panel_side(max_side, panels),
    )
    return _overlay(views, out_png)


def qa_pictures(
    optical: PathLike,
    sar: PathLike,
    displacement: PathLike,
    out_dir: PathLike,
    aligned_optical: PathLike | None = None,
    residuals_csv: PathLike | None = None,
    max_side: int = 1024,
) -> dict[str, Path]:
    """Every QA picture that applies, as ``{name: png_path}``: ``qa_checkerboard``, ``qa_overlay``,
    ``qa_flow``, ``qa_quiver`` and, with residuals, ``qa_residuals``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = pair_views(optical, sar, displacement, aligned_optical, _panel_side(max_side, 2))
    pictures = {
        "qa_checkerboard": _checkerboard(views, out / "qa_checkerboard.png", 8),
        "qa_overlay": _overlay(views, out / "qa_overlay.png"),
        "qa_flow": flow_colour_png(displacement, out / "qa_flow.png", max_side),
        "qa_quiver": quiver_png(displacement, out / "qa_quiver.png"),
    }
    if residuals_csv:
        pictures["qa_residuals"] = residual_histogram_png(residuals_csv, out / "qa_residuals.png")
    return pictures
