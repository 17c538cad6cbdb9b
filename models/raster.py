"""Opening optical and SAR GeoTIFFs and reading them onto a working grid, by windows.

Nothing here reads a whole raster unless the destination grid needs all of it:
:func:`read_on_grid` reads only the source window under the destination grid,
decimated (through overviews when the file has them) when the destination is
coarser than the source, then warps that window with GDAL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import rasterio
from pyproj import CRS
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.warp import reproject
from rasterio.windows import Window
from shapely.geometry import LineString

from core.errors import InputError
from core.grid import Grid, metric_crs_for, reproject_geometry, transform_points
from models.affine_resample import WINDOW_PAD, plain_bilinear, warp_affine

Role = Literal["optical", "sar", "displacement", "raster"]


def gdal_detail(exc: BaseException) -> str:
    """GDAL's own message behind a rasterio error (rasterio's is often "Read failed. See
    previous exception"); the error's text when there is none."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, CPLE_BaseError) and str(cause):
        return str(cause)
    return str(exc)


@contextmanager
def reading(path: str, role: str) -> Iterator[None]:
    """Turn a failed read of the raster at ``path`` into an InputError that names the file.

    Args:
        path: The raster being read.
        role: What the raster is to the user (optical, sar, displacement, raster).
    """
    try:
        yield
    except (RasterioError, CPLE_BaseError) as exc:
        raise InputError(
            f"{role} file {path} could not be read ({gdal_detail(exc)}); it is truncated or "
            "corrupt: copy or download it again"
        ) from exc


@dataclass(frozen=True)
class RasterSource:
    """An opened-and-checked raster file: where it is and how it is georeferenced."""

    path: str
    role: Role
    grid: Grid
    count: int
    dtype: str
    nodata: float | None

    @property
    def name(self) -> str:
        return Path(self.path).name


def open_raster(path: str | os.PathLike[str], role: Role = "raster") -> RasterSource:
    """Open a raster and check what ``role`` needs.

    optical: 1 band (panchromatic) or 3+ bands (RGB first); SAR: 1 band
    (amplitude or intensity). The CRS must exist; a geographic CRS is accepted
    (work then happens in the local UTM zone).
    """
    p = str(path)
    if "://" not in p and not p.startswith("/vsi") and not Path(p).exists():
        raise InputError(f"{role} file not found: {p} (check the path)")
    try:
        with rasterio.open(p) as ds:
            count, dtype, nodata = ds.count, ds.dtypes[0], ds.nodata
            crs, transform, width, height = ds.crs, ds.transform, ds.width, ds.height
            gcps, _ = ds.gcps
    except RasterioIOError as exc:
        raise InputError(
            f"{role} file {p} is not a readable raster ({exc}); give a GeoTIFF"
        ) from exc
    if crs is None:
        hint = (
            " (it has GCPs only: orthorectify or warp it to a map grid first, e.g. gdalwarp)"
            if gcps
            else ""
        )
        raise InputError(
            f"{role} file {p} has no CRS{hint}; georeference it (e.g. gdal_edit.py -a_srs "
            "EPSG:xxxx) and retry"
        )
    if transform.is_identity:
        raise InputError(f"{role} file {p} has no geotransform; georeference it and retry")
    if role == "optical" and count == 2:
        raise InputError(
            f"optical file {p} has {count} bands; expected 1 (panchromatic) or 3+ (RGB first)"
        )
    if role == "sar" and count != 1:
        raise InputError(
            f"SAR file {p} has {count} bands; expected 1 amplitude band "
            "(extract one with gdal_translate -b 1, or give the GEC amplitude product)"
        )
    grid = Grid(CRS.from_user_input(crs.to_wkt()), transform, width, height)
    source = RasterSource(p, role, grid, count, dtype, nodata)
    with reading(p, role):
        any_valid = role not in ("optical", "sar") or has_valid_pixels(source)
    if not any_valid:
        raise InputError(f"{role} file {p} holds no valid pixels (all nodata); check the file")
    return source


