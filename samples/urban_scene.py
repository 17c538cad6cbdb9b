"""An urban height model: analytic terrain with relief, and city blocks of flat-roofed buildings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine

from core.grid import Grid

# classes of a rasterised scene
GROUND, STREET, ROOF, VEGETATION = 0, 1, 2, 3


@dataclass(frozen=True)
class Terrain:
    """Height above the projection's reference surface (m): a plane plus smooth waves.

    Args:
        centre: Map point where the plane is zero.
        slope: d(height)/dx and d(height)/dy of the plane (m/m).
        waves: (amplitude m, kx rad/m, ky rad/m, phase rad) of each wave.
    """

    centre: tuple[float, float]
    slope: tuple[float, float]
    waves: tuple[tuple[float, float, float, float], ...]

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = np.asarray(x, float) - self.centre[0]
        v = np.asarray(y, float) - self.centre[1]
        h = self.slope[0] * u + self.slope[1] * v
        for a, kx, ky, p in self.waves:
            h = h + a * np.sin(kx * u + ky * v + p)
        return h

    def on_grid(self, grid: Grid) -> np.ndarray:
        """The height at every pixel centre of ``grid`` (float32; separable, so fast)."""
        t = grid.transform
        col = np.arange(grid.width, dtype=np.float64) + 0.5
        row = np.arange(grid.height, dtype=np.float64) + 0.5
        u0, v0 = t.c - self.centre[0], t.f - self.centre[1]

        def phase(kx: float, ky: float) -> tuple[np.ndarray, np.ndarray, float]:
            return (kx * t.a + ky * t.d) * col, (kx * t.b + ky * t.e) * row, kx * u0 + ky * v0

        pc, pr, p0 = phase(*self.slope)
        h = (pr[:, None] + p0).astype(np.float32) + pc[None, :].astype(np.float32)
        for a, kx, ky, p in self.waves:
            ac, ar, a0 = phase(kx, ky)
            sc, cc = np.sin(ac).astype(np.float32), np.cos(ac).astype(np.float32)
            sr = (a * np.sin(ar + a0 + p)).astype(np.float32)
            cr = (a * np.cos(ar + a0 + p)).astype(np.float32)
            h += sr[:, None] * cc[None, :]
            h += cr[:, None] * sc[None, :]
        return h


def draw_terrain(
    rng: np.random.Generator, centre: tuple[float, float], size_m: float, relief_m: float
) -> Terrain:
    """A terrain whose height spans about ``relief_m`` over a ``size_m`` scene, with wavelengths
    of 0.7–2 scene widths (smooth, but not a plane: its layover is non-rigid)."""
    waves = []
    for _ in range(3):
        lam = rng.uniform(0.7, 2.0) * size_m
        ang = rng.uniform(0, 2 * math.pi)
        k = 2 * math.pi / lam
        waves.append(
            (
                float(rng.uniform(0.12, 0.22) * relief_m),
                k * math.cos(ang),
                k * math.sin(ang),
                float(rng.uniform(0, 2 * math.pi)),
            )
        )
    grad = rng.uniform(0.1, 0.25) * relief_m / size_m
    ang = rng.uniform(0, 2 * math.pi)
    return Terrain(centre, (grad * math.cos(ang), grad * math.sin(ang)), tuple(waves))


@dataclass(frozen=True)
class Layout:
    """Buildings, blocks and trees as map-coordinate polygons and discs.

    ``buildings[i]`` has height ``heights[i]`` above the terrain (flat roof) and roof tone
    ``tones[i]`` (0–1); ``blocks`` are the areas between streets, ``parks`` the blocks left
    green; ``trees`` are (x, y, radius) discs of vegetation without height.
    """

    buildings: tuple[np.ndarray, ...]
    heights: np.ndarray
    tones: np.ndarray
    blocks: tuple[np.ndarray, ...]
    parks: tuple[np.ndarray, ...]
    trees: np.ndarray


def _to_map(p: np.ndarray, q: np.ndarray, centre: tuple[float, float], ang: float) -> np.ndarray:
    ca, sa = math.cos(ang), math.sin(ang)
    return np.column_stack([centre[0] + p * ca - q * sa, centre[1] + p * sa + q * ca])


def _footprint(rng: np.random.Generator, p0: float, q0: float, p1: float, q1: float) -> list:
    """A rectangle, or with probability 0.3 an L-shape (one corner cut away), in city axes."""
    if rng.random() >= 0.3:
        return [(p0, q0), (p1, q0), (p1, q1), (p0, q1)]
    pm = p0 + rng.uniform(0.4, 0.6) * (p1 - p0)
    qm = q0 + rng.uniform(0.4, 0.6) * (q1 - q0)
    return [(p0, q0), (p1, q0), (p1, qm), (pm, qm), (pm, q1), (p0, q1)]


def draw_layout(
    rng: np.random.Generator,
    centre: tuple[float, float],
    half_m: float,
    max_height_m: float,
    density: float,
) -> Layout:
    """City blocks on a street grid (rotated at random) covering ``half_m`` around ``centre``.

    Blocks are 50–90 m with 8–16 m streets; one in ten is a park; each block has 2×2 or 3×2
    lots, each built with probability ``density`` by a rectangle or L-shape set back 1–4 m,
    3–``max_height_m`` m tall (most low, a few tall).
    """
    ang = rng.uniform(0, math.pi / 2)
    pitch = rng.uniform(50, 90, 2)
    street = rng.uniform(8, 16)
    n = [int(math.ceil(half_m / pitch[i])) + 1 for i in range(2)]
    buildings, heights, blocks, parks = [], [], [], []
    for i in range(-n[0], n[0]):
        for j in range(-n[1], n[1]):
            p0, p1 = i * pitch[0] + street / 2, (i + 1) * pitch[0] - street / 2
            q0, q1 = j * pitch[1] + street / 2, (j + 1) * pitch[1] - street / 2
            block = _to_map(np.array([p0, p1, p1, p0]), np.array([q0, q0, q1, q1]), centre, ang)
            blocks.append(block)
            if rng.random() < 0.1:
                parks.append(block)
                continue
            nl = (2, 2) if rng.random() < 0.5 else (3, 2)
            for a in range(nl[0]):
                for b in range(nl[1]):
                    if rng.random() >= density:
                        continue
                    lp0 = p0 + (p1 - p0) * a / nl[0]
                    lp1 = p0 + (p1 - p0) * (a + 1) / nl[0]
                    lq0 = q0 + (q1 - q0) * b / nl[1]
                    lq1 = q0 + (q1 - q0) * (b + 1) / nl[1]
                    s = rng.uniform(1, 4, 4)
                    pts = np.array(_footprint(rng, lp0 + s[0], lq0 + s[1], lp1 - s[2], lq1 - s[3]))
                    buildings.append(_to_map(pts[:, 0], pts[:, 1], centre, ang))
                    heights.append(3 + (max_height_m - 3) * rng.beta(1.2, 3.0))
    n_trees = int(len(blocks) * 12)
    trees = np.column_stack(
        [
            centre[0] + rng.uniform(-half_m, half_m, n_trees),
            centre[1] + rng.uniform(-half_m, half_m, n_trees),
            rng.uniform(2, 5, n_trees),
        ]
    )
    return Layout(
        tuple(buildings),
        np.asarray(heights, np.float32),
        rng.uniform(0.25, 0.85, len(buildings)).astype(np.float32),
        tuple(blocks),
        tuple(parks),
        trees,
    )


@dataclass(frozen=True)
class Raster:
    """A layout rasterised on a grid: class map, building index (-1 none), height above terrain."""

    cls: np.ndarray
    building: np.ndarray
    height: np.ndarray


def _pix(grid: Grid, pts: np.ndarray) -> np.ndarray:
    c, r = grid.map_to_pixel(pts[:, 0], pts[:, 1])
    return np.round(np.column_stack([c - 0.5, r - 0.5]) * 16).astype(np.int32)


def rasterise(layout: Layout, grid: Grid) -> Raster:
    """The layout on ``grid`` (any rotation; square pixels), by pixel centres."""
    h, w = grid.shape
    res = math.hypot(grid.transform.a, grid.transform.d)
    cls = np.full((h, w), STREET, np.uint8)
    shift = 4  # sub-pixel bits of the vertex coordinates
    cv2.fillPoly(cls, [_pix(grid, b) for b in layout.blocks], GROUND, cv2.LINE_8, shift)
    if layout.parks:
        cv2.fillPoly(cls, [_pix(grid, b) for b in layout.parks], VEGETATION, cv2.LINE_8, shift)
    tc, tr = grid.map_to_pixel(layout.trees[:, 0], layout.trees[:, 1])
    inside = (tc > -10) & (tr > -10) & (tc < w + 10) & (tr < h + 10)
    for c, r, rad in zip(tc[inside], tr[inside], layout.trees[inside, 2], strict=True):
        cv2.circle(cls, (int(c), int(r)), max(1, int(rad / res)), VEGETATION, -1)
    building = np.full((h, w), -1, np.int32)
    for i, b in enumerate(layout.buildings):
        cv2.fillPoly(building, [_pix(grid, b)], i, cv2.LINE_8, shift)
    built = building >= 0
    cls[built] = ROOF
    height = np.where(built, layout.heights[np.maximum(building, 0)], 0).astype(np.float32)
    return Raster(cls, building, height)


def frame_grid(
    grid: Grid, direction: tuple[float, float], res: float, back_m: float, ahead_m: float
) -> Grid:
    """A grid whose columns run along ``direction`` (a unit map vector), covering ``grid``'s
    footprint extended by ``back_m`` against and ``ahead_m`` along ``direction``."""
    ex, ey = direction
    ax, ay = -ey, ex
    x, y = grid.pixel_to_map(
        np.array([0.0, grid.width, 0.0, grid.width]), np.array([0.0, 0.0, grid.height, grid.height])
    )
    along, across = x * ex + y * ey, x * ax + y * ay
    a0, a1 = along.min() - back_m, along.max() + ahead_m
    c0, c1 = across.min(), across.max()
    w, h = int(math.ceil((a1 - a0) / res)), int(math.ceil((c1 - c0) / res))
    x0, y0 = a0 * ex + c0 * ax, a0 * ey + c0 * ay
    return Grid(grid.crs, Affine(res * ex, res * ax, x0, res * ey, res * ay, y0), w, h)


def cast_shadow(surface: np.ndarray, res: float, descent: float) -> np.ndarray:
    """Pixels of ``surface`` (heights, m; rays travel along +columns) that a ray descending
    ``descent`` m per horizontal m, from any point before them, passes above."""
    r = (np.arange(surface.shape[1], dtype=np.float64) + 0.5) * res * descent
    g = surface + r
    return g < np.maximum.accumulate(g, axis=1) - 1e-3


def texture(shape: tuple[int, int], rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    """Smooth zero-mean unit-variance noise of ``shape`` (drawn coarse and upsampled)."""
    k = max(1, int(sigma_px / 3))
    small = rng.standard_normal((shape[0] // k + 2, shape[1] // k + 2)).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma_px / k, 0.5))
    big = cv2.resize(small, (small.shape[1] * k, small.shape[0] * k), cv2.INTER_LINEAR)
    big = big[: shape[0], : shape[1]]
    return (big - big.mean()) / (big.std() + 1e-6)


def sample_nearest(image: np.ndarray, src: Grid, dst: Grid, fill: float) -> np.ndarray:
    """``image`` on ``src`` sampled at the pixel centres of ``dst`` (nearest, same CRS)."""
    col, row = src.map_to_pixel(*dst.pixel_centres())
    return cv2.remap(
        image,
        (col - 0.5).astype(np.float32),
        (row - 0.5).astype(np.float32),
        cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )


__all__ = [
    "GROUND",
    "ROOF",
    "STREET",
    "VEGETATION",
    "Layout",
    "Raster",
    "Terrain",
    "cast_shadow",
    "draw_layout",
    "draw_terrain",
    "frame_grid",
    "rasterise",
    "sample_nearest",
    "texture",
]
