"""The displacement as pictures: Middlebury flow colour with its wheel, and a quiver plot.

The flow colour follows Baker et al., "A Database and Evaluation Methodology for Optical Flow"
(IJCV 2011), as in the SpaceNet 9 paper's Fig. 3: hue = direction, saturation = magnitude
relative to the maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from models.qa.figure import (
    DPI,
    GAP_PX,
    HEADER_PX,
    PathLike,
    displacement_source,
    figure,
    image_axes,
    metres_per_pixel,
    read_decimated,
    save,
)


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


def flow_colour_png(displacement_path: PathLike, out_png: PathLike, max_side: int = 1024) -> Path:
    """The SN9 displacement map as a Middlebury flow-colour image, with the colour-wheel legend
    and the maximum shift in optical pixels and metres."""
    src = displacement_source(displacement_path)
    legend_w = 190
    d, _, _ = read_decimated(displacement_path, [1, 2], max_side - legend_w - GAP_PX)
    h, w = d.shape[1:]
    finite = np.isfinite(d[0]) & np.isfinite(d[1])
    max_px = float(np.hypot(d[0], d[1])[finite].max()) if finite.any() else 0.0
    px_m = metres_per_pixel(src.grid)
    fig = figure(w + GAP_PX + legend_w, max(h, 260) + HEADER_PX)
    ax = image_axes(fig, 0, HEADER_PX, w, h)
    ax.imshow(flow_to_colour(d[0], d[1], max_px or None), interpolation="nearest")
    fig.text(
        4 / fig.bbox.width,
        1 - 6 / fig.bbox.height,
        f"displacement (optical → SAR), max {max_px:.2f} px = {max_px * px_m:.2f} m",
        va="top",
        fontsize=10,
    )
    lx, side = w + GAP_PX + 30, legend_w - 60
    leg = image_axes(fig, lx, HEADER_PX + 20, side, side)
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
    return save(fig, out_png)


def quiver_png(
    displacement_path: PathLike, out_png: PathLike, arrows: int = 24, max_side: int = 800
) -> Path:
    """The SN9 displacement as arrows on a coarse lattice (``arrows`` along the long side), over
    the shift magnitude; positions and the arrow key in optical pixels."""
    src = displacement_source(displacement_path)
    d, fx, fy = read_decimated(displacement_path, [1, 2], arrows)
    bg, _, _ = read_decimated(displacement_path, [1, 2], 256)
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
    max_m = max_px * metres_per_pixel(src.grid)
    ax.set_title(
        f"optical → SAR shift, max {max_px:.2f} px ({max_m:.2f} m)\n"
        f"arrows drawn at {1 / scale:.2g} × their length",
        fontsize=10,
    )
    fig.colorbar(im, ax=ax, label="|d| (optical px)", shrink=0.8)
    return save(fig, out_png)
