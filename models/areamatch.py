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
    the score is the correlation of the whole descriptor stack. The channels are
    laid side by side (template channels zero-padded to the window's width) so
    one single-channel correlation computes every channel's sum at once;
    window energies come from integral images.
    """
    th, tw, ch = template.shape
    wh, ww, _ = window.shape
    n = th * tw
    t = template - template.reshape(-1, ch).mean(axis=0)
    t_norm = float(np.sqrt((t * t).sum()))
    wide_w = np.ascontiguousarray(window.transpose(0, 2, 1).reshape(wh, ch * ww))
    padded = np.zeros((th, ch, ww), np.float32)
    padded[:, :, :tw] = t.transpose(0, 2, 1)
    wide_t = padded.reshape(th, ch * ww)[:, : ch * ww - (ww - tw)]
    num = cv2.matchTemplate(wide_w, np.ascontiguousarray(wide_t), cv2.TM_CCORR)
    oh, ow = wh - th + 1, ww - tw + 1
    num = num[:oh, :ow]
    ii = np.zeros((wh + 1, ww + 1, ch), np.float64)
    ii[1:, 1:] = window.cumsum(0).cumsum(1)
    sq = np.zeros_like(ii)
    sq[1:, 1:] = (window.astype(np.float64) ** 2).cumsum(0).cumsum(1)

    def box(a: np.ndarray) -> np.ndarray:
        return a[th : th + oh, tw : tw + ow] - a[:oh, tw : tw + ow] - a[th : th + oh, :ow] + a[:oh, :ow]

    s1, s2 = box(ii), box(sq)
    w_var = np.maximum(s2 - s1 * s1 / n, 0.0).sum(axis=2)
    return (num / np.maximum(np.sqrt(w_var) * t_norm, 1e-6)).astype(np.float32)


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
    (featureless ground) are skipped. The zero-mean NCC of every template at
    every shift is computed shift by shift over the whole image (cost grows
    with pixels × shifts, not with the number of overlapping templates).
    """
    h, w, ch = optical_desc.shape
    half = template // 2
    x0 = np.round(centres[:, 0]).astype(int) - half if len(centres) else np.zeros(0, int)
    y0 = np.round(centres[:, 1]).astype(int) - half if len(centres) else np.zeros(0, int)
    inside = (x0 - radius >= 0) & (y0 - radius >= 0) & (x0 + template + radius <= w) & (y0 + template + radius <= h)
    x0, y0, centres = x0[inside], y0[inside], centres[inside]
    if not len(centres):
        return TemplateMatches.empty()
    n = float(template * template)
    big = template + 2 * radius
    o_cf = np.ascontiguousarray(optical_desc.transpose(2, 0, 1))
    s_cf = np.ascontiguousarray(sar_desc.transpose(2, 0, 1))

    def window_sums(img: np.ndarray, size: int, depth: int = cv2.CV_64F) -> np.ndarray:
        # value at (y, x) = sum over the size² window whose top-left corner is (y, x)
        return cv2.boxFilter(img, depth, (size, size), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)

    valid_o = window_sums(optical_desc.any(axis=2).astype(np.float32), template)
    valid_s = window_sums(sar_desc.any(axis=2).astype(np.float32), big)
    keep = (valid_o[y0, x0] / n >= min_valid) & (valid_s[y0 - radius, x0 - radius] / (big * big) >= min_valid)
    so = np.stack([window_sums(o, template)[y0, x0] for o in o_cf], axis=1)  # (N, C)
    so2 = np.stack([window_sums(o * o, template)[y0, x0] for o in o_cf], axis=1)
    var_c = np.maximum(so2 / n - (so / n) ** 2, 0.0)
    # structure: orientation energy that varies inside the template; flat ground has little
    keep &= np.sqrt(var_c).mean(axis=1) >= min_structure
    x0, y0, centres, so, so2 = x0[keep], y0[keep], centres[keep], so[keep], so2[keep]
    if not len(centres):
        return TemplateMatches.empty()
    e_o = np.maximum((so2 - so * so / n).sum(axis=1), 1e-12)
    s_sum = np.stack([window_sums(c, template) for c in s_cf])  # (C, H, W)
    s_sq = np.stack([window_sums(c * c, template) for c in s_cf])
    side = 2 * radius + 1
    surfaces = np.empty((len(centres), side, side), np.float32)
    prod = np.empty((h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for j, dy in enumerate(range(-radius, radius + 1)):
        for i, dx in enumerate(range(-radius, radius + 1)):
            # product image of optical with the SAR shifted by (dx, dy), over the valid overlap
            ys, ye = max(0, -dy), min(h, h - dy)
            xs, xe = max(0, -dx), min(w, w - dx)
            prod.fill(0.0)
            p, t = prod[ys:ye, xs:xe], tmp[ys:ye, xs:xe]
            for c in range(ch):
                np.multiply(o_cf[c, ys:ye, xs:xe], s_cf[c, ys + dy : ye + dy, xs + dx : xe + dx], out=t)
                p += t
            cross = window_sums(prod, template, cv2.CV_32F)[y0, x0].astype(np.float64)
            ss = s_sum[:, y0 + dy, x0 + dx].T
            ss2 = s_sq[:, y0 + dy, x0 + dx].T
            num = cross - (so * ss).sum(axis=1) / n
            e_s = np.maximum((ss2 - ss * ss / n).sum(axis=1), 1e-12)
            surfaces[:, j, i] = num / np.sqrt(e_o * e_s)
    flat = surfaces.reshape(len(centres), -1)
    best = flat.argmax(axis=1)
    pr, pc = np.divmod(best, side)
    peak = flat[np.arange(len(best)), best]
    masked = surfaces.copy()
    for k, (r, c) in enumerate(zip(pr, pc)):
        masked[k, max(0, r - 2) : r + 3, max(0, c - 2) : c + 3] = -1.0
    second = masked.reshape(len(centres), -1).max(axis=1) if side > 5 else np.full(len(centres), -1.0)
    sub = np.array([_subpixel(surfaces[k], int(r), int(c)) for k, (r, c) in enumerate(zip(pr, pc))])
    shifts = np.column_stack([pc - radius + sub[:, 0], pr - radius + sub[:, 1]])
    return TemplateMatches(centres.astype(float), shifts, peak.astype(float), (peak - second).astype(float))


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
