"""A height model and SAR geometry for the scale cases: the cost of ``--height`` at scene size.

The scale scenes are tiled from real pairs whose SAR holds no layover, so this DSM/DTM does not
describe them: it exists to measure what reading a height model by windows, the terrain prior
and the structure map cost on a 10 000² scene, not to improve its accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.windows import Window

from bench.cases import Case, case_grids, case_rng
from core.grid import Grid, north_up_grid
from models.cog import CogSpec, write_cog
from models.sar_geometry import SarGeometry
from samples.urban_scene import Terrain, draw_terrain

# pixel of the height model, metres
HEIGHT_PIXEL_M = 1.0
# margin of the height model beyond the optical grid, metres
HEIGHT_MARGIN_M = 200.0
# side of the lattice cells that hold one building each, metres
CELL_M = 40.0


def scale_geometry(case: Case) -> SarGeometry:
    """The SAR geometry given with the case's height model (drawn from its name)."""
    rng = case_rng(case.meta.get("seed", 0), f"{case.name}-geometry")
    return SarGeometry(
        float(rng.uniform(25.0, 50.0)), float(rng.uniform(0.0, 360.0)), True, "option", case.name
    )


def _buildings(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Building heights at map points: one block per :data:`CELL_M` cell on a lattice, present,
    sized and as tall as a hash of the cell says (0 off buildings)."""
    i, j = np.floor(x / CELL_M).astype(np.int64), np.floor(y / CELL_M).astype(np.int64)
    h = (i * 73856093) ^ (j * 19349663) ^ seed
    u = ((h * 2654435761) % 2**32).astype(np.float64) / 2**32
    fx, fy = x / CELL_M - i, y / CELL_M - j
    half = 0.2 + 0.25 * ((u * 7.0) % 1.0)  # footprint 16–36 m of the 40 m cell
    inside = (np.abs(fx - 0.5) < half) & (np.abs(fy - 0.5) < half) & (u < 0.6)
    return np.where(inside, 3.0 + 45.0 * ((u * 13.0) % 1.0), 0.0)


def _height_grid(case: Case) -> Grid:
    """A north-up grid over the case's optical grid and :data:`HEIGHT_MARGIN_M` around it."""
    optical = case_grids(case)[0]
    left, bottom, right, top = optical.footprint().bounds
    m = HEIGHT_MARGIN_M
    return north_up_grid(optical.crs, (left - m, bottom - m, right + m, top + m), HEIGHT_PIXEL_M)


def _write(path: Path, grid: Grid, terrain: Terrain, seed: int, surface: bool) -> None:
    def block(w: Window) -> np.ndarray:
        sub = grid.window_grid(int(w.col_off), int(w.row_off), int(w.width), int(w.height))
        h = terrain.on_grid(sub)
        if surface:
            x, y = sub.pixel_centres()
            h = h + _buildings(x, y, seed).astype(np.float32)
        return h[None]

    spec = CogSpec(count=1, dtype="float32", nodata=None, units=("metre",), block=512)
    write_cog(path, grid, spec, block)


def scale_heights(case: Case) -> dict[str, str]:
    """``dsm.tif`` and ``dtm.tif`` in the case folder (written once), by name; ``bench.run``
    gives them to the methods under ``--height``.

    Args:
        case: A built scale case.
    """
    files = {name: case.folder / f"{name}.tif" for name in ("dsm", "dtm")}
    if not all(p.is_file() for p in files.values()):
        grid = _height_grid(case)
        rng = case_rng(case.meta.get("seed", 0), f"{case.name}-height")
        size_m = grid.width * grid.resolution
        centre = grid.pixel_to_map(grid.width / 2, grid.height / 2)
        terrain = draw_terrain(rng, (float(centre[0]), float(centre[1])), size_m, 40.0)
        seed = int(rng.integers(0, 2**31))
        _write(files["dtm"], grid, terrain, seed, surface=False)
        _write(files["dsm"], grid, terrain, seed, surface=True)
    return {name: str(p.resolve()) for name, p in files.items()}


__all__ = ["HEIGHT_PIXEL_M", "scale_geometry", "scale_heights"]
