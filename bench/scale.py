"""Scene-scale benchmark cases: up to 20 000² optical / rotated SAR scenes tiled from real pairs."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from bench.build import (
    BUILDER_VERSION,
    cached_meta,
    inverse_field,
    jittered_pixels,
    prefilter,
    write_case_folder,
)
from bench.cases import Case, case_rng, grid_dict
from bench.pairs import AlignedPair
from core.grid import Grid
from models.cog import CogSpec, write_cog
from models.scoring import Tiepoints, write_tiepoints
from samples.synth import ShiftModel

FULL_SIDE = 10_000
TILE_PX = 500


@dataclass(frozen=True)
class ScaleRecipe:
    """The shared ground lattice and field of every scale case.

    ``full_side`` is the reference square (10 000² optical pixels) the field is centred on;
    every case is a centred window of the lattice, and a case wider than the square reaches
    beyond it (the mosaic and the field are defined everywhere).
    """

    crs: str
    origin: tuple[float, float]
    optical_m: float
    sar_m: float
    rotation_deg: float
    shift: ShiftModel
    seed: int
    tile_px: int = TILE_PX
    full_side: int = FULL_SIDE
    period_px: int = 0  # repetitive ground: the ground repeats every period_px pixels (0: not)

    @property
    def name(self) -> str:
        """The case name prefix: ``scale`` or, on repetitive ground, ``scale-rep``."""
        return "scale-rep" if self.period_px else "scale"

    def full_grid(self) -> Grid:
        return Grid(
            CRS.from_user_input(self.crs),
            Affine(self.optical_m, 0.0, self.origin[0], 0.0, -self.optical_m, self.origin[1]),
            self.full_side,
            self.full_side,
        )


def draw_scale_recipe(seed: int, repetitive: bool = False) -> ScaleRecipe:
    """The scale cases' recipe, drawn from ``seed``.

    An SN9-like field (offset 25–35 m, small affine part, non-rigid ~10 m over 1–2 km: the
    magnitudes of the real SN9 tiepoints) and a 0.65 m SAR grid rotated 8–20°, like an Umbra
    GEC product, over a 0.5 m optical grid. Repetitive ground (``repetitive``) has the same
    grids and field and a period of 250–500 m, drawn from the seed on its own.

    Args:
        seed: The recipe seed.
        repetitive: Whether the ground repeats (see :class:`RepeatingMosaic`).
    """
    rng = case_rng(seed, "scale")
    optical_m = 0.5
    origin = (
        float(math.floor(rng.uniform(350e3, 650e3))),
        float(math.floor(rng.uniform(4.0e6, 4.2e6))),
    )
    side_m = FULL_SIDE * optical_m
    centre = (origin[0] + side_m / 2, origin[1] - side_m / 2)
    mag, ang = rng.uniform(25.0, 35.0), rng.uniform(0, 2 * math.pi)
    shift = ShiftModel(
        offset=(float(mag * math.cos(ang)), float(mag * math.sin(ang))),
        linear=tuple(float(v) for v in rng.uniform(-0.002, 0.002, 4)),  # type: ignore[arg-type]
        nonrigid_m=float(rng.uniform(8.0, 12.0)),
        wavelength_m=float(rng.uniform(1200.0, 2000.0)),
        centre=centre,
        seed=int(rng.integers(2**31)),
    )
    rotation = float(rng.uniform(8.0, 20.0) * rng.choice([-1.0, 1.0]))
    period = 0
    if repetitive:
        period = int(round(case_rng(seed, "scale-rep").uniform(250.0, 500.0) / optical_m))
    return ScaleRecipe(
        "EPSG:32637", origin, optical_m, 0.65, rotation, shift, seed, period_px=period
    )


class Mosaic:
    """The endless tiled ground: any pixel window of the lattice, optical (3×uint8) and SAR
    (float32).

    Tiles are cut from the pre-aligned real pairs, each with its own random crop, rotation
    by a multiple of 90° and flip, seeded by the tile index: the mosaic is not periodic and
    any window can be rendered on its own.
    """

    def __init__(
        self, sources: list[AlignedPair], seed: int, tile_px: int = TILE_PX, cache: int = 64
    ) -> None:
        self.sources = []
        for p in sources:
            optical = (
                p.optical[:3] if p.optical.shape[0] >= 3 else np.repeat(p.optical[:1], 3, axis=0)
            )
            if optical.dtype != np.uint8 or min(p.shape) < tile_px:
                raise ValueError(
                    f"mosaic source {p.name}: needs uint8 optical at least {tile_px}² "
                    f"(got {optical.dtype}, {p.shape})"
                )
            self.sources.append((optical, np.nan_to_num(p.sar, nan=0.0).astype(np.float32)))
        self.seed = seed
        self.tile_px = tile_px
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache

    def tile(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile (row i, column j): a random crop of a random source, rotated by k·90° and maybe
        flipped."""
        key = (i, j)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        rng = np.random.default_rng([self.seed, i + 2**20, j + 2**20])
        optical, sar = self.sources[int(rng.integers(len(self.sources)))]
        t = self.tile_px
        y = int(rng.integers(0, sar.shape[0] - t + 1))
        x = int(rng.integers(0, sar.shape[1] - t + 1))
        o, s = optical[:, y : y + t, x : x + t], sar[y : y + t, x : x + t]
        k = int(rng.integers(4))
        o, s = np.rot90(o, k, axes=(1, 2)), np.rot90(s, k)
        if rng.integers(2):
            o, s = o[:, :, ::-1], s[:, ::-1]
        out = (np.ascontiguousarray(o), np.ascontiguousarray(s))
        self._cache[key] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def window(
        self, col0: int, row0: int, width: int, height: int, want: str = "both"
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Optical (3, h, w) and/or SAR (h, w) of a lattice window (indices may be negative)."""
        t = self.tile_px
        optical = np.empty((3, height, width), np.uint8) if want in ("both", "optical") else None
        sar = np.empty((height, width), np.float32) if want in ("both", "sar") else None
        for i in range(math.floor(row0 / t), math.floor((row0 + height - 1) / t) + 1):
            for j in range(math.floor(col0 / t), math.floor((col0 + width - 1) / t) + 1):
                to, ts = self.tile(i, j)
                r0, r1 = max(row0, i * t), min(row0 + height, (i + 1) * t)
                c0, c1 = max(col0, j * t), min(col0 + width, (j + 1) * t)
                dst = (slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0))
                src = (slice(r0 - i * t, r1 - i * t), slice(c0 - j * t, c1 - j * t))
                if optical is not None:
                    optical[(slice(None), *dst)] = to[(slice(None), *src)]
                if sar is not None:
                    sar[dst] = ts[src]
        return optical, sar


class RepeatingMosaic(Mosaic):
    """Repetitive ground: the mosaic's first ``period``² pixels repeated over the whole lattice.

    Every feature recurs ``period`` pixels away along both axes (fields, orchards, housing
    blocks laid out on a plan), so a template or keypoint has many equally good matches.
    """

    def __init__(
        self, sources: list[AlignedPair], seed: int, period: int, tile_px: int = TILE_PX
    ) -> None:
        super().__init__(sources, seed, tile_px)
        self.period = period
        self._pattern = super().window(0, 0, period, period)

    def window(
        self, col0: int, row0: int, width: int, height: int, want: str = "both"
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Optical (3, h, w) and/or SAR (h, w) of a lattice window (indices may be negative)."""
        rows = np.arange(row0, row0 + height) % self.period
        cols = np.arange(col0, col0 + width) % self.period
        pattern_optical, pattern_sar = self._pattern
        assert pattern_optical is not None and pattern_sar is not None
        optical = pattern_optical[:, rows][:, :, cols] if want in ("both", "optical") else None
        sar = pattern_sar[np.ix_(rows, cols)] if want in ("both", "sar") else None
        return optical, sar


def scale_mosaic(sources: list[AlignedPair], recipe: ScaleRecipe) -> Mosaic:
    """The ground of a recipe: the tiled mosaic, repeated when the recipe has a period."""
    if recipe.period_px:
        return RepeatingMosaic(sources, recipe.seed, recipe.period_px, recipe.tile_px)
    return Mosaic(sources, recipe.seed, recipe.tile_px)


def scale_grids(recipe: ScaleRecipe, side: int) -> tuple[Grid, Grid, int]:
    """Optical grid (centred ``side``² window of the lattice), rotated SAR grid, and the window
    offset (negative when ``side`` exceeds the reference square)."""
    full = recipe.full_grid()
    off = (recipe.full_side - side) // 2
    optical = full.window_grid(off, off, side, side)
    n = int(math.ceil(side * recipe.optical_m / recipe.sar_m))
    cx, cy = optical.pixel_to_map(side / 2, side / 2)
    dx, dy = recipe.shift(np.array([cx]), np.array([cy]))
    theta = math.radians(recipe.rotation_deg)
    ca, sa = math.cos(theta), math.sin(theta)
    res = recipe.sar_m
    t = Affine(res * ca, -res * sa, 0.0, -res * sa, -res * ca, 0.0)
    ox = float(cx + dx[0]) - (t.a + t.b) * n / 2
    oy = float(cy + dy[0]) - (t.d + t.e) * n / 2
    return optical, Grid(optical.crs, Affine(t.a, t.b, ox, t.d, t.e, oy), n, n), off


def _corner_nodata(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """Slanted no-data corners, as on Umbra GEC products."""
    return (np.abs(rows - n / 2) + np.abs(cols - n / 2)) > 0.92 * n


def _sar_block(recipe: ScaleRecipe, mosaic: Mosaic, sar_grid: Grid, w: Window) -> np.ndarray:
    """One window of the SAR: the mosaic's SAR seen through the field, with no-data corners."""
    full = recipe.full_grid()
    sub = sar_grid.window_grid(int(w.col_off), int(w.row_off), int(w.width), int(w.height))
    x, y = sub.pixel_centres()
    gx, gy = inverse_field(recipe.shift, x, y)
    col, row = full.map_to_pixel(gx, gy)
    c0, r0 = int(math.floor(col.min())) - 4, int(math.floor(row.min())) - 4
    c1, r1 = int(math.ceil(col.max())) + 4, int(math.ceil(row.max())) + 4
    _, ground = mosaic.window(c0, r0, c1 - c0, r1 - r0, "sar")
    values = cv2.remap(
        prefilter(ground, recipe.sar_m / recipe.optical_m),
        (col - 0.5 - c0).astype(np.float32),
        (row - 0.5 - r0).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    out = np.clip(np.rint(values), 1, 255).astype(np.uint8)
    rr, cc = np.mgrid[
        int(w.row_off) : int(w.row_off + w.height), int(w.col_off) : int(w.col_off + w.width)
    ]
    out[_corner_nodata(rr + 0.5, cc + 0.5, sar_grid.width)] = 0
    return out[None]


def _write_scale_tiepoints(
    path: Path, recipe: ScaleRecipe, side: int, optical: Grid, sar_grid: Grid
) -> int:
    """Jittered optical pixels mapped through the field, kept off the no-data corners; how many."""
    rows, cols = jittered_pixels(side, side, 20, np.random.default_rng([recipe.seed, side]))
    xo, yo = optical.pixel_to_map(cols, rows)
    dx, dy = recipe.shift(xo, yo)
    sc, sr = sar_grid.map_to_pixel(xo + dx, yo + dy)
    n = sar_grid.width
    ok = (
        (sc >= 0)
        & (sr >= 0)
        & (sc < n)
        & (sr < n)
        & ~_corner_nodata(np.floor(sr) + 0.5, np.floor(sc) + 0.5, n)
    )
    write_tiepoints(path, Tiepoints(sr[ok], sc[ok], rows[ok], cols[ok]), decimals=3)
    return int(ok.sum())


def build_scale_files(
    recipe: ScaleRecipe, mosaic: Mosaic, side: int, folder: Path
) -> dict[str, Any]:
    """Write one scale case (optical.tif, sar.tif, tiepoints.csv) into ``folder``; its metadata.

    Both images are written window by window (:func:`models.cog.write_cog`: tiled,
    compressed, overviews), so no whole scene is ever held in memory.

    Args:
        recipe: The shared ground lattice and field.
        mosaic: The tiled ground.
        side: The optical scene side (pixels), a centred window of the lattice.
        folder: Where the files go.
    """
    optical, sar_grid, off = scale_grids(recipe, side)

    def optical_block(w: Window) -> np.ndarray:
        o, _ = mosaic.window(
            off + int(w.col_off), off + int(w.row_off), int(w.width), int(w.height), "optical"
        )
        return o  # type: ignore[return-value]

    write_cog(
        folder / "optical.tif",
        optical,
        CogSpec(count=3, dtype="uint8", nodata=None, block=512),
        optical_block,
    )
    write_cog(
        folder / "sar.tif",
        sar_grid,
        CogSpec(count=1, dtype="uint8", nodata=0, block=512),
        lambda w: _sar_block(recipe, mosaic, sar_grid, w),
    )
    n = _write_scale_tiepoints(folder / "tiepoints.csv", recipe, side, optical, sar_grid)
    note = f"{side}² window centred on the {recipe.full_side}² reference square of the ground"
    if recipe.period_px:
        note += f", repeating every {recipe.period_px * recipe.optical_m:.0f} m"
    return {
        "name": f"{recipe.name}-{side}",
        "kind": "scale",
        "warped": True,
        "seed": recipe.seed,
        "builder_version": BUILDER_VERSION,
        "source": "mosaic of VSFF and CFOG tiles",
        "note": note,
        "recipe": dataclasses.asdict(recipe),
        "optical_grid": grid_dict(optical),
        "sar_grid": grid_dict(sar_grid),
        "tiepoints": {"field": "tiepoints.csv"},
        "n_tiepoints": {"field": n},
    }


def build_scale_case(
    sources: list[AlignedPair],
    seed: int,
    side: int,
    cases_root: Path,
    rebuild: bool = False,
    repetitive: bool = False,
) -> Case:
    """``cases_root/scale-<side>`` (``scale-rep-<side>`` on repetitive ground), built window by
    window when missing or stale.

    Sizes share the ground and the field (nested, centred windows), so their runtimes
    compare area for area.

    Args:
        sources: The pairs the mosaic tiles are cut from.
        seed: The recipe and mosaic seed.
        side: The optical scene side (pixels).
        cases_root: The folder holding every case folder.
        rebuild: Build even when an up-to-date case is cached.
        repetitive: Repetitive ground (:class:`RepeatingMosaic`), same grids and field.
    """
    recipe = draw_scale_recipe(seed, repetitive)
    name = f"{recipe.name}-{side}"
    folder = cases_root / name
    key = (
        f"{BUILDER_VERSION}|scale|{json.dumps(dataclasses.asdict(recipe), sort_keys=True)}|{side}|"
        + ",".join(s.source for s in sources)
    )
    meta = cached_meta(folder, key, rebuild)
    if meta is None:
        meta = write_case_folder(
            folder,
            key,
            lambda tmp: build_scale_files(recipe, scale_mosaic(sources, recipe), side, tmp),
        )
    return Case(name, "scale", folder, True, meta)


__all__ = [
    "FULL_SIDE",
    "Mosaic",
    "RepeatingMosaic",
    "ScaleRecipe",
    "build_scale_case",
    "build_scale_files",
    "draw_scale_recipe",
    "scale_grids",
    "scale_mosaic",
]
