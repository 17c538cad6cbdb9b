"""Area-based structural matching: CFOG descriptors compared by correlation on a grid of templates.

CFOG (channel features of orientated gradients; Ye et al., "Fast and robust
matching for multimodal remote sensing image registration", IEEE TGRS 2019)
describes each pixel by gradient magnitudes projected onto orientation bins
over 0–180° (so the intensity reversals between SAR and optical do not matter),
smoothed in space and across orientations and normalised per pixel. Templates
cut from the optical descriptor on a regular grid of points (as Grid-Reg's grid
points and ME-SSM's templates) are correlated with search windows of the SAR
descriptor (OpenCV's DFT-based ``matchTemplate``); the peak gives the shift,
fitted to sub-pixel precision, and its sharpness a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from models.preprocess import _fill


def cfog(image: np.ndarray, bins: int = 9, sigma: float = 0.8) -> np.ndarray:
    """CFOG descriptor (H, W, bins) float32 of a single-band image (NaN = no data → zeros)."""
    filled, valid = _fill(image)
    gx = cv2.Sobel(filled, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(filled, cv2.CV_32F, 0, 1, ksize=3)
    angles = np.arange(bins) * np.pi / bins
    desc = np.empty(image.shape + (bins,), np.float32)
    for i, a in enumerate(angles):
        d = np.abs(np.cos(a) * gx + np.sin(a) * gy)
        desc[..., i] = cv2.GaussianBlur(d, (0, 0), sigma) if sigma > 0 else d
    # smoothing across orientations (circular [1, 2, 1])
    desc = (np.roll(desc, 1, axis=2) + 2 * desc + np.roll(desc, -1, axis=2)) / 4
    norm = np.sqrt((desc * desc).sum(axis=2, keepdims=True)) + 1e-6
    desc /= norm
    # no-data and its edge produce meaningless gradients
    bad = cv2.dilate((~valid).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    desc[bad] = 0.0
    return desc


@dataclass(frozen=True)
class TemplateMatches:
    """Shifts (pixels, x right / y down) found at template centres, with match quality."""

    centres: np.ndarray  # (N, 2) x, y pixel coordinates (pixel-centre units)
    shifts: np.ndarray  # (N, 2)
    peak: np.ndarray  # (N,) correlation at the peak (NCC, -1..1)
    margin: np.ndarray  # (N,) peak minus the best value outside the peak's neighbourhood

    def __len__(self) -> int:
        return len(self.centres)

    def subset(self, keep: np.ndarray) -> "TemplateMatches":
        return TemplateMatches(self.centres[keep], self.shifts[keep], self.peak[keep], self.margin[keep])

    @classmethod
    def empty(cls) -> "TemplateMatches":
        z = np.zeros((0, 2))
        return cls(z, z, np.zeros(0), np.zeros(0))


def _subpixel(surface: np.ndarray, r: int, c: int) -> tuple[float, float]:
    """Parabolic peak refinement along each axis."""
    h, w = surface.shape

    def fit(m1: float, m0: float, p1: float) -> float:
        den = m1 - 2 * m0 + p1
        return 0.0 if abs(den) < 1e-12 else float(np.clip(0.5 * (m1 - p1) / den, -0.5, 0.5))

    dx = fit(surface[r, c - 1], surface[r, c], surface[r, c + 1]) if 0 < c < w - 1 else 0.0
    dy = fit(surface[r - 1, c], surface[r, c], surface[r + 1, c]) if 0 < r < h - 1 else 0.0
    return dx, dy


def ncc_surface(window: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Zero-mean normalised cross-correlation of a multi-channel template over a window.

    Channel means are removed separately and the sums run over all channels, so
    the score is the correlation of the whole descriptor stack (OpenCV's
    normalised modes stop at 4 channels).
    """
    th, tw, ch = template.shape
    n = th * tw
    t = template - template.reshape(-1, ch).mean(axis=0)
    t_norm = float(np.sqrt((t * t).sum()))
    num = np.zeros((window.shape[0] - th + 1, window.shape[1] - tw + 1), np.float32)
    w_var = np.zeros_like(num)
    for c in range(ch):
        wc = np.ascontiguousarray(window[..., c])
        num += cv2.matchTemplate(wc, np.ascontiguousarray(t[..., c]), cv2.TM_CCORR)
        s1 = cv2.boxFilter(wc, -1, (tw, th), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        s2 = cv2.boxFilter(wc * wc, -1, (tw, th), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        s1 = s1[: num.shape[0], : num.shape[1]]
        s2 = s2[: num.shape[0], : num.shape[1]]
        w_var += np.maximum(s2 - s1 * s1 / n, 0.0)
    return num / np.maximum(np.sqrt(w_var) * t_norm, 1e-6)


def match_templates(
    optical_desc: np.ndarray,
    sar_desc: np.ndarray,
    centres: np.ndarray,
    template: int,
    radius: int,
    min_valid: float = 0.9,
    min_structure: float = 0.05,
) -> TemplateMatches:
    """Find each optical template (side ``template``) in the SAR descriptor within ``±radius`` px.

    Both descriptors are on the same grid; shifts are SAR position minus optical
    position. Templates that are mostly no-data or have too little structure
    (featureless ground) are skipped.
    """
    half = template // 2
    h, w = optical_desc.shape[:2]
    out_c, out_s, out_p, out_m = [], [], [], []
    valid_o = optical_desc.any(axis=2)
    valid_s = sar_desc.any(axis=2)
    for cx, cy in centres:
        x0, y0 = int(round(cx)) - half, int(round(cy)) - half
        if x0 - radius < 0 or y0 - radius < 0 or x0 + template + radius > w or y0 + template + radius > h:
            continue
        tpl = optical_desc[y0 : y0 + template, x0 : x0 + template]
        if valid_o[y0 : y0 + template, x0 : x0 + template].mean() < min_valid:
            continue
        win_valid = valid_s[y0 - radius : y0 + template + radius, x0 - radius : x0 + template + radius]
        if win_valid.mean() < min_valid:
            continue
        # structure: spread of orientation energy; flat ground has near-uniform, weak descriptors
        if float(tpl.std(axis=(0, 1)).mean()) < min_structure:
            continue
        win = sar_desc[y0 - radius : y0 + template + radius, x0 - radius : x0 + template + radius]
        surface = ncc_surface(win, tpl)
        _, peak, _, (pc, pr) = cv2.minMaxLoc(surface)
        masked = surface.copy()
        masked[max(0, pr - 2) : pr + 3, max(0, pc - 2) : pc + 3] = -1.0
        second = float(masked.max()) if masked.size > 25 else -1.0
        sx, sy = _subpixel(surface, pr, pc)
        out_c.append((cx, cy))
        out_s.append((pc - radius + sx, pr - radius + sy))
        out_p.append(peak)
        out_m.append(peak - second)
    if not out_c:
        return TemplateMatches.empty()
    return TemplateMatches(np.asarray(out_c, float), np.asarray(out_s, float), np.asarray(out_p), np.asarray(out_m))


def consistent(points: np.ndarray, vectors: np.ndarray, k: int = 8, tolerance: float = 2.0, mad_factor: float = 3.0) -> np.ndarray:
    """True for vectors that agree with the median of their ``k`` nearest neighbours.

    A vector is an outlier when it differs from that median by more than
    ``max(tolerance, mad_factor × MAD)`` (same units as the vectors).
    """
    n = len(points)
    if n < 4:
        return np.ones(n, bool)
    kk = min(k + 1, n)
    _, idx = cKDTree(points).query(points, kk)
    neigh = vectors[idx[:, 1:]]
    med = np.median(neigh, axis=1)
    dev = np.linalg.norm(vectors - med, axis=1)
    spread = np.median(np.linalg.norm(neigh - med[:, None], axis=2), axis=1)
    return dev <= np.maximum(tolerance, mad_factor * 1.4826 * spread)
