"""Image cues of elevated structures in a tile: bright SAR layover and double bounce, shadows."""

from __future__ import annotations

import cv2
import numpy as np

# robust standard deviations from the tile's median that make a smoothed pixel stand out
BRIGHT_Z = 2.5
DARK_Z = 2.0


def _robust_z(image: np.ndarray, smooth_px: int) -> np.ndarray:
    """``image`` box-smoothed over ``smooth_px``, in robust standard deviations from its median
    (NaN → the median)."""
    valid = np.isfinite(image)
    if not valid.any():
        return np.zeros(image.shape, np.float32)
    med = float(np.median(image[valid]))
    filled = np.where(valid, image, med).astype(np.float32)
    smooth = cv2.blur(filled, (smooth_px, smooth_px))
    spread = 1.4826 * float(np.median(np.abs(smooth[valid] - med)))
    return (smooth - med) / max(spread, 1e-6)


def structure_cues(sar_db: np.ndarray, optical: np.ndarray, smooth_px: int) -> np.ndarray:
    """1.0 where a tile looks like elevated structures, else 0: SAR brighter than the tile by
    :data:`BRIGHT_Z` (layover, double bounce), or SAR or optical darker by :data:`DARK_Z`
    (radar shadow, sun shadow), after smoothing over ``smooth_px`` to tame speckle.

    Args:
        sar_db: The SAR on a log scale, on the tile grid (NaN: no data).
        optical: The prepared optical on the same grid (NaN: no data).
        smooth_px: Smoothing box side, pixels.
    """
    size = max(1, int(smooth_px))
    sar_z = _robust_z(sar_db, size)
    optical_z = _robust_z(optical, size)
    cue = (sar_z > BRIGHT_Z) | (sar_z < -DARK_Z) | (optical_z < -DARK_Z)
    return cue.astype(np.float32)


def share_at(mask: np.ndarray, centres: np.ndarray, template: int) -> np.ndarray:
    """Share of ``mask`` under square templates ``template`` pixels across at ``centres``
    ((N, 2) col, row; the template's upper-left pixel is ``centre - template // 2``).

    Args:
        mask: 0/1 image.
        centres: Template centres, pixels.
        template: Template side, pixels.
    """
    ii = cv2.integral(mask.astype(np.float64))
    h, w = mask.shape
    c0 = np.clip(np.round(centres[:, 0]).astype(int) - template // 2, 0, w)
    r0 = np.clip(np.round(centres[:, 1]).astype(int) - template // 2, 0, h)
    c1, r1 = np.clip(c0 + template, 0, w), np.clip(r0 + template, 0, h)
    sums = ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]
    area = np.maximum((c1 - c0) * (r1 - r0), 1)
    return (sums / area).astype(np.float32)
