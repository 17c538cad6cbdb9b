"""What every QA picture shares: bounded, decimated reads of a raster, and Agg figures drawn
without pyplot (no global state: safe in threads) written atomically."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import rasterio
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rasterio.enums import Resampling

from core.errors import InputError
from core.files import atomic_path
from core.grid import Grid, ground_pixel_size
from models.cog import check_output_path
from models.raster import RasterSource, open_raster

PathLike = str | os.PathLike[str]
DPI = 100
GAP_PX = 8  # white gap between panels
HEADER_PX = 30  # title strip above panels


def read_decimated(
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


def displacement_source(path: PathLike) -> RasterSource:
    """The SN9 displacement map at ``path``, which must have the two bands dx, dy."""
    src = open_raster(path, "displacement")
    if src.count < 2:
        raise InputError(
            f"displacement map {path} has {src.count} band(s); expected 2 (dx, dy), as "
            "`coalign register` writes"
        )
    return src


def metres_per_pixel(grid: Grid) -> float:
    """Ground size of a displacement-map pixel in metres (geometric mean of its two sides), also
    on geographic grids."""
    return math.sqrt(math.prod(ground_pixel_size(grid)))


def figure(width_px: int, height_px: int) -> Figure:
    """A white Agg figure of ``width_px`` × ``height_px`` pixels."""
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_png: PathLike) -> Path:
    """Write ``fig`` as the PNG ``out_png`` (complete or not at all)."""
    check_output_path(out_png)
    with atomic_path(out_png, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return Path(out_png)


def image_axes(fig: Figure, x0: int, y0: int, w: int, h: int):
    """Axes covering pixel box (x0, y0 from the top-left) of the figure, drawn 1:1."""
    W, H = fig.get_size_inches() * DPI
    ax = fig.add_axes((x0 / W, 1 - (y0 + h) / H, w / W, h / H))
    ax.set_axis_off()
    return ax