def valid_mask(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where a (bands, H, W) or (H, W) array holds data in every band."""
    a = array if array.ndim == 3 else array[None]
    ok = np.ones(a.shape[1:], dtype=bool)
    for band in a:
        ok &= np.isfinite(band) if np.issubdtype(band.dtype, np.floating) else True
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            ok &= band != nodata
    return ok


def has_valid_pixels(source: RasterSource, max_side: int = 256) -> bool:
    """Whether any pixel holds data, judged on a decimated read (overviews when present)."""
    with rasterio.open(source.path) as ds:
        f = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (ds.count, max(1, int(ds.height / f)), max(1, int(ds.width / f)))
        data = ds.read(out_shape=shape, resampling=Resampling.nearest)
    return bool(valid_mask(data, source.nodata).any())


def _source_window(source: RasterSource, dst: Grid, pad: int = WINDOW_PAD) -> Window | None:
    """The source pixel window under the destination grid (None when they do not overlap)."""
    footprint = reproject_geometry(dst.footprint_in(dst.crs), dst.crs, source.grid.crs)
    xs, ys = np.asarray(footprint.exterior.coords).T
    cols, rows = source.grid.map_to_pixel(xs, ys)
    c0 = max(0, int(math.floor(cols.min())) - pad)
    r0 = max(0, int(math.floor(rows.min())) - pad)
    c1 = min(source.grid.width, int(math.ceil(cols.max())) + pad)
    r1 = min(source.grid.height, int(math.ceil(rows.max())) + pad)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _ground_scale(source: RasterSource, dst: Grid) -> float:
    """How many source pixels fit in one destination pixel (>1: destination is coarser)."""
    centre = dst.footprint().centroid
    side = dst.resolution
    probe = LineString(
        [(centre.x, centre.y), (centre.x + side, centre.y), (centre.x, centre.y + side)]
    )
    pts = reproject_geometry(probe, dst.crs, source.grid.crs)
    (x0, y0), (x1, y1), (x2, y2) = pts.coords
    c, r = source.grid.map_to_pixel(np.array([x0, x1, x2]), np.array([y0, y1, y2]))
    return float(math.sqrt(abs((c[1] - c[0]) * (r[2] - r[0]) - (c[2] - c[0]) * (r[1] - r[0]))))


def read_on_grid(
    source: RasterSource,
    dst: Grid,
    bands: list[int] | None = None,
    resampling: Resampling = Resampling.bilinear,
) -> np.ndarray:
    """Read ``source`` resampled onto ``dst`` as float32 ``(bands, H, W)``; NaN outside data.

    Works for any source and destination CRS and affine transform, rotated
    included (GDAL's warper applies the full geotransform).
    """
    bands = bands or list(range(1, source.count + 1))
    out = np.full((len(bands), dst.height, dst.width), np.nan, dtype=np.float32)
    window = _source_window(source, dst)
    if window is None:
        return out
    scale = _ground_scale(source, dst)
    # Decimate while reading when the destination is much coarser: bounded memory
    # and GDAL uses the file's overviews when they exist.
    factor = max(1, int(math.floor(scale / 1.5))) if scale > 1.5 else 1
    out_h = max(1, int(math.ceil(window.height / factor)))
    out_w = max(1, int(math.ceil(window.width / factor)))
    with reading(source.path, source.role), rasterio.open(source.path) as ds:
        data = ds.read(
            bands,
            window=window,
            out_shape=(len(bands), out_h, out_w),
            resampling=Resampling.average if factor > 1 else Resampling.nearest,
            masked=False,
        ).astype(np.float32)
        mask = ds.read_masks(
            1, window=window, out_shape=(out_h, out_w), resampling=Resampling.nearest
        )
    ok = valid_mask(data, source.nodata) & (mask > 0)
    data[:, ~ok] = np.nan
    src_transform = ds.window_transform(window) @ rasterio.Affine.scale(
        window.width / out_w, window.height / out_h
    )
    if resampling == Resampling.bilinear and plain_bilinear(source.grid, dst, window, ok):
        return warp_affine(data, src_transform, dst)
    for i in range(len(bands)):
        # NaN marks no data; a band without any takes GDAL's faster kernels that check no
        # validity mask (the same values: every weight falls on valid pixels)
        reproject(
            source=data[i],
            destination=out[i],
            src_transform=src_transform,
            src_crs=source.grid.crs.to_wkt(),
            src_nodata=np.nan if not ok.all() else None,
            dst_transform=dst.transform,
            dst_crs=dst.crs.to_wkt(),
            dst_nodata=np.nan,
            resampling=resampling,
        )
    return out


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


def sample_array(image: np.ndarray, grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an in-memory raster ``image`` on ``grid`` at map points ``(x, y)`` of
    the grid's CRS (arrays of one shape); NaN outside the image or next to NaN pixels.

    Args:
        image: A 2-D float32 raster whose pixel ``(row, col)`` covers that pixel of ``grid``.
        grid: The grid of ``image``.
        x: Map x of the points.
        y: Map y of the points.
    """
    col, row = grid.map_to_pixel(x, y)
    return cv2.remap(
        image,
        (col - 0.5).astype(np.float32),
        (row - 0.5).astype(np.float32),
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

    The fast path of the tiled methods: only the source window under the points
    is read, decimated by exact block averages of its full-resolution pixels to
    about the points' spacing, and sampled with ``cv2.remap`` straight from the
    source's own (possibly rotated) pixel grid: one interpolation, no GDAL warp.
    ``band_weights`` combines bands into one before sampling (e.g. luminance);
    otherwise the first band is sampled.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    out = np.full(x.shape, np.nan, np.float32)
    if x.size == 0:
        return out
    sx, sy = transform_points(crs, source.grid.crs, x, y)
    col, row = source.grid.map_to_pixel(sx, sy)
    finite = np.isfinite(col) & np.isfinite(row)
    if not finite.any():
        return out
    pad = 3
    c0 = max(0, int(math.floor(col[finite].min())) - pad)
    r0 = max(0, int(math.floor(row[finite].min())) - pad)
    c1 = min(source.grid.width, int(math.ceil(col[finite].max())) + pad)
    r1 = min(source.grid.height, int(math.ceil(row[finite].max())) + pad)
    if c1 <= c0 or r1 <= r0:
        return out
    # source pixels per point spacing (from the lattice's local Jacobian at its centre)
    scale = 1.0
    if x.ndim == 2 and min(x.shape) >= 2:
        i, j = min(x.shape[0] // 2, x.shape[0] - 2), min(x.shape[1] // 2, x.shape[1] - 2)
        det = (col[i, j + 1] - col[i, j]) * (row[i + 1, j] - row[i, j]) - (
            col[i + 1, j] - col[i, j]
        ) * (row[i, j + 1] - row[i, j])
        scale = math.sqrt(abs(det)) if math.isfinite(det) else 1.0
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
    map_x = ((col - c0) / factor - 0.5).astype(np.float32)
    map_y = ((row - r0) / factor - 0.5).astype(np.float32)
    map_x[~finite] = -1e6
    map_y[~finite] = -1e6
    return cv2.remap(
        img,
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def footprint_overlap(optical: RasterSource, sar: RasterSource):
    """The optical/SAR footprint intersection in the metric working CRS; InputError when empty."""
    crs = metric_crs_for(optical.grid, optical.path)
    metric_crs_for(sar.grid, sar.path)
    a = optical.grid.footprint_in(crs)
    b = sar.grid.footprint_in(crs)
    overlap = a.intersection(b)
    if overlap.is_empty or overlap.area < 1e-6 * a.area:
        raise InputError(
            f"optical {optical.path} and SAR {sar.path} footprints do not overlap; "
            "give a pair that covers the same ground"
        )
    return crs, overlap
