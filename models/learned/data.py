"""Training pairs of the learned descriptor: preparation, splits, manifests and warped patches."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.preprocess import prepare_optical, sar_to_db
from models.sar_adaptive import adaptive_sar


@dataclass(frozen=True, eq=False)
class TrainingPair:
    """An optical/SAR pair prepared as the ``local`` method prepares its tiles.

    ``optical`` and ``sar`` are one band each, float32 in [0, 1], NaN = no data
    (see :func:`prepare_pair`). ``points`` (N, 4): optical col, row → SAR col, row
    (pixel-centre convention, both images alike); None when the two images are
    already aligned on one lattice.
    """

    name: str
    source: str  # dataset or source id: splits and manifests group by it
    optical: np.ndarray
    sar: np.ndarray
    points: np.ndarray | None = None


def prepare_pair(
    name: str,
    source: str,
    optical: np.ndarray,
    sar: np.ndarray,
    sar_dtype: str = "float32",
    points: np.ndarray | None = None,
) -> TrainingPair:
    """A :class:`TrainingPair` from raw arrays, prepared like ``local``'s ``match_tile``.

    The optical bands become percentile-stretched luminance (``prepare_optical``);
    the SAR is log-scaled (``sar_to_db``) and prepared by ``adaptive_sar``.

    Args:
        name: The pair's name (unique in a training set).
        source: Its dataset or source id.
        optical: Optical bands (bands, H, W) or one band (H, W); NaN = no data.
        sar: SAR amplitude (H, W); NaN = no data.
        sar_dtype: The SAR file's data type (8-bit SAR is display-scaled already).
        points: (N, 4) optical col, row → SAR col, row, or None when aligned.
    """
    opt = prepare_optical(np.asarray(optical, np.float32))
    sar_img, _ = adaptive_sar(sar_to_db(np.asarray(sar, np.float32), "auto", sar_dtype))
    pts = None if points is None else np.asarray(points, np.float64).reshape(-1, 4)
    return TrainingPair(name, source, opt.astype(np.float32), sar_img.astype(np.float32), pts)


def aligned_sar(pair: TrainingPair, cell: int = 16) -> np.ndarray:
    """The pair's SAR on the optical lattice: itself when aligned, else resampled through a
    smooth mapping fitted to ``points`` (thin-plate spline with an affine part).

    The mapping is evaluated every ``cell`` pixels and interpolated between; pixels
    far outside the points' extent are no data.

    Args:
        pair: The training pair.
        cell: The spacing (optical pixels) of the mapping's evaluation lattice.
    """
    if pair.points is None:
        return pair.sar
    from scipy.interpolate import RBFInterpolator
    from scipy.ndimage import map_coordinates

    pts = pair.points
    if len(pts) < 3:
        raise ValueError(f"pair {pair.name}: {len(pts)} points; a mapping needs at least 3")
    h, w = pair.optical.shape
    smoothing = float(len(pts))  # tolerate tiepoint noise of about a pixel
    fit = RBFInterpolator(pts[:, :2], pts[:, 2:], kernel="thin_plate_spline", smoothing=smoothing)
    # the mapping on a lattice every ``cell`` px (one cell beyond each edge), bilinear between
    ticks_y = np.arange(-cell, h + 2 * cell, cell, dtype=np.float64)
    ticks_x = np.arange(-cell, w + 2 * cell, cell, dtype=np.float64)
    gx, gy = np.meshgrid(ticks_x, ticks_y)
    lattice = fit(np.column_stack([gx.ravel() + 0.5, gy.ravel() + 0.5]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    where = [(yy + cell) / cell, (xx + cell) / cell]
    maps = [
        map_coordinates(lattice[:, i].reshape(gx.shape), where, order=1).astype(np.float32) - 0.5
        for i in range(2)
    ]
    out = cv2.remap(
        pair.sar,
        maps[0],
        maps[1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    lo, hi = pts[:, :2].min(axis=0) - 2 * cell, pts[:, :2].max(axis=0) + 2 * cell
    out[(xx < lo[0]) | (xx > hi[0]) | (yy < lo[1]) | (yy > hi[1])] = np.nan
    return out


def pair_digest(pair: TrainingPair) -> str:
    """SHA-256 of the pair's arrays (optical, SAR, points), shapes and dtypes included.

    Args:
        pair: The training pair.
    """
    h = hashlib.sha256()
    arrays = [pair.optical, pair.sar] + ([] if pair.points is None else [pair.points])
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def split_pairs(
    pairs: Sequence[TrainingPair], val_share: float, seed: int
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """Train and validation pairs: whole pairs, never patches, drawn per source.

    Each source gives ``round(val_share × its pairs)`` validation pairs, ranked by
    a hash of (seed, name) so adding a pair does not reshuffle the others; with
    at least two pairs and ``val_share > 0`` at least one is held out, and at
    least one is kept for training.

    Args:
        pairs: All pairs (names unique).
        val_share: The share of pairs held out for validation.
        seed: Seeds the ranking.
    """
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"training pair names must be unique: {', '.join(dup)}")

    def rank(p: TrainingPair) -> int:
        return zlib.crc32(f"{seed}/{p.name}".encode())

    val: list[TrainingPair] = []
    for source in sorted({p.source for p in pairs}):
        group = sorted((p for p in pairs if p.source == source), key=rank)
        val += group[: int(np.floor(val_share * len(group) + 0.5))]
    if not val and val_share > 0 and len(pairs) >= 2:
        val = [min(pairs, key=rank)]
    if len(val) == len(pairs):
        val = val[1:]
    held = {p.name for p in val}
    return [p for p in pairs if p.name not in held], val


def manifest(pairs: Sequence[TrainingPair], split: dict[str, list[str]]) -> dict[str, Any]:
    """What a model was trained on: sources, pairs with their sizes and digests, the split.

    Args:
        pairs: Every pair given to training.
        split: ``{"train": names, "val": names}``.
    """
    sources: dict[str, int] = {}
    for p in pairs:
        sources[p.source] = sources.get(p.source, 0) + 1
    return {
        "sources": sources,
        "counts": {"pairs": len(pairs), "train": len(split["train"]), "val": len(split["val"])},
        "pairs": [
            {
                "name": p.name,
                "source": p.source,
                "shape": list(p.optical.shape),
                "points": None if p.points is None else len(p.points),
                "sha256": pair_digest(p),
            }
            for p in pairs
        ],
        "split": split,
    }
