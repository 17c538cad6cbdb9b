"""Template matching parts shared by every kernel path: template placement and surface peaks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TemplateMatches:
    """Shifts (pixels, x right / y down) found at template centres, with match quality."""

    centres: np.ndarray  # (N, 2) x, y pixel coordinates (pixel-centre units)
    shifts: np.ndarray  # (N, 2)
    peak: np.ndarray  # (N,) correlation at the peak (NCC, -1..1)
    margin: np.ndarray  # (N,) peak minus the best value outside the peak's neighbourhood

    def __len__(self) -> int:
        return len(self.centres)

    def subset(self, keep: np.ndarray) -> TemplateMatches:
        return TemplateMatches(
            self.centres[keep], self.shifts[keep], self.peak[keep], self.margin[keep]
        )

    @classmethod
    def empty(cls) -> TemplateMatches:
        z = np.zeros((0, 2))
        return cls(z, z, np.zeros(0), np.zeros(0))


def template_corners(
    centres: np.ndarray, template: int, radius: int, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-left corners of the templates whose search window lies inside the image.

    Args:
        centres: (N, 2) template centres, x and y in pixel-centre units.
        template: Template side, pixels.
        radius: Search radius, pixels.
        shape: The descriptor's (H, W).

    Returns:
        ``x0``, ``y0`` (int) and the centres of the templates kept.
    """
    h, w = shape
    half = template // 2
    if not len(centres):
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2))
    x0 = np.round(centres[:, 0]).astype(int) - half
    y0 = np.round(centres[:, 1]).astype(int) - half
    inside = (
        (x0 - radius >= 0)
        & (y0 - radius >= 0)
        & (x0 + template + radius <= w)
        & (y0 + template + radius <= h)
    )
    return x0[inside], y0[inside], centres[inside]


def surface_matches(surfaces: np.ndarray, centres: np.ndarray, radius: int) -> TemplateMatches:
    """Shift, peak and peak margin of each template from its NCC surface.

    The shift is the peak refined by a parabola along each axis; the margin is
    the peak minus the best value outside the peak's 5×5 neighbourhood.

    Args:
        surfaces: (N, side, side) NCC at every shift, row = dy + radius, column = dx + radius.
        centres: (N, 2) template centres.
        radius: Search radius, pixels (side = 2 radius + 1).
    """
    n = len(centres)
    side = 2 * radius + 1
    flat = surfaces.reshape(n, -1)
    idx = np.arange(n)
    best = flat.argmax(axis=1)
    pr, pc = np.divmod(best, side)
    peak = flat[idx, best]
    if side > 5:
        rr, cc = np.divmod(np.arange(side * side), side)
        near = (np.abs(rr[None, :] - pr[:, None]) <= 2) & (np.abs(cc[None, :] - pc[:, None]) <= 2)
        second = np.where(near, -1.0, flat).max(axis=1)
    else:
        second = np.full(n, -1.0)
    sub = subpixel_all(surfaces, pr, pc)
    shifts = np.column_stack([pc - radius + sub[:, 0], pr - radius + sub[:, 1]])
    return TemplateMatches(
        centres.astype(float), shifts, peak.astype(float), (peak - second).astype(float)
    )


def subpixel_all(surfaces: np.ndarray, pr: np.ndarray, pc: np.ndarray) -> np.ndarray:
    """Parabolic refinement of each surface's peak along each axis: (N, 2) x, y offsets (0 on the
    window border).

    Args:
        surfaces: (N, H, W) correlation surfaces.
        pr: Row of each surface's peak.
        pc: Column of each surface's peak.
    """
    n, h, w = surfaces.shape
    idx = np.arange(n)
    m0 = surfaces[idx, pr, pc].astype(np.float64)

    def fit(m1: np.ndarray, p1: np.ndarray, ok: np.ndarray) -> np.ndarray:
        den = m1 - 2 * m0 + p1
        good = ok & (np.abs(den) >= 1e-12)
        return np.where(good, np.clip(0.5 * (m1 - p1) / np.where(good, den, 1.0), -0.5, 0.5), 0.0)

    okx, oky = (pc > 0) & (pc < w - 1), (pr > 0) & (pr < h - 1)
    cl, cr = np.clip(pc - 1, 0, w - 1), np.clip(pc + 1, 0, w - 1)
    ru, rd = np.clip(pr - 1, 0, h - 1), np.clip(pr + 1, 0, h - 1)
    dx = fit(
        surfaces[idx, pr, cl].astype(np.float64), surfaces[idx, pr, cr].astype(np.float64), okx
    )
    dy = fit(
        surfaces[idx, ru, pc].astype(np.float64), surfaces[idx, rd, pc].astype(np.float64), oky
    )
    return np.column_stack([dx, dy])


def subpixel_peak(surface: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """Parabolic (x, y) offset of a surface's peak at (``row``, ``col``), each within ±0.5 (0 on the
    border)."""
    dx, dy = subpixel_all(np.asarray(surface)[None], np.array([row]), np.array([col]))[0]
    return float(dx), float(dy)


def second_peak(surface: np.ndarray, row: int, col: int, min_distance: float = 4.0) -> float:
    """The best local maximum (5×5) of a correlation surface farther than ``min_distance`` px from
    its peak (-1 if none).

    A distinct peak stands above the other *peaks*: the best value just outside a
    fixed neighbourhood is the shoulder of a broad (coarse-scale) peak, not a rival.
    """
    from scipy.ndimage import maximum_filter

    local = surface == maximum_filter(surface, size=5, mode="nearest")
    rr, cc = np.indices(surface.shape)
    rivals = surface[local & (np.hypot(rr - row, cc - col) > min_distance)]
    return float(rivals.max()) if rivals.size else -1.0
