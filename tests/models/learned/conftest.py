"""Aligned synthetic optical/SAR training pairs, prepared like ``local`` prepares its tiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from models.learned import TrainingPair, prepare_pair
from models.raster import open_raster, read_on_grid
from samples.synth import SceneSpec, ShiftModel, synthesize_pair


def aligned_synthetic_pair(
    folder: Path, seed: int, size_m: float = 160.0, looks: float = 3.0
) -> TrainingPair:
    """A radar-like synthetic pair with its SAR resampled onto the optical grid (no shift).

    Args:
        folder: Where the GeoTIFFs go.
        seed: The scene seed.
        size_m: The scene side (metres, 0.5 m pixels).
        looks: The SAR speckle looks (more: less speckle).
    """
    spec = SceneSpec(
        size_m=size_m,
        shift=ShiftModel(offset=(0.0, 0.0)),
        sar_rotation_deg=0.0,
        sar_res=0.5,
        seed=seed,
        n_tiepoints=5,
        speckle_looks=looks,
    )
    files = synthesize_pair(folder, spec, f"s{seed}")
    with rasterio.open(files.optical) as ds:
        optical = ds.read().astype(np.float32)
    sar = read_on_grid(open_raster(files.sar, "sar"), files.optical_grid)[0]
    return prepare_pair(f"s{seed}", f"synth{seed % 2}", optical, sar, "uint8")


@pytest.fixture(scope="session")
def synth_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[TrainingPair]:
    """Six aligned synthetic pairs from two sources (320 × 320 px)."""
    folder = tmp_path_factory.mktemp("learned_pairs")
    return [aligned_synthetic_pair(folder, seed) for seed in range(6)]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread (tiny convolutions gain little from more, and a busy machine's
    thread synchronisation costs a lot), restoring the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
