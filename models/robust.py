"""Robust geometric models fitted to matched map points (OpenCV USAC/MAGSAC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Model = Literal["translation", "affine", "homography"]


@dataclass(frozen=True)
class RobustFit:
    """``dst ≈ model(src)`` in map coordinates, with the inlier mask."""

    kind: Model
    matrix: np.ndarray  # 3x3, acting on coordinates relative to ``origin``
    origin: np.ndarray  # (2,) centring point for numerical conditioning
    inliers: np.ndarray  # bool (N,)

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = np.asarray(x, float) - self.origin[0]
        v = np.asarray(y, float) - self.origin[1]
        m = self.matrix
        w = m[2, 0] * u + m[2, 1] * v + m[2, 2]
        xu = (m[0, 0] * u + m[0, 1] * v + m[0, 2]) / w
        yv = (m[1, 0] * u + m[1, 1] * v + m[1, 2]) / w
        return xu + self.origin[0], yv + self.origin[1]

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, Y = self.apply(x, y)
        return X - np.asarray(x, float), Y - np.asarray(y, float)

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())


def fit_robust(
    src: np.ndarray,
    dst: np.ndarray,
    threshold: float,
    kind: Model = "affine",
    min_inliers: int = 6,
    max_iters: int = 5000,
    confidence: float = 0.999,
) -> RobustFit | None:
    """MAGSAC++ fit of ``dst = model(src)`` (both (N, 2) map points); None when unsupported."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    need = {"translation": 2, "affine": 3, "homography": 4}[kind]
    if len(src) < max(need, min_inliers):
        return None
    origin = src.mean(axis=0)
    s = (src - origin).astype(np.float32)
    d = (dst - origin).astype(np.float32)
    if kind == "translation":
        inliers = _translation_inliers(s, d, threshold)
        if inliers.sum() < min_inliers:
            return None
        t = np.median(d[inliers] - s[inliers], axis=0)
        m = np.array([[1, 0, t[0]], [0, 1, t[1]], [0, 0, 1]], np.float64)
    elif kind == "affine":
        a, mask = cv2.estimateAffine2D(
            s,
            d,
            method=cv2.USAC_MAGSAC,
            ransacReprojThreshold=threshold,
            maxIters=max_iters,
            confidence=confidence,
        )
        if a is None:
            return None
        m = np.vstack([a, [0, 0, 1]])
        inliers = mask.ravel().astype(bool)
    else:
        h, mask = cv2.findHomography(
            s, d, cv2.USAC_MAGSAC, threshold, maxIters=max_iters, confidence=confidence
        )
        if h is None:
            return None
        m = h
        inliers = mask.ravel().astype(bool)
    if inliers.sum() < min_inliers:
        return None
    return RobustFit(kind, m, origin, inliers)


def _translation_inliers(s: np.ndarray, d: np.ndarray, threshold: float) -> np.ndarray:
    """Inliers of the translation with the largest consensus (every match votes)."""
    t = d - s
    best = np.zeros(len(t), bool)
    for cand in t[:: max(1, len(t) // 500)]:
        ok = np.hypot(*(t - cand).T) < threshold
        if ok.sum() > best.sum():
            best = ok
    return best
