"""The aligned-optical product: the optical image resampled by an SN9 displacement map.

With ``D(p) = (dx, dy)`` the SN9 shift at optical pixel ``p``, the ground seen at
``p`` in the optical image lies at ``p + D(p)`` in the SAR frame. The aligned
image shows at ``q`` what the optical image shows at the ``p`` with
``p + D(p) = q``, found by fixed-point iteration ``p ← q − D(p)`` (the field is
smooth, so a few iterations converge). It is written block by block on the
optical grid as a COG; only the optical window each block needs is read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from core.errors import InputError
from core.grid import Grid
from models.cog import CogSpec, check_outputs, write_cog
from models.progress import Progress, block_steps, no_progress
from models.raster import RasterSource, open_raster


def _max_shift(path: str) -> float:
    with rasterio.open(path) as ds:
        f = max(1, max(ds.width, ds.height) // 512)
        d = ds.read(
            [1, 2],
            out_shape=(2, max(1, ds.height // f), max(1, ds.width // f)),
            resampling=Resampling.nearest,
        )
    m = np.nanmax(np.abs(d)) if np.isfinite(d).any() else 0.0
    return float(m)


def _same_placement(a: Grid, b: Grid, tolerance_px: float = 0.01) -> bool:
    """Whether two grids' geotransforms put every corner within ``tolerance_px`` of each other."""
    cols = np.array([0.0, b.width, 0.0, b.width])
    rows = np.array([0.0, 0.0, b.height, b.height])
    ax, ay = a.pixel_to_map(cols, rows)
    bx, by = b.pixel_to_map(cols, rows)
    return bool(np.hypot(ax - bx, ay - by).max() <= tolerance_px * b.resolution)


def check_displacement_map(path: str | os.PathLike[str], optical: RasterSource) -> None:
    """Check that ``path`` is an SN9 displacement map made for ``optical``; InputError otherwise.

    An SN9 map has 2 float bands (described ``dx``, ``dy`` when described at all) on exactly the
    optical grid: same size, CRS and geotransform.

    Args:
        path: The displacement GeoTIFF.
        optical: The opened optical image the map must belong to.
    """
    disp = open_raster(path, "displacement")
    with rasterio.open(path) as ds:
        descriptions = tuple(ds.descriptions)
    what = f"displacement map {path}"
    if disp.count != 2 or not np.issubdtype(np.dtype(disp.dtype), np.floating):
        raise InputError(
            f"{what} has {disp.count} {disp.dtype} band(s); an SN9 displacement map has 2 float "
            "bands (dx, dy): give the map `coalign register` wrote, not an image"
        )
    if any(descriptions) and tuple(d.lower() if d else d for d in descriptions) != ("dx", "dy"):
        raise InputError(
            f"{what} has bands {descriptions}; an SN9 displacement map has bands dx, dy"
        )
    d, o = disp.grid, optical.grid
    problems = []
    if (d.width, d.height) != (o.width, o.height):
        problems.append(f"size {d.width}×{d.height} vs {o.width}×{o.height}")
    if not d.crs.equals(o.crs):
        problems.append(f"CRS {d.crs.to_string()} vs {o.crs.to_string()}")
    if not _same_placement(d, o):
        problems.append(f"geotransform {tuple(d.transform)[:6]} vs {tuple(o.transform)[:6]}")
    if problems:
        raise InputError(
            f"{what} is not on the grid of optical {optical.path} ({'; '.join(problems)}); "
            "give the map made for this image"
        )


def warp_optical(
    optical_path: str | os.PathLike[str],
    displacement_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    iterations: int = 3,
    progress: Progress = no_progress,
) -> Path:
    """Write the aligned optical COG (same grid, bands and type as the optical image).

    Args:
        optical_path: The optical GeoTIFF.
        displacement_path: The SN9 displacement map made for it (2 float bands dx, dy on the
            optical grid); anything else is an InputError.
        out_path: The COG to write; it must not be one of the inputs.
        iterations: Fixed-point iterations inverting the field.
        progress: Called as ``(stage, done, total)`` for the stage ``warp``: one step per
            block written, one for the conversion to a COG.
    """
    check_outputs(
        {"output": out_path}, {"optical": optical_path, "displacement": displacement_path}
    )
    optical = open_raster(optical_path, "optical")
    check_displacement_map(displacement_path, optical)
    margin = int(math.ceil(_max_shift(str(displacement_path)))) + 3
    nodata = optical.nodata if optical.nodata is not None else 0

    with rasterio.open(optical_path) as src, rasterio.open(displacement_path) as dsp:

        def block(window: Window) -> np.ndarray:
            ext = _extended_window(window, margin, src.height, src.width)
            D = np.nan_to_num(dsp.read([1, 2], window=ext).astype(np.float32), nan=0.0)
            return _warp_block(src.read(window=ext), D, window, ext, iterations, float(nodata))

        spec = CogSpec(
            count=optical.count,
            dtype=optical.dtype,
            nodata=nodata,
            descriptions=tuple(src.descriptions[i] or f"band{i + 1}" for i in range(optical.count)),
        )
        with block_steps(progress, "warp", optical.grid, spec.block) as tick:
            return write_cog(out_path, optical.grid, spec, block, tick)


def _extended_window(window: Window, margin: int, height: int, width: int) -> Window:
    """``window`` grown by ``margin`` pixels on every side, clipped to a ``height``×``width``
    raster: the displacement around a block and the optical region the block can draw from."""
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    er0, ec0 = max(0, r0 - margin), max(0, c0 - margin)
    er1, ec1 = min(height, r0 + h + margin), min(width, c0 + w + margin)
    return Window(ec0, er0, ec1 - ec0, er1 - er0)


def _warp_block(
    img: np.ndarray, D: np.ndarray, window: Window, ext: Window, iterations: int, nodata: float
) -> np.ndarray:
    """The aligned pixels of ``window`` drawn from ``img`` (bands × rows × cols read over ``ext``).

    Args:
        img: The optical bands over ``ext``.
        D: The displacement (dx, dy) over ``ext``, float32, NaN replaced by 0.
        window: The output block, on the optical grid.
        ext: The window ``img`` and ``D`` were read over; it contains ``window``.
        iterations: Fixed-point iterations inverting the field.
        nodata: The value of output pixels that fall outside ``img``.
    """
    r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    er0, ec0 = int(ext.row_off), int(ext.col_off)
    qc, qr = np.meshgrid(
        np.arange(c0, c0 + w, dtype=np.float32), np.arange(r0, r0 + h, dtype=np.float32)
    )
    pc, pr = qc.copy(), qr.copy()
    for _ in range(iterations):
        mx, my = pc - ec0, pr - er0
        dx = cv2.remap(D[0], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dy = cv2.remap(D[1], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pc, pr = qc - dx, qr - dy
    mx, my = pc - ec0, pr - er0
    return np.stack(
        [
            cv2.remap(
                b, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=nodata
            )
            for b in img
        ]
    )
