"""Benchmark case plans: which cases each pair gives, and the grids and field each is warped by."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS

from bench.pairs import AlignedPair
from core.grid import Grid
from samples.synth import ShiftFn, ShiftModel
from samples.urban import UrbanSpec

# Field recipe (fractions of the scene width), drawn once per case from its seed.
OFFSET_FRACTION = (0.04, 0.10)
LINEAR_MAX = 0.01  # each affine coefficient (m/m)
NONRIGID_FRACTION = (0.01, 0.03)
WAVELENGTH_FRACTION = (0.6, 1.2)
SAR_FACTOR = (1.2, 1.5)
ROTATION_DEG = (8.0, 25.0)


@dataclass(frozen=True)
class WarpRecipe:
    """How one case is made from its pair: grids and field (metres, map axes)."""

    crs: str
    origin: tuple[float, float]  # optical upper-left corner
    optical_m: float
    sar_factor: float
    rotation_deg: float
    shift: ShiftModel
    tiepoint_seed: int


@dataclass(frozen=True)
class CaseSpec:
    """A case to build: its pair and recipe (None: the pair as it is, one shared grid), or for
    the ``urban`` kind the scene to simulate (no pair)."""

    name: str
    kind: str
    pair: AlignedPair | None
    recipe: WarpRecipe | None
    seed: int
    urban: UrbanSpec | None = None


@dataclass(frozen=True)
class Case:
    """A built case on disk; ``meta`` is its ``case.json``."""

    name: str
    kind: str
    folder: Path
    warped: bool
    meta: dict[str, Any]

    @property
    def optical(self) -> Path:
        return self.folder / "optical.tif"

    @property
    def sar(self) -> Path:
        return self.folder / "sar.tif"

    @property
    def tiepoint_sets(self) -> dict[str, Path]:
        """Named tiepoint files: ``field`` (through the known field) and/or ``real`` (CFOG's
        own)."""
        return {k: self.folder / v for k, v in self.meta["tiepoints"].items()}


def case_rng(seed: int, name: str) -> np.random.Generator:
    """A generator seeded by the run seed and the case name (stable across runs and machines)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def draw_recipe(pair: AlignedPair, name: str, seed: int, rotated: bool) -> WarpRecipe:
    """Grids and an SN9-like field for one case, drawn from ``(seed, name)``; never tuned to
    results.

    The optical image gets a north-up UTM grid (the pair's own where it has one); the SAR
    gets a coarser grid (``sar_factor`` × the optical pixel), optionally rotated like an
    Umbra GEC product; the field is an offset plus an affine part plus a non-rigid part
    (:class:`samples.synth.ShiftModel`), sized as fractions of the scene width.

    Args:
        pair: The pair the case is made from.
        name: The case name (seeds the draw together with ``seed``).
        seed: The run seed.
        rotated: Whether the SAR grid is rotated.
    """
    rng = case_rng(seed, name)
    h, w = pair.shape
    px = pair.pixel_m
    width_m, height_m = w * px, h * px
    if pair.transform is not None:
        crs, origin = pair.crs, (pair.transform.c, pair.transform.f)
    else:
        crs = pair.crs
        origin = (math.floor(rng.uniform(300e3, 700e3)), math.floor(rng.uniform(3.9e6, 4.3e6)))
    centre = (origin[0] + width_m / 2, origin[1] - height_m / 2)
    mag = rng.uniform(*OFFSET_FRACTION) * width_m
    ang = rng.uniform(0, 2 * math.pi)
    linear = tuple(float(v) for v in rng.uniform(-LINEAR_MAX, LINEAR_MAX, 4))
    shift = ShiftModel(
        offset=(float(mag * math.cos(ang)), float(mag * math.sin(ang))),
        linear=linear,  # type: ignore[arg-type]
        nonrigid_m=float(rng.uniform(*NONRIGID_FRACTION) * width_m),
        wavelength_m=float(rng.uniform(*WAVELENGTH_FRACTION) * width_m),
        centre=centre,
        seed=int(rng.integers(2**31)),
    )
    rotation = float(rng.uniform(*ROTATION_DEG) * rng.choice([-1.0, 1.0])) if rotated else 0.0
    return WarpRecipe(
        crs,
        (float(origin[0]), float(origin[1])),
        px,
        float(rng.uniform(*SAR_FACTOR)),
        rotation,
        shift,
        int(rng.integers(2**31)),
    )


def plan_cases(
    pairs: dict[str, list[AlignedPair]],
    seed: int,
    warped_per_pair: dict[str, int] | None = None,
    urban_cases: int = 0,
) -> list[CaseSpec]:
    """The case list: CFOG unwarped + warped variants, VSFF variants, one case per SRIF/BigEarthNet
    pair, then the simulated ``urban`` cases (they need no pair).

    Rotation alternates (first case of each kind rotated) so every kind has both grids.

    Args:
        pairs: The pairs of each kind (:func:`bench.pairs.load_pairs`).
        seed: The run seed.
        warped_per_pair: Warped cases per pair of a kind, overriding the defaults.
        urban_cases: How many simulated urban cases (the bench plans
            :data:`bench.urban.URBAN_CASES`).
    """
    from bench.urban import draw_urban_spec, urban_spec_names

    per_pair = {"cfog": 3, "vsff": 3, "srif": 1, "bigearthnet": 1, **(warped_per_pair or {})}
    specs: list[CaseSpec] = []
    for kind, found in pairs.items():
        i = 0
        for pair in found:
            if pair.real_tiepoints is not None:
                specs.append(CaseSpec(f"{pair.name}-unwarped", kind, pair, None, seed))
            n = per_pair.get(kind, 1)
            for v in range(n):
                name = f"{pair.name}-w{v}" if n > 1 else pair.name
                specs.append(
                    CaseSpec(
                        name, kind, pair, draw_recipe(pair, name, seed, rotated=i % 2 == 0), seed
                    )
                )
                i += 1
    for name in urban_spec_names(urban_cases):
        specs.append(CaseSpec(name, "urban", None, None, seed, draw_urban_spec(name, seed)))
    return specs


def grid_dict(g: Grid) -> dict[str, Any]:
    """A grid as stored in ``case.json``."""
    return {
        "crs": g.crs.to_string(),
        "transform": list(g.transform)[:6],
        "width": g.width,
        "height": g.height,
    }


def _grid_from_dict(d: dict[str, Any]) -> Grid:
    return Grid(CRS.from_user_input(d["crs"]), Affine(*d["transform"]), d["width"], d["height"])


def case_grids(case: Case) -> tuple[Grid, Grid]:
    """The optical and SAR grids of a built case."""
    return _grid_from_dict(case.meta["optical_grid"]), _grid_from_dict(case.meta["sar_grid"])


def case_shift(case: Case) -> ShiftFn | None:
    """The known field of a warped case (None for an unwarped pair: its reference is no shift);
    for an ``urban`` case, its simulated reference field."""
    if not case.warped:
        return None
    if case.kind == "urban":
        from bench.urban import reference_fn

        return reference_fn(case.folder, case_grids(case)[0])
    r = case.meta["recipe"]["shift"]
    return ShiftModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})


__all__ = [
    "Case",
    "CaseSpec",
    "WarpRecipe",
    "case_grids",
    "case_rng",
    "case_shift",
    "draw_recipe",
    "grid_dict",
    "plan_cases",
]
