"""Training patches: an optical crop and its SAR seen through a random smooth warp, with
corresponding query locations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from models.learned.features import standardise


@dataclass(frozen=True)
class WarpSpec:
    """Random smooth warps: a translation plus a few sinusoidal bumps (pixels)."""

    translation_px: float  # each component uniform in ±translation_px
    bump_px: float  # amplitude of the smooth non-rigid part
    wavelength: tuple[float, float] = (0.5, 1.5)  # bump wavelengths, in patch sides


@dataclass(frozen=True)
class Patch:
    """One training sample: standardised images and matching query locations.

    Positions are (x, y) in pixel-index coordinates of each patch (pixel ``i``'s centre at ``i``).
    """

    optical: np.ndarray  # (P, P) standardised optical crop
    sar: np.ndarray  # (P, P) standardised SAR, warped
    sar_xy: np.ndarray  # (K, 2) query locations in the SAR patch
    optical_xy: np.ndarray  # (K, 2) where each query's ground is in the optical patch
    warp: np.ndarray  # (2, P, P) the warp d: SAR pixel q shows the optical ground at q + d(q)


def smooth_warp(size: int, spec: WarpSpec, rng: np.random.Generator) -> np.ndarray:
    """A random displacement field ``(2, size, size)`` (dx, dy in pixels) over a square patch.

    Args:
        size: The patch side (pixels).
        spec: Amplitudes and wavelengths.
        rng: The random generator.
    """
    axis = np.arange(size, dtype=np.float32)
    out = np.empty((2, size, size), np.float32)
    for c in range(2):
        field = np.full((size, size), rng.uniform(-1, 1) * spec.translation_px, np.float32)
        for _ in range(3):
            kx, ky = 2 * math.pi / (rng.uniform(*spec.wavelength, 2) * size)
            px, py = rng.uniform(0, 2 * math.pi, 2)
            # separable bump: sin along x times cos along y
            field += np.outer(np.cos(ky * axis + py), spec.bump_px / 3 * np.sin(kx * axis + px))
        out[c] = field
    return out


def valid_share(image: np.ndarray) -> float:
    """The share of finite pixels of an array.

    Args:
        image: Any array.
    """
    return float(np.isfinite(image).mean()) if image.size else 0.0


def pick_window(
    optical: np.ndarray,
    sar: np.ndarray,
    size: int,
    rng: np.random.Generator,
    tries: int = 20,
    min_valid: float = 0.9,
) -> tuple[int, int] | None:
    """Top-left corner of a ``size`` square where both images are mostly valid (None if none).

    Args:
        optical: The optical image.
        sar: The SAR image on the optical lattice.
        size: The window side.
        rng: The random generator.
        tries: Windows drawn before giving up.
        min_valid: The least share of valid pixels in each image's window.
    """
    h, w = optical.shape
    if h < size or w < size:
        return None
    for _ in range(tries):
        x0, y0 = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
        win = (slice(y0, y0 + size), slice(x0, x0 + size))
        if valid_share(optical[win]) >= min_valid and valid_share(sar[win]) >= min_valid:
            return x0, y0
    return None


def reduced(optical: np.ndarray, sar: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Both images averaged over ``factor`` × ``factor`` blocks (as ``local``'s coarse levels see
    a pair); a block with any pixel of no data is no data.

    Args:
        optical: The optical image (H, W), NaN = no data.
        sar: The SAR image on the same lattice.
        factor: The reduction factor (1: the images as they are).
    """
    if factor == 1:
        return optical, sar
    h, w = (optical.shape[0] // factor) * factor, (optical.shape[1] // factor) * factor
    out = []
    for image in (optical, sar):
        blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor)
        out.append(blocks.mean(axis=(1, 3)).astype(np.float32))
    return out[0], out[1]


def pad_to(optical: np.ndarray, sar: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Both images padded with no data to at least ``size`` on each side, and the least valid
    share a patch of them should ask for (0.9, less by the padding's share).

    Args:
        optical: The optical image.
        sar: The SAR image on the optical lattice.
        size: The patch side.
    """
    h, w = optical.shape
    if h >= size and w >= size:
        return optical, sar, 0.9
    shape = (max(h, size), max(w, size))
    out = []
    for image in (optical, sar):
        padded = np.full(shape, np.nan, np.float32)
        padded[:h, :w] = image
        out.append(padded)
    return out[0], out[1], 0.9 * min(h, size) * min(w, size) / (size * size)


def make_patch(
    optical: np.ndarray,
    sar: np.ndarray,
    size: int,
    queries: int,
    warp: WarpSpec,
    rng: np.random.Generator,
    min_valid: float = 0.9,
) -> Patch | None:
    """A patch of an aligned pair: the optical crop, the SAR sampled at ``x + d(x)`` of a random
    warp ``d``, and ``queries`` SAR locations with where their ground lies in the optical crop.

    Args:
        optical: The optical image (H, W), NaN = no data.
        sar: The SAR image on the same lattice.
        size: The patch side.
        queries: The number of query locations.
        warp: The random warp's amplitudes.
        rng: The random generator.
        min_valid: The least share of valid pixels in each image's window.
    """
    corner = pick_window(optical, sar, size, rng, min_valid=min_valid)
    if corner is None:
        return None
    x0, y0 = corner
    d = smooth_warp(size, warp, rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    sar_patch = cv2.remap(
        sar,
        x0 + xx + d[0],
        y0 + yy + d[1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    opt_patch = optical[y0 : y0 + size, x0 : x0 + size]
    # queries: SAR pixels with data whose ground falls inside the optical crop, away from borders
    opt_x, opt_y = xx + d[0], yy + d[1]
    opt_ok = np.isfinite(opt_patch)
    ix = np.clip(np.rint(opt_x), 0, size - 1).astype(int)
    iy = np.clip(np.rint(opt_y), 0, size - 1).astype(int)
    m = 3
    ok = np.isfinite(sar_patch) & opt_ok[iy, ix]
    ok &= (opt_x >= m) & (opt_x <= size - 1 - m) & (opt_y >= m) & (opt_y <= size - 1 - m)
    ok[:m], ok[-m:], ok[:, :m], ok[:, -m:] = False, False, False, False
    cand = np.flatnonzero(ok)
    if cand.size < queries:
        return None
    pick = rng.choice(cand, queries, replace=False)
    r, c = np.divmod(pick, size)
    sar_xy = np.column_stack([c, r]).astype(np.float32)
    optical_xy = np.column_stack([opt_x[r, c], opt_y[r, c]]).astype(np.float32)
    return Patch(standardise(opt_patch)[0], standardise(sar_patch)[0], sar_xy, optical_xy, d)
