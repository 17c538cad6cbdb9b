"""Bilinear samples of rasters at map points: from a file's window, or from an array in memory."""

from __future__ import annotations

import math

import cv2
import numpy as np
import rasterio
from pyproj import CRS
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from core.grid import Grid, same_crs, transform_points
from models.raster import RasterSource, pixel_window, reading, valid_mask

__all__ = ["sample_array", "sample_grid", "sample_points"]

# map position cv2.remap is given for points without one (far outside any image)
OUTSIDE = -1e6


def sample_array(image: np.ndarray, grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an in-memory raster ``image`` on ``grid`` at map points ``(x, y)`` of
    the grid's CRS (arrays of one shape); NaN outside the image or next to NaN pixels.

    Args:
        image: A 2-D float32 raster whose pixel ``(row, col)`` covers that pixel of ``grid``.
        grid: The grid of ``image``.
        x: Map x of the points.
        y: Map y of the points.
    """
    if grid.is_north_up:
        # each pixel coordinate depends on one map coordinate (the same values as
        # ``map_to_pixel``, whose cross terms are zero), worked out in place
        inv = ~grid.transform
        col = np.multiply(x, inv.a, dtype=np.float64)
        col += inv.c
        row = np.multiply(y, inv.e, dtype=np.float64)
        row += inv.f
    else:
        col, row = grid.map_to_pixel(x, y)
    col -= 0.5
    row -= 0.5
    return _remap(image, col.astype(np.float32), row.astype(np.float32))


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``image`` sampled bilinearly at fractional pixel positions (NaN outside)."""
    return cv2.remap(
        image,
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def sample_points(
    source: RasterSource,
    x: np.ndarray,
    y: np.ndarray,
    crs: CRS,
    band_weights: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Bilinear samples of ``source`` at map points ``(x, y)`` of ``crs`` (a 2-D lattice), float32,
    NaN outside data.

    Only the source window under the points is read, decimated to about the
    points' spacing. ``band_weights`` combines bands into one before sampling
    (e.g. luminance); otherwise the first band is sampled.

    Args:
        source: The raster.
        x: Map x of the points.
        y: Map y of the points.
        crs: The CRS of the points.
        band_weights: Weights of the bands combined, or None for the first band.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.size == 0:
        return np.full(x.shape, np.nan, np.float32)
    sx, sy = transform_points(crs, source.grid.crs, x, y)
    col, row = source.grid.map_to_pixel(sx, sy)
    return _sample_pixels(source, col, row, band_weights)


def sample_grid(
    source: RasterSource, grid: Grid, band_weights: tuple[float, ...] | None = None
) -> np.ndarray:
    """:func:`sample_points` at every pixel centre of ``grid``, ``(height, width)`` float32.

    When both grids are north-up in one CRS, a source column depends only on the
    grid's column and a row only on its row: the positions are worked out once per
    column and per row (the same values as point by point).

    Args:
        source: The raster.
        grid: The grid whose pixel centres are sampled.
        band_weights: Weights of the bands combined, or None for the first band.
    """
    north_up = grid.is_north_up and source.grid.is_north_up
    if not north_up or not same_crs(grid.crs, source.grid.crs):
        x, y = grid.pixel_centres()
        return sample_points(source, x, y, grid.crs, band_weights)
    x, y = grid.centre_axes()
    inv = ~source.grid.transform
    col = inv.a * x + inv.c
    row = inv.e * y + inv.f
    return _sample_pixels(source, col[None, :], row[:, None], band_weights)


def _sample_pixels(
    source: RasterSource,
    col: np.ndarray,
    row: np.ndarray,
    band_weights: tuple[float, ...] | None,
) -> np.ndarray:
    """``source`` at fractional pixel positions ``(col, row)`` of its grid (arrays that
    broadcast to the 2-D lattice of the points; NaN for points without a position)."""
    shape = np.broadcast_shapes(col.shape, row.shape)
    out = np.full(shape, np.nan, np.float32)
    finite = np.isfinite(col) & np.isfinite(row)
    everywhere = bool(finite.all())
    if not everywhere and not finite.any():
        return out
    cols = col if everywhere else np.broadcast_to(col, shape)[finite]
    rows = row if everywhere else np.broadcast_to(row, shape)[finite]
    under = pixel_window(source, cols, rows, 3)
    if under is None:
        return out
    c0, r0 = int(under.col_off), int(under.row_off)
    c1, r1 = c0 + int(under.width), r0 + int(under.height)
    scale = _point_spacing(np.broadcast_to(col, shape), np.broadcast_to(row, shape))
    # decimation by exact block averages of full-resolution pixels: a file's overviews may be
    # nearest-neighbour subsamples (speckle and aliasing), so they are not used
    factor = max(1, int(round(scale)))
    c0, r0 = c0 // factor * factor, r0 // factor * factor
    c1, r1 = (
        c0 + _whole_blocks(c1 - c0, source.grid.width - c0, factor),
        r0 + _whole_blocks(r1 - r0, source.grid.height - r0, factor),
    )
    window = Window(c0, r0, c1 - c0, r1 - r0)
    weights = band_weights if band_weights and len(band_weights) <= source.count else (1.0,)
    with reading(source.path, source.role), rasterio.open(source.path) as ds:
        img, ok = _read_luminance(ds, source, window, weights, factor)
    ratio = scale / factor
    if ratio > 1.2:
        # the rest of the size reduction: widen bilinear's kernel as GDAL's warper does (extra
        # variance (r² − 1) / 6)
        sigma = math.sqrt((ratio * ratio - 1.0) / 6.0)
        filled = np.where(ok, img, 0.0).astype(np.float32)
        weight = cv2.GaussianBlur(ok.astype(np.float32), (0, 0), sigma)
        img = cv2.GaussianBlur(filled, (0, 0), sigma) / np.maximum(weight, 1e-6)
        ok = weight > 0.5
    img[~ok] = np.nan
    maps = []
    for pos, origin in ((col, c0), (row, r0)):
        m = np.broadcast_to(((pos - origin) / factor - 0.5).astype(np.float32), shape)
        m = np.ascontiguousarray(m) if everywhere else np.where(finite, m, np.float32(OUTSIDE))
        maps.append(m)
    return _remap(img, *maps)


def _point_spacing(col: np.ndarray, row: np.ndarray) -> float:
    """Source pixels per point spacing, from the 2-D lattice's local Jacobian at its centre (1
    when the lattice has no 2 × 2 cell or no finite Jacobian there)."""
    if col.ndim != 2 or min(col.shape) < 2:
        return 1.0
    i, j = min(col.shape[0] // 2, col.shape[0] - 2), min(col.shape[1] // 2, col.shape[1] - 2)
    det = (col[i, j + 1] - col[i, j]) * (row[i + 1, j] - row[i, j]) - (
        col[i + 1, j] - col[i, j]
    ) * (row[i, j + 1] - row[i, j])
    return math.sqrt(abs(det)) if math.isfinite(det) else 1.0


def _whole_blocks(length: int, available: int, factor: int) -> int:
    """``length`` rounded up to whole blocks of ``factor`` (down when the raster ends first)."""
    up = -(-length // factor) * factor
    if up <= available:
        return up
    return max(available // factor * factor, min(length, available))


def _block_sums(a: np.ndarray, factor: int) -> np.ndarray:
    """Sums of the ``factor × factor`` blocks of ``a`` (sides multiples of ``factor``), float64:
    exact for integer pixels; rows of blocks first, along contiguous memory."""
    h, w = a.shape
    rows = a.reshape(h // factor, factor, w).sum(axis=1, dtype=np.float64)
    return rows.reshape(h // factor, w // factor, factor).sum(axis=2)


def _read_luminance(
    ds: rasterio.io.DatasetReader,
    source: RasterSource,
    window: Window,
    weights: tuple[float, ...],
    factor: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``1..len(weights)`` of ``window`` combined with ``weights`` as float32, averaged
    over ``factor × factor`` blocks of full-resolution pixels when ``factor > 1`` (partial
    blocks at the end padded as no data), and where it is valid (a block is valid when all of
    its pixels are).

    Each band is reduced to block sums as it is read (exact for integer pixels), so no
    full-resolution float copy of a decimated window is made; a file whose mask says every
    pixel is valid (no nodata, no mask band) has no mask read.
    """
    h, w = int(window.height), int(window.width)
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor
    all_valid = source.nodata is None and all(
        MaskFlags.all_valid in flags for flags in ds.mask_flag_enums[: len(weights)]
    )
    ok = None if all_valid else ds.read_masks(1, window=window) > 0
    total = np.zeros((ph // factor, pw // factor), np.float64 if factor > 1 else np.float32)
    for band, wgt in enumerate(weights, start=1):
        data = ds.read(band, window=window, masked=False)
        if ok is not None or np.issubdtype(data.dtype, np.floating):
            valid = valid_mask(data, source.nodata)
            ok = valid if ok is None else ok & valid
        if factor == 1:
            total += np.float32(wgt) * data.astype(np.float32, copy=False)
            continue
        if ok is not None:
            data = np.where(ok, data, 0)
        total += wgt * _block_sums(np.pad(data, ((0, ph - h), (0, pw - w))), factor)
        del data
    if factor == 1:
        return total, np.ones(total.shape, bool) if ok is None else ok
    if ok is None:
        ok_blocks = np.ones(total.shape, bool)
        ok_blocks[h // factor :, :] = False  # partial blocks at the end (none when h divides)
        ok_blocks[:, w // factor :] = False
    else:
        padded = np.pad(ok, ((0, ph - h), (0, pw - w))).astype(np.uint8)
        ok_blocks = _block_sums(padded, factor) == factor * factor
    return (total / (factor * factor)).astype(np.float32), ok_blocks
