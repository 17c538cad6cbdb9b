"""QA pictures people look at before they read numbers.

All pictures are bounded to ``max_side`` pixels and read decimated windows
(overviews where present), never whole full-resolution rasters.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402

from models.cog import atomic_path  # noqa: E402
from models.grid import north_up_grid  # noqa: E402
from models.preprocess import prepare_optical, prepare_sar  # noqa: E402
from models.raster import footprint_overlap, open_raster, read_on_grid  # noqa: E402


def _read_decimated(path: str | os.PathLike[str], bands: list[int], max_side: int) -> np.ndarray:
    with rasterio.open(path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (len(bands), max(1, int(ds.height / f)), max(1, int(ds.width / f)))
        return ds.read(bands, out_shape=shape, resampling=Resampling.average).astype(np.float32)


def _save(fig, out_png: str | os.PathLike[str]) -> Path:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(out_png)


def flow_to_colour(dx: np.ndarray, dy: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Middlebury flow colour coding (Baker et al. 2011): hue = direction, saturation = magnitude."""
    ry, yg, gc, cb, bm, mr = 15, 6, 4, 11, 13, 6
    ncols = ry + yg + gc + cb + bm + mr
    wheel = np.zeros((ncols, 3))
    col = 0
    for n, (a, b) in zip((ry, yg, gc, cb, bm, mr), ((0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2))):
        ramp = np.arange(n) / n
        if col in (0, ry + yg, ry + yg + gc + cb):  # rising segments
            wheel[col : col + n, a] = 255
            wheel[col : col + n, b] = 255 * ramp
        else:
            wheel[col : col + n, b] = 255
            wheel[col : col + n, a] = 255 - 255 * ramp
        col += n
    mag = np.hypot(dx, dy)
    valid = np.isfinite(mag)
    scale = max_magnitude or (float(np.nanmax(mag)) if valid.any() else 1.0) or 1.0
    u, v = np.nan_to_num(dx / scale), np.nan_to_num(dy / scale)
    rad = np.sqrt(u * u + v * v)
    angle = np.arctan2(-v, -u) / np.pi
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = fk - k0
    img = np.zeros(dx.shape + (3,), np.uint8)
    for i in range(3):
        c = ((1 - f) * wheel[k0, i] + f * wheel[k1, i]) / 255
        c = np.where(rad <= 1, 1 - rad * (1 - c), c * 0.75)
        img[..., i] = np.floor(255 * c)
    img[~valid] = 0
    return img


def flow_colour_png(displacement: str | os.PathLike[str], out_png: str | os.PathLike[str], max_side: int = 1024) -> Path:
    d = _read_decimated(displacement, [1, 2], max_side)
    with rasterio.open(displacement) as ds:
        px = abs(ds.transform.a)
    mag = float(np.nanmax(np.hypot(d[0], d[1]))) if np.isfinite(d).any() else 0.0
    fig, (ax, leg) = plt.subplots(1, 2, figsize=(9, 7), gridspec_kw={"width_ratios": [6, 1]})
    ax.imshow(flow_to_colour(d[0], d[1]))
    ax.set_title(f"displacement (max {mag:.1f} px = {mag * px:.1f} m)")
    ax.axis("off")
    yy, xx = np.mgrid[-1:1:101j, -1:1:101j]
    wheel = flow_to_colour(xx, yy, 1.0)
    wheel[np.hypot(xx, yy) > 1] = 255
    leg.imshow(wheel)
    leg.set_title("direction")
    leg.axis("off")
    return _save(fig, out_png)


def quiver_png(displacement: str | os.PathLike[str], out_png: str | os.PathLike[str], arrows: int = 24) -> Path:
    d = _read_decimated(displacement, [1, 2], arrows)
    fig, ax = plt.subplots(figsize=(7, 7))
    h, w = d.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w]
    # dy is in optical rows (down); the plot's y axis points down too
    mag = np.hypot(d[0], d[1])
    # a zero field still gets a picture (matplotlib cannot autoscale zero-length arrows)
    scale = None if np.nanmax(mag) > 0 else 1.0
    ax.quiver(xx, yy, d[0], d[1], mag, angles="xy", cmap="viridis", scale=scale)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("optical → SAR shift (optical pixels)")
    return _save(fig, out_png)


def residual_histogram_png(residuals_csv: str | os.PathLike[str], out_png: str | os.PathLike[str]) -> Path:
    with open(residuals_csv, newline="") as fh:
        err = np.array([float(r["error_m"]) for r in csv.DictReader(fh)])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(err, bins=min(40, max(5, len(err) // 3)), color="#4477aa")
    for name, value, style in (("mean", err.mean(), "-"), ("median", np.median(err), "--"), ("p90", np.percentile(err, 90), ":")):
        ax.axvline(value, color="k", linestyle=style, label=f"{name} {value:.2f} m")
    ax.set_xlabel("tiepoint error (m)")
    ax.set_ylabel("tiepoints")
    ax.legend()
    return _save(fig, out_png)


def checkerboard_png(
    optical: str | os.PathLike[str],
    sar: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    aligned_optical: str | os.PathLike[str] | None = None,
    max_side: int = 768,
    squares: int = 8,
) -> Path:
    """Before/after checkerboards of SAR and optical on one coarse grid over their overlap."""
    o_src, s_src = open_raster(optical, "optical"), open_raster(sar, "sar")
    crs, overlap = footprint_overlap(o_src, s_src)
    minx, miny, maxx, maxy = overlap.bounds
    grid = north_up_grid(crs, overlap.bounds, max(maxx - minx, maxy - miny) / max_side)
    sar_img = prepare_sar(read_on_grid(s_src, grid)[0], dtype=s_src.dtype)
    panels = [("before", prepare_optical(read_on_grid(o_src, grid)))]
    if aligned_optical:
        panels.append(("after", prepare_optical(read_on_grid(open_raster(aligned_optical, "optical"), grid))))
    yy, xx = np.mgrid[0 : grid.height, 0 : grid.width]
    cell = max(grid.height, grid.width) // squares or 1
    board = ((yy // cell + xx // cell) % 2).astype(bool)
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 7), squeeze=False)
    for ax, (title, opt) in zip(axes[0], panels):
        ax.imshow(np.where(board, sar_img, opt), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title}: SAR / optical checkerboard")
        ax.axis("off")
    return _save(fig, out_png)


def qa_pictures(
    optical: str | os.PathLike[str],
    sar: str | os.PathLike[str],
    displacement: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    aligned_optical: str | os.PathLike[str] | None = None,
    residuals_csv: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Every QA picture that applies, as ``{name: png_path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pictures = {
        "qa_checkerboard": checkerboard_png(optical, sar, out / "qa_checkerboard.png", aligned_optical),
        "qa_flow": flow_colour_png(displacement, out / "qa_flow.png"),
        "qa_quiver": quiver_png(displacement, out / "qa_quiver.png"),
    }
    if residuals_csv:
        pictures["qa_residuals"] = residual_histogram_png(residuals_csv, out / "qa_residuals.png")
    return pictures
