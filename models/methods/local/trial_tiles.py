"""The first-level tiles each prior is tried on, and the kept prior's first level completed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from shapely.geometry.base import BaseGeometry

from models.methods.local.tiles import TileJob


def core_footprint(job: TileJob) -> BaseGeometry:
    """The outline of a tile job's core (without its margin), in the tile grid's CRS."""
    c0, r0, c1, r1 = job.core
    return job.grid.window_grid(c0, r0, c1 - c0, r1 - r0).footprint()


def trial_tiles(jobs: Sequence[TileJob], overlap: BaseGeometry, most: int) -> list[int]:
    """Indices, in tile order, of the tiles the priors are tried on.

    Every tile when there are at most ``most`` (or ``most`` is 0); otherwise the ``most``
    whose cores cover the most of the overlap (a rotated SAR leaves the corners of the level
    grid empty), ties in tile order.

    Args:
        jobs: One prior's first-level tile jobs (every prior has the same tiles).
        overlap: The pair's overlap, in the tiles' CRS.
        most: Tiles to try each prior on at most (0: all).
    """
    if most <= 0 or len(jobs) <= most:
        return list(range(len(jobs)))
    covered = np.array([core_footprint(job).intersection(overlap).area for job in jobs])
    best = np.argsort(-covered, kind="stable")[:most]
    return sorted(int(i) for i in best)
