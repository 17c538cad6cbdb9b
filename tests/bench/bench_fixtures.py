"""Tiny generated "pre-aligned" optical/SAR pairs for the benchmark tests (never the real data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import rasterio

from bench.pairs import AlignedPair


def texture(size: int, seed: int, sigma: float = 2.5) -> np.ndarray:
    """Smooth random ground texture in [0, 1]."""
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
    a = (a - a.min()) / (a.max() - a.min())
    return a.astype(np.float32)


def tiny_pair(size: int = 160, seed: int = 3, with_tiepoints: bool = True) -> AlignedPair:
    """Optical (1 band uint8) and a SAR-like rendering of the same ground on one lattice, plus
    tiepoints."""
    ground = texture(size, seed)
    optical = np.clip(ground * 230 + 10, 0, 255).astype(np.uint8)[None]
    rng = np.random.default_rng(seed + 1)
    sar = np.clip((1.0 - ground) * 200 * rng.gamma(8.0, 1 / 8.0, ground.shape) + 20, 1, 255).astype(
        np.float32
    )
    tp = None
    if with_tiepoints:
        pts = rng.uniform(10, size - 10, (30, 2))
        # a real pair is only "close to aligned": the SAR feature sits 0.3 px away
        tp = np.column_stack([pts, pts + [0.3, -0.2]])
    return AlignedPair(
        "tiny",
        "cfog",
        optical,
        sar,
        "uint8",
        1.0,
        real_tiepoints=tp,
        source=f"generated seed {seed}",
    )


def write_cfog_like(root: Path, size: int = 160, seed: int = 5) -> Path:
    """A ``pairs/`` folder with a generated CFOG-layout pair: two plain TIFFs (no CRS) and a MATLAB
    tiepoint file."""
    pair = tiny_pair(size, seed=seed)
    folder = root / "pairs" / "cfog"
    folder.mkdir(parents=True)
    for name, data in (
        ("visible1_ref.tif", pair.optical[0]),
        ("SAR1_sen.tif", pair.sar.astype(np.uint8)),
    ):
        with rasterio.open(
            folder / name, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8"
        ) as ds:
            ds.write(data, 1)
    # MATLAB 1-based pixel coordinates: corner convention + 0.5
    np.savetxt(folder / "visibleToSAR1_CP.txt", pair.real_tiepoints + 0.5, fmt="%10.2f")
    return root / "pairs"
