"""Radiometric preprocessing of optical and SAR images before matching.

Inputs are float32 arrays with NaN where there is no data; outputs are float32
in [0, 1] with NaN kept (matchers fill it themselves), so the same image can go
to a learned matcher or to an area-based one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

SarScale = Literal["auto", "linear", "db"]
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B


def optical_to_gray(optical: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601) of a (bands, H, W) optical array; 1-band input passes through."""
    if optical.ndim == 2:
        return optical.astype(np.float32)
    if optical.shape[0] >= 3:
        r, g, b = optical[0], optical[1], optical[2]
        return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).astype(np.float32)
    return optical[0].astype(np.float32)


def sar_to_db(sar: np.ndarray, scale: SarScale = "auto", dtype: str = "float32") -> np.ndarray:
    """SAR amplitude/intensity on a log scale.

    ``auto``: values that are already negative are taken to be dB; 8-bit data
    is taken to be display-scaled already; anything else (float or 16-bit
    amplitude with a long bright tail) is converted with ``20 log10``.
    """
    a = sar.astype(np.float32)
    valid = a[np.isfinite(a)]
    if scale == "linear" or valid.size == 0:
        return a
    if scale == "auto":
        if dtype == "uint8" or (valid.min() < 0):
            return a
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 20.0 * np.log10(np.maximum(a, 1e-6))
    out[~np.isfinite(a)] = np.nan
    return out


def percentile_stretch(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Linear stretch of the [low, high] percentiles of valid pixels to [0, 1]."""
    finite = np.isfinite(image)
    out = np.full(image.shape, np.nan, dtype=np.float32)
    if not finite.any():
        return out
    # the valid pixels are a copy of our own: the selection may reorder it in place
    lo, hi = np.percentile(image[finite], [low, high], overwrite_input=True)
    if hi - lo < 1e-12:
        out[finite] = 0.5
        return out
    out[:] = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    out[~finite] = np.nan
    return out


def fill_nodata(image: np.ndarray, value: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float32 copy of ``image`` with NaN replaced by ``value`` (default: the median of the valid
    pixels), and the valid mask."""
    valid = np.isfinite(image)
    if valid.all():
        return image.astype(np.float32), valid  # nothing to fill: skip the median
    fill = float(np.nanmedian(image)) if value is None and valid.any() else (value or 0.0)
    return np.where(valid, image, fill).astype(np.float32), valid


def lee_filter(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Lee speckle filter (local linear MMSE with a global noise variance estimate)."""
    if size <= 1:
        return image
    filled, valid = fill_nodata(image)
    mean = cv2.blur(filled, (size, size))
    sq = cv2.blur(filled * filled, (size, size))
    var = np.maximum(sq - mean * mean, 0.0)
    noise = float(np.median(var[valid])) if valid.any() else 0.0
    weight = var / np.maximum(var + noise, 1e-12)
    out = mean + weight * (filled - mean)
    out[~valid] = np.nan
    return out.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float with NaN to uint8 with 0 where there is no data."""
    return np.nan_to_num(np.clip(image * 255.0 + 0.5, 0, 255), nan=0.0).astype(np.uint8)


@dataclass(frozen=True)
class SarPreprocessing:
    """How SAR amplitude becomes a matchable image."""

    scale: SarScale = "auto"
    speckle_size: int = 5
    low_percentile: float = 2.0
    high_percentile: float = 98.0


def prepare_sar(
    sar: np.ndarray, conf: SarPreprocessing = SarPreprocessing(), dtype: str = "float32"
) -> np.ndarray:
    """SAR amplitude → log scale → speckle filter → percentile stretch, in [0, 1] with NaN kept."""
    db = sar_to_db(sar, conf.scale, dtype)
    filtered = lee_filter(db, conf.speckle_size)
    return percentile_stretch(filtered, conf.low_percentile, conf.high_percentile)


def prepare_optical(optical: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Optical bands → grayscale → percentile stretch, in [0, 1] with NaN kept."""
    return percentile_stretch(optical_to_gray(optical), low, high)
