"""The compression effort of a written COG: lossless at every level, smaller at higher ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from core.grid import north_up_grid
from models.cog import CogSpec, write_cog
from models.registration import DISPLACEMENT_SPEC


def _field(window: Window) -> np.ndarray:
    rows, cols = np.mgrid[
        window.row_off : window.row_off + window.height,
        window.col_off : window.col_off + window.width,
    ]
    wave = np.sin(cols / 37.0) * 3 + np.cos(rows / 53.0) * 2 + 0.001 * cols * rows / 700
    return np.stack([wave, -wave / 2]).astype(np.float32)


def _write(path: Path, spec: CogSpec) -> np.ndarray:
    grid = north_up_grid("EPSG:32633", (500000, 4000000, 500700, 4000600), 1.0)
    write_cog(path, grid, spec, _field)
    with rasterio.open(path) as ds:
        assert ds.profile["compress"].lower() == "deflate"
        return ds.read()


def test_levels_are_lossless_and_trade_size(tmp_path: Path) -> None:
    fast = _write(tmp_path / "fast.tif", DISPLACEMENT_SPEC)
    small = _write(tmp_path / "small.tif", replace(DISPLACEMENT_SPEC, level=9))
    expected = _field(Window(0, 0, 700, 600))
    assert np.array_equal(fast, expected) and np.array_equal(small, expected)
    assert DISPLACEMENT_SPEC.level == 1
    assert (tmp_path / "small.tif").stat().st_size < (tmp_path / "fast.tif").stat().st_size
