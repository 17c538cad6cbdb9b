"""Elevated structures for ``local``: where buildings, their layover and radar shadow lie."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates, uniform_filter

from core.grid import Grid
from models.height import height_above_terrain, read_height
from models.methods.base import RegistrationInput
from models.methods.local.terrain import DSM_TERRAIN_WINDOW_M, terrain_heights, unavailable

# height above the terrain from which the surface counts as a structure, metres
STRUCTURE_MIN_HEIGHT_M = 2.5
# pixel of the structure map, metres (the native pixel when that is coarser)
STRUCTURE_PIXEL_M = 2.0


@dataclass(frozen=True)
class StructureMap:
    """Where elevated structures make the SAR differ from the ground the optical image shows:
    the structures themselves, their layover (``h·cot θ`` towards the sensor) and their radar
    shadow (``h·tan θ`` away from it), as 1.0 on a grid over the overlap."""

    grid: Grid
    affected: np.ndarray  # float32 (H, W): 1 on structures, layover or shadow, else 0
    heights: str  # where the height above terrain came from

    def share(self, x: np.ndarray, y: np.ndarray, side_m: float) -> np.ndarray:
        """Share of square templates ``side_m`` across, centred at map points ``(x, y)``, that
        lies on structures, layover or shadow.

        Args:
            x: Template centres, map x.
            y: Template centres, map y.
            side_m: Template side, metres.
        """
        size = max(1, int(round(side_m / self.grid.resolution)))
        mean = uniform_filter(self.affected, size=size, mode="constant")
        col, row = self.grid.map_to_pixel(np.ravel(x), np.ravel(y))
        coords = np.stack([row - 0.5, col - 0.5])
        return map_coordinates(mean, coords, order=1, mode="constant", cval=0.0)

    def record(self) -> dict[str, Any]:
        """What the result's details record about the map."""
        return {
            "heights": self.heights,
            "affected_share": round(float(self.affected.mean()), 3),
            "pixel_m": round(self.grid.resolution, 2),
        }


def _elevated(pair: RegistrationInput, grid: Grid) -> tuple[np.ndarray, str]:
    """Height above the terrain on ``grid`` where it is a structure (else 0), and its source.

    Without a DTM the terrain is a low percentile of the DSM, which sits below the surface on
    slopes; the threshold grows by the drop of the terrain over half the percentile window there.
    """
    assert pair.height is not None
    terrain, source = terrain_heights(pair, grid)
    above = height_above_terrain(read_height(pair.height.dsm, grid), terrain)
    threshold = np.full(grid.shape, STRUCTURE_MIN_HEIGHT_M, np.float32)
    if pair.height.dtm is None:
        filled = np.where(np.isfinite(terrain), terrain, np.nanmedian(terrain))
        gy, gx = np.gradient(filled, grid.resolution)
        threshold += np.hypot(gx, gy).astype(np.float32) * (DSM_TERRAIN_WINDOW_M / 2)
    above = np.where(np.isfinite(above) & (above >= threshold), above, 0.0)
    return above.astype(np.float32), f"DSM minus {source}"


def _mark_segments(
    grid: Grid, affected: np.ndarray, x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray
) -> None:
    """Set ``affected`` along the segments from ``(x, y)`` to ``(x + vx, y + vy)``, no step
    longer than a pixel."""
    longest = float(np.max(np.hypot(vx, vy), initial=0.0))
    steps = max(1, int(math.ceil(longest / grid.resolution)))
    for t in np.linspace(0.0, 1.0, steps + 1):
        col, row = grid.map_to_pixel(x + t * vx, y + t * vy)
        c, r = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
        inside = (c >= 0) & (c < grid.width) & (r >= 0) & (r < grid.height)
        affected[r[inside], c[inside]] = 1.0


def structure_map(pair: RegistrationInput, grid: Grid) -> StructureMap | str:
    """The structures, layover and shadow over ``grid``'s extent, or why the pair has none.

    Args:
        pair: The pair (with a height model and the SAR geometry, ground-projected).
        grid: A grid over the overlap (the field grid); the map has its extent at
            :data:`STRUCTURE_PIXEL_M` or the native pixel, whichever is coarser.
    """
    reason = unavailable(pair)
    if reason:
        return reason
    assert pair.geometry is not None
    pixel = max(STRUCTURE_PIXEL_M, pair.native_resolution())
    fine = grid.scaled(pixel / grid.resolution)
    above, source = _elevated(pair, fine)
    rows, cols = np.nonzero(above)
    affected = np.zeros(fine.shape, np.float32)
    if len(rows):
        x, y = fine.pixel_to_map(cols + 0.5, rows + 0.5)
        centre = tuple(float(v) for v in fine.pixel_to_map(fine.width / 2, fine.height / 2))
        lx, ly = pair.geometry.layover_shift_m(above[rows, cols], fine.crs, centre)
        tan2 = math.tan(math.radians(pair.geometry.incidence_deg)) ** 2
        _mark_segments(fine, affected, x, y, lx, ly)
        _mark_segments(fine, affected, x, y, -lx * tan2, -ly * tan2)
    return StructureMap(fine, affected, source)
