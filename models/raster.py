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

import numpy as np
import rasterio
from pyproj import CRS
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.warp import reproject
from rasterio.windows import Window
from shapely.geometry import LineString

from core.errors import InputError
from core.grid import Grid, metric_crs_for, reproject_geometry
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
    return pixel_window(source, *source.grid.map_to_pixel(xs, ys), pad)


def pixel_window(
    source: RasterSource, cols: np.ndarray, rows: np.ndarray, pad: int
) -> Window | None:
    """The window of ``source`` that holds the fractional pixel positions ``(cols, rows)``,
    grown by ``pad`` pixels and clipped to the raster (None when that leaves nothing).

    Args:
        source: The raster.
        cols: Fractional columns (finite, any shape).
        rows: Fractional rows.
        pad: Pixels added on every side.
    """
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
