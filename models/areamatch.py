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

import cv2
import numpy as np
from scipy.spatial import cKDTree

from models.areamatch_cross import block_cross, box_sums, pixel_cross, sums_at
from models.areamatch_parts import (
    TemplateMatches,
    second_peak,
    subpixel_peak,
    surface_matches,
    template_corners,
)
from models.preprocess import fill_nodata

# shift-template pairs whose NCC terms are assembled at once
SHIFT_CHUNK = 1_000_000

__all__ = [
    "TemplateMatches",
    "cfog",
    "consistent",
    "match_templates",
    "ncc_surface",
    "neighbour_median",
    "second_peak",
    "subpixel_peak",
]


def cfog(image: np.ndarray, bins: int = 9, sigma: float = 0.8) -> np.ndarray:
    """CFOG descriptor ``(bins, H, W)`` float32, channel first, of a single-band image (NaN = no
    data → zeros).

    Channel first because every step (smoothing, box sums, products) works on
    whole planes, where OpenCV's single-channel kernels are fastest.
    """
    filled, valid = fill_nodata(image)
    gx = cv2.Sobel(filled, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(filled, cv2.CV_32F, 0, 1, ksize=3)
    h, w = filled.shape
    planes = np.empty((bins, h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for i in range(bins):
        a = i * np.pi / bins
        cv2.addWeighted(gx, float(np.cos(a)), gy, float(np.sin(a)), 0.0, dst=tmp)
        np.abs(tmp, out=tmp)
        if sigma > 0:
            cv2.GaussianBlur(tmp, (0, 0), sigma, dst=planes[i])
        else:
            planes[i] = tmp
    # smoothing across orientations (circular [1, 2, 1] / 4) in place, the planes it still
    # needs kept aside, then per-pixel normalisation
    first, previous, current = planes[0].copy(), planes[-1].copy(), np.empty_like(tmp)
    for i in range(bins):
        cv2.add(previous, first if i == bins - 1 else planes[i + 1], dst=tmp)
        np.copyto(current, planes[i])
        cv2.addWeighted(tmp, 0.25, current, 0.5, 0.0, dst=planes[i])
        previous, current = current, previous
    sq = np.einsum("chw,chw->hw", planes, planes)
    # no-data and its edge produce meaningless gradients
    bad = cv2.dilate((~valid).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    inv = np.float32(1.0) / (np.sqrt(sq) + np.float32(1e-6))
    inv[bad] = 0.0
    planes *= inv
    return planes


def ncc_surface(window: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Zero-mean normalised cross-correlation of a multi-channel template ``(C, h, w)`` over a
    window ``(C, H, W)``.

    Channel means are removed separately and the sums run over all channels, so
    the score is the correlation of the whole descriptor stack. The channels are
    laid side by side (template channels zero-padded to the window's width) so
    one single-channel correlation computes every channel's sum at once;
    window energies come from integral images.
    """
    ch, th, tw = template.shape
    _, wh, ww = window.shape
    n = th * tw
    t = template - template.reshape(ch, -1).mean(axis=1)[:, None, None]
    t_norm = float(np.sqrt((t * t).sum()))
    wide_w = np.ascontiguousarray(window.transpose(1, 0, 2).reshape(wh, ch * ww), np.float32)
    padded = np.zeros((th, ch, ww), np.float32)
    padded[:, :, :tw] = t.transpose(1, 0, 2)
    wide_t = padded.reshape(th, ch * ww)[:, : ch * ww - (ww - tw)]
    num = cv2.matchTemplate(wide_w, np.ascontiguousarray(wide_t), cv2.TM_CCORR)
    oh, ow = wh - th + 1, ww - tw + 1
    num = num[:oh, :ow]
    w_var = np.zeros((oh, ow), np.float64)
    for plane in window:
        s1 = _window_sums(cv2.integral(plane, sdepth=cv2.CV_64F), oh, ow, th, tw)
        s2 = _window_sums(
            cv2.integral(np.square(plane, dtype=np.float64), sdepth=cv2.CV_64F), oh, ow, th, tw
        )
        w_var += np.maximum(s2 - s1 * s1 / n, 0.0)
    return (num / np.maximum(np.sqrt(w_var) * t_norm, 1e-6)).astype(np.float32)


def _window_sums(ii: np.ndarray, oh: int, ow: int, th: int, tw: int) -> np.ndarray:
    """Sums over every ``th × tw`` window (top-left corners ``oh × ow``) from an integral image."""
    return (
        ii[th : th + oh, tw : tw + ow]
        - ii[:oh, tw : tw + ow]
        - ii[th : th + oh, :ow]
        + ii[:oh, :ow]
    )


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

    Both descriptors are ``(C, H, W)`` on the same grid; shifts are SAR position
    minus optical position. Templates that are mostly no-data or have too little
    structure (featureless ground) are skipped. The zero-mean NCC of every
    template at every shift is computed shift by shift over the whole image
    (cost grows with pixels × shifts, not with the number of overlapping
    templates); on a template lattice (the local method's grids) the products
    are reduced to block sums that overlapping templates share
    (:func:`block_cross`).
    """
    h, w = optical_desc.shape[1:]
    x0, y0, centres = template_corners(centres, template, radius, (h, w))
    if not len(centres):
        return TemplateMatches.empty()
    optical_desc = np.ascontiguousarray(optical_desc, np.float32)
    sar_desc = np.ascontiguousarray(sar_desc, np.float32)
    keep, so, so2 = _usable_templates(
        optical_desc, sar_desc, x0, y0, template, radius, min_valid, min_structure
    )
    x0, y0, centres, so, so2 = x0[keep], y0[keep], centres[keep], so[keep], so2[keep]
    if not len(centres):
        return TemplateMatches.empty()
    offsets = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    cross = block_cross(optical_desc, sar_desc, x0, y0, template, radius)
    if cross is None:
        cross = pixel_cross(optical_desc, sar_desc, x0, y0, template, offsets)
    windows = _SarWindows(sar_desc, template, len(offsets) * len(centres))
    ncc = _ncc(cross, so, so2, windows, x0, y0, offsets)
    side = 2 * radius + 1
    surfaces = np.ascontiguousarray(ncc.T).reshape(len(centres), side, side)
    return surface_matches(surfaces, centres, radius)


def _usable_templates(
    optical_desc: np.ndarray,
    sar_desc: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    template: int,
    radius: int,
    min_valid: float,
    min_structure: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which templates are mostly data in both images (the SAR over the whole search) and have
    structure, and every template's per-channel optical sums and sums of squares (N, C)."""
    n = float(template * template)
    big = template + 2 * radius
    valid_o = box_sums(optical_desc.any(axis=0).astype(np.float32)[None], x0, y0, template)[:, 0]
    valid_s = sums_at(
        cv2.integral(sar_desc.any(axis=0).astype(np.uint8), sdepth=cv2.CV_32S),
        x0 - radius,
        y0 - radius,
        big,
    )
    keep = (valid_o / n >= min_valid) & (valid_s / (big * big) >= min_valid)
    so = box_sums(optical_desc, x0, y0, template)
    so2 = box_sums(np.square(optical_desc), x0, y0, template)
    var_c = np.maximum(so2 / n - (so / n) ** 2, 0.0)
    # structure: orientation energy that varies inside the template; flat ground has little
    keep &= np.sqrt(var_c).mean(axis=1) >= min_structure
    return keep, so, so2


class _SarWindows:
    """SAR window sums at any template position, per channel and of the per-pixel squared norm
    (which gives the sum of squares over all channels), from integral images built one
    channel at a time (:meth:`table`), so only one is held."""

    def __init__(self, sar_desc: np.ndarray, template: int, lookups: int) -> None:
        h, w = sar_desc.shape[1:]
        self.sar_desc = sar_desc
        self.template = template
        self.out_shape = (h - template + 1, w - template + 1)
        # shifts that cover the image densely: every window's sum once, then one look-up per
        # shift (not four)
        self.dense = 3 * lookups > self.out_shape[0] * self.out_shape[1]

    def table(self, channel: int) -> np.ndarray:
        """The look-up table of ``channel`` (the channel count: the squared norm)."""
        desc = self.sar_desc
        plane = desc[channel] if channel < len(desc) else np.einsum("chw,chw->hw", desc, desc)
        ii = cv2.integral(plane, sdepth=cv2.CV_64F)
        t = self.template
        return _window_sums(ii, *self.out_shape, t, t) if self.dense else ii

    def sums(self, table: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        """Sums over the windows at ``(xx, yy)`` from a :meth:`table`."""
        return table[yy, xx] if self.dense else sums_at(table, xx, yy, self.template)


def _ncc(
    cross: np.ndarray,
    so: np.ndarray,
    so2: np.ndarray,
    sar: _SarWindows,
    x0: np.ndarray,
    y0: np.ndarray,
    offsets: list[tuple[int, int]],
) -> np.ndarray:
    """Zero-mean NCC (shifts, N) float32 from the cross terms (which become the numerators in
    place) and the window sums: channel by channel, a chunk of :data:`SHIFT_CHUNK`
    shift-template pairs at a time (each float64 temporary stays small)."""
    ch = so.shape[1]
    n = float(sar.template * sar.template)
    e_o = np.maximum((so2 - so * so / n).sum(axis=1), 1e-12)
    step = max(1, SHIFT_CHUNK // len(x0))
    chunks = []
    for k0 in range(0, len(offsets), step):
        part = offsets[k0 : k0 + step]
        dx, dy = (np.array([o[i] for o in part])[:, None] for i in (0, 1))
        chunks.append((slice(k0, k0 + step), x0[None, :] + dx, y0[None, :] + dy))
    num, e_s = cross, np.empty_like(cross)
    table = sar.table(ch)
    for rows, xx, yy in chunks:
        e_s[rows] = sar.sums(table, xx, yy)
    for c in range(ch):
        table = sar.table(c)
        for rows, xx, yy in chunks:
            ss = sar.sums(table, xx, yy)
            num[rows] -= so[None, :, c] * ss / n
            e_s[rows] -= ss * ss / n
    ncc = np.empty((len(offsets), len(x0)), np.float32)
    for rows, _, _ in chunks:
        ncc[rows] = num[rows] / np.sqrt(e_o[None, :] * np.maximum(e_s[rows], 1e-12))
    return ncc


def neighbour_median(
    points: np.ndarray, vectors: np.ndarray, k: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Median of each vector's ``k`` nearest neighbours (itself excluded), and their spread around
    it (median distance)."""
    kk = min(k + 1, len(points))
    _, idx = cKDTree(points).query(points, kk, workers=-1)
    neigh = vectors[idx[:, 1:]]
    med = _row_median(neigh)
    return med, _row_median(np.linalg.norm(neigh - med[:, None], axis=2))


def _row_median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=1)`` of finite values, a few per row: sorting them is faster than
    the partition ``np.median`` does."""
    s = np.sort(a, axis=1)
    m = a.shape[1]
    return s[:, m // 2] if m % 2 else (s[:, m // 2 - 1] + s[:, m // 2]) / 2


def consistent(
    points: np.ndarray,
    vectors: np.ndarray,
    k: int = 8,
    tolerance: float = 2.0,
    mad_factor: float = 3.0,
) -> np.ndarray:
    """True for vectors that agree with the median of their ``k`` nearest neighbours.

    A vector is an outlier when it differs from that median by more than
    ``max(tolerance, mad_factor × MAD)`` (same units as the vectors).
    """
    if len(points) < 4:
        return np.ones(len(points), bool)
    med, spread = neighbour_median(points, vectors, k)
    dev = np.linalg.norm(vectors - med, axis=1)
    return dev <= np.maximum(tolerance, mad_factor * 1.4826 * spread)
