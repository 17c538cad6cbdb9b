"""Overviews of a scratch GeoTIFF computed by NumPy and handed to GDAL's COG driver."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

# bytes of source rows one overview strip reads at most (its temporaries are a few times this)
STRIP_BYTES = 16 * 2**20

# makes a scratch file that is deleted when its context ends
ScratchFn = Callable[[], AbstractContextManager[Path]]


def overview_sizes(width: int, height: int, block: int) -> list[tuple[int, int]]:
    """``(width, height)`` of each overview level: halved, rounding up, until a level fits in
    one ``block`` (GDAL's COG driver rounds down, so it may build one level fewer).

    Args:
        width: Columns of the full-resolution raster.
        height: Rows of the full-resolution raster.
        block: The COG's tile side.
    """
    sizes = []
    while width > block or height > block:
        width, height = -(-width // 2), -(-height // 2)
        sizes.append((width, height))
    return sizes


def halve(data: np.ndarray, nodata: float | None, average: bool) -> np.ndarray:
    """``(bands, h, w)`` to ``(bands, ⌈h/2⌉, ⌈w/2⌉)``, one pixel per 2 × 2 cell.

    Args:
        data: The pixels.
        nodata: The no-data value. NaN always counts as no data too (GDAL's ``AVERAGE`` lets
            NaN through when the no-data value is another one).
        average: The cell's mean over its valid pixels (no data where it has none), as GDAL's
            ``AVERAGE`` (float data only); otherwise its top-left pixel, as GDAL's ``NEAREST``.
    """
    if not average:
        return data[:, ::2, ::2]
    _, h, w = data.shape
    if h % 2 or w % 2:  # the last cell of an odd side holds one row or column
        data = np.pad(data, ((0, 0), (0, h % 2), (0, w % 2)), constant_values=np.nan)
    valid = ~np.isnan(data)
    if nodata is not None and not math.isnan(nodata):
        valid &= data != nodata
    cells = [(slice(None), slice(i, None, 2), slice(j, None, 2)) for i in (0, 1) for j in (0, 1)]
    if valid.all():
        total = data[cells[0]] + data[cells[1]] + data[cells[2]] + data[cells[3]]
        return (total * 0.25).astype(data.dtype, copy=False)
    clean = np.where(valid, data, 0)
    total = clean[cells[0]] + clean[cells[1]] + clean[cells[2]] + clean[cells[3]]
    n = sum(valid[c].astype(data.dtype) for c in cells)
    fill = np.asarray(np.nan if nodata is None else nodata, data.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, fill).astype(data.dtype, copy=False)


def _level_profile(profile: Mapping[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """The scratch profile of the level of ``size`` halved from a raster of ``profile``."""
    return dict(profile) | {
        "driver": "GTiff",
        "width": size[0],
        "height": size[1],
        "transform": profile["transform"] @ rasterio.Affine.scale(2, 2),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "NONE",
    }


def _write_level(src: Path, dst: Path, size: tuple[int, int], average: bool) -> None:
    """``src`` halved (:func:`halve`) into a tiled GeoTIFF ``dst`` of ``size``, a strip of
    rows at a time."""
    with rasterio.open(src) as s:
        row_bytes = s.width * s.count * np.dtype(s.dtypes[0]).itemsize
        rows = max(2, STRIP_BYTES // row_bytes // 2 * 2)
        with rasterio.open(dst, "w", **_level_profile(s.profile, size)) as d:
            for row in range(0, s.height, rows):
                strip = s.read(window=Window(0, row, s.width, min(rows, s.height - row)))
                half = halve(strip, s.nodata, average)
                d.write(half, window=Window(0, row // 2, size[0], half.shape[1]))


def _add_overviews(vrt: Path, levels: list[Path]) -> None:
    """Name ``levels`` as the overviews of every band of the VRT file ``vrt``."""
    tree = ET.parse(vrt)
    for band in tree.getroot().iter("VRTRasterBand"):
        for level in levels:
            overview = ET.SubElement(band, "Overview")
            ET.SubElement(overview, "SourceFilename", relativeToVRT="0").text = str(level)
            ET.SubElement(overview, "SourceBand").text = band.get("band")
    tree.write(vrt)


class OverviewLevels:
    """The overview levels of a raster written block by block, each in a scratch file: the
    first halved from each block as it is written (:meth:`add`), so the raster is not read
    back, the others from the level before (:meth:`source`).

    Args:
        profile: The full-resolution raster's rasterio profile.
        sizes: Each level's (width, height) (:func:`overview_sizes`).
        average: Mean of valid pixels per cell, else nearest (:func:`halve`).
        paths: Each level's scratch file.
        vrt: The scratch file of the VRT that names the levels (None when there are none).
    """

    def __init__(
        self,
        profile: Mapping[str, Any],
        sizes: list[tuple[int, int]],
        average: bool,
        paths: list[Path],
        vrt: Path | None,
    ) -> None:
        self.sizes = sizes
        self.average = average
        self.nodata = profile.get("nodata")
        self.paths = paths
        self.vrt = vrt
        self._first = (
            rasterio.open(self.paths[0], "w", **_level_profile(profile, self.sizes[0]))
            if self.sizes
            else None
        )

    def add(self, window: Window, data: np.ndarray) -> None:
        """Halve the block ``data`` at ``window`` (even offsets) into the first level."""
        if self._first is None:
            return
        if window.col_off % 2 or window.row_off % 2:
            raise ValueError(f"overview blocks must start on even pixels, not {window}")
        half = halve(data, self.nodata, self.average)
        at = Window(window.col_off // 2, window.row_off // 2, half.shape[2], half.shape[1])
        self._first.write(half, window=at)

    def close(self) -> None:
        """Close the first level's file (the writes into it end)."""
        if self._first is not None:
            self._first.close()

    def source(self, scratch: Path) -> Path:
        """``scratch`` as a source for GDAL's COG driver: itself when there are no levels,
        else a VRT over it that names the levels as its bands' overviews, so the COG driver
        copies them instead of building its own."""
        if self.vrt is None:
            return scratch
        self.close()
        for k in range(1, len(self.sizes)):
            _write_level(self.paths[k - 1], self.paths[k], self.sizes[k], self.average)
        rio_copy(str(scratch), str(self.vrt), driver="VRT")
        _add_overviews(self.vrt, self.paths)
        return self.vrt


@contextmanager
def overview_levels(
    profile: Mapping[str, Any], block: int, average: bool, new_scratch: ScratchFn
) -> Iterator[OverviewLevels]:
    """:class:`OverviewLevels` of a raster of ``profile`` in scratch files, deleted
    afterwards.

    Args:
        profile: The full-resolution raster's rasterio profile.
        block: The COG's tile side.
        average: Mean of valid pixels per cell, else nearest (:func:`halve`).
        new_scratch: Makes a scratch file that is deleted when its context ends.
    """
    sizes = overview_sizes(profile["width"], profile["height"], block)
    with ExitStack() as stack:
        paths = [stack.enter_context(new_scratch()) for _ in sizes]
        vrt = stack.enter_context(new_scratch()) if sizes else None
        levels = OverviewLevels(profile, sizes, average, paths, vrt)
        stack.callback(levels.close)
        yield levels
