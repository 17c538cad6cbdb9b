"""Bilinear resampling between two grids of one CRS by OpenCV, where GDAL's is plain."""

from __future__ import annotations

import cv2
import numpy as np
import rasterio
from rasterio.windows import Window

from core.grid import Grid

# pixels the source window of a destination grid is padded by on every side
WINDOW_PAD = 3


def plain_bilinear(source: Grid, dst: Grid, window: Window, ok: np.ndarray) -> bool:
    """Whether GDAL's bilinear warp of a full-resolution source ``window`` onto ``dst`` is
    plain bilinear interpolation.

    It is when both are in one CRS, the window lies inside the source with its padding (so
    every destination pixel has all four neighbours), every pixel of it is valid, and it is
    (less its padding) no wider nor taller than ``dst``: the warper then does not widen its
    kernel (it widens it by the ratio of the source window's size to the destination's, which
    a rotation enlarges).

    Args:
        source: The source's grid.
        dst: The destination grid.
        window: The source window read for ``dst`` (padded by :data:`WINDOW_PAD` pixels).
        ok: Validity of the window's pixels.
    """
    inside = (
        min(window.col_off, window.row_off) > 0
        and window.col_off + window.width < source.width
        and window.row_off + window.height < source.height
    )
    return (
        source.crs == dst.crs
        and inside
        and bool(ok.all())
        and window.width - 2 * WINDOW_PAD <= dst.width
        and window.height - 2 * WINDOW_PAD <= dst.height
    )


def warp_affine(data: np.ndarray, src_transform: rasterio.Affine, dst: Grid) -> np.ndarray:
    """Bands ``data`` bilinearly resampled at the pixel centres of ``dst`` by OpenCV, NaN
    outside: GDAL's bilinear values where :func:`plain_bilinear` holds.

    Args:
        data: (bands, rows, columns) float32 on the grid of ``src_transform``.
        src_transform: The source pixels' transform, in ``dst``'s CRS.
        dst: The destination grid.
    """
    m = ~src_transform @ dst.transform  # dst pixel corner -> source pixel corner
    # OpenCV's pixels are centres: shift by half a pixel on both sides
    offset_x = m.c + 0.5 * (m.a + m.b) - 0.5
    offset_y = m.f + 0.5 * (m.d + m.e) - 0.5
    to_source = np.array([[m.a, m.b, offset_x], [m.d, m.e, offset_y]])
    return np.stack(
        [
            cv2.warpAffine(
                band,
                to_source,
                (dst.width, dst.height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=float("nan"),
            )
            for band in data
        ]
    )
