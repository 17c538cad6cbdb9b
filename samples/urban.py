"""An urban optical/SAR pair simulated from a height model, with an exact reference displacement.

The optical image is a true orthoimage (north-up, roofs over their footprints, sun shadows);
the SAR is formed in its own geometry and ground-projected onto the reference surface (height
0): a point at height ``h`` lands ``h·cot(θ)`` towards the sensor (layover), ground behind a
building is in radar shadow for ``h·tan(θ)``, walls facing the sensor give a bright
double-bounce line at their foot, then multiplicative gamma speckle, on a rotated Umbra
GEC-like grid moved by a global offset. Where an optical ground point appears in the SAR is
therefore known exactly: ``P + h(P)·cot(θ)·u + offset`` with ``u`` the unit ground vector
towards the sensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from affine import Affine
from pyproj import CRS, Geod, Transformer

from core.grid import Grid
from models.scoring import Tiepoints
from samples.synth import write_raster
from samples.urban_scene import (
    GROUND,
    ROOF,
    STREET,
    VEGETATION,
    Layout,
    Terrain,
    cast_shadow,
    draw_layout,
    draw_terrain,
    frame_grid,
    rasterise,
    sample_nearest,
    texture,
)


@dataclass(frozen=True)
class UrbanSpec:
    """What to simulate. Angles in degrees; lengths in metres; the look azimuth is the ground
    azimuth of the range direction (sensor → scene), clockwise from north."""

    size_px: int = 3000
    optical_res: float = 0.3
    sar_res: float = 0.4
    sar_rotation_deg: float = 12.0
    incidence_deg: float = 35.0
    look_azimuth_deg: float = 80.0
    max_height_m: float = 40.0
    density: float = 0.6
    relief_m: float = 25.0
    offset_m: tuple[float, float] = (12.0, -8.0)
    sun_azimuth_deg: float = 150.0
    sun_elevation_deg: float = 50.0
    speckle_looks: float = 2.0
    crs: str = "EPSG:32637"
    origin: tuple[float, float] = (377000.0, 4106000.0)
    seed: int = 0

    @property
    def cot(self) -> float:
        return 1.0 / math.tan(math.radians(self.incidence_deg))

    @cached_property
    def range_dir(self) -> tuple[float, float]:
        """Unit map vector (x, y of ``crs``) from the sensor towards the scene at the scene
        centre: the azimuth is from true north, so it is carried one metre along the ellipsoid
        (grid north differs by the meridian convergence)."""
        crs = CRS.from_user_input(self.crs)
        half = self.size_px * self.optical_res / 2
        at = (self.origin[0] + half, self.origin[1] - half)
        to_geo = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
        lon, lat = to_geo.transform(*at)
        lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, self.look_azimuth_deg, 1.0)
        x2, y2 = to_geo.transform(lon2, lat2, direction="INVERSE")
        n = math.hypot(x2 - at[0], y2 - at[1])
        return (x2 - at[0]) / n, (y2 - at[1]) / n

    def shift(self, x: np.ndarray, y: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, ...]:
        """Where map points at ``height`` appear in the SAR, minus where they are (m)."""
        ex, ey = self.range_dir
        lay = -np.asarray(height, float) * self.cot
        return lay * ex + self.offset_m[0], lay * ey + self.offset_m[1]


@dataclass(frozen=True)
class UrbanScene:
    """A simulated pair: images, height models and the reference field (dx, dy in m)."""

    spec: UrbanSpec
    optical_grid: Grid
    sar_grid: Grid
    optical: np.ndarray  # (3, H, W) uint8
    sar: np.ndarray  # (H, W) uint8, 0 = no data
    dtm: np.ndarray
    dsm: np.ndarray
    reference: np.ndarray  # (2, H, W) float32
    terrain: Terrain
    layout: Layout
    clearance_m: np.ndarray  # distance of each optical pixel to the nearest building (m)

    def ground_shift(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """The exact SAR-minus-optical displacement (m) of ground (terrain) points."""
        return self.spec.shift(x, y, self.terrain(x, y))


_ROOF_COLOURS = np.array([[0.78, 0.75, 0.7], [0.62, 0.32, 0.22], [0.5, 0.52, 0.55]], np.float32)


def _optical(spec: UrbanSpec, layout: Layout, terrain: Terrain, grid: Grid, rng) -> tuple:
    """RGB uint8 orthoimage with sun shadows, and the nDSM of its grid."""
    ras = rasterise(layout, grid)
    tex = texture(grid.shape, rng, 8.0)
    fine = texture(grid.shape, rng, 1.5)
    rgb = np.empty((3, *grid.shape), np.float32)
    base = {
        GROUND: (np.array([0.56, 0.5, 0.42]), 0.85 + 0.12 * tex + 0.05 * fine),
        STREET: (np.array([0.4, 0.4, 0.42]), 0.95 + 0.05 * fine),
        VEGETATION: (np.array([0.16, 0.3, 0.13]), 0.8 + 0.15 * tex + 0.15 * fine),
    }
    for k, (colour, gain) in base.items():
        m = ras.cls == k
        for i in range(3):
            rgb[i][m] = colour[i] * gain[m]
    roof = ras.cls == ROOF
    b = ras.building[roof]
    colour = _ROOF_COLOURS[b % len(_ROOF_COLOURS)] * (0.6 + 0.5 * layout.tones[b])[:, None]
    for i in range(3):
        rgb[i][roof] = colour[:, i] * (0.97 + 0.03 * fine[roof])
    # sun shadows: rays travel away from the sun, descending tan(elevation) per metre
    az = math.radians(spec.sun_azimuth_deg)
    away = (-math.sin(az), -math.cos(az))
    descent = math.tan(math.radians(spec.sun_elevation_deg))
    frame = frame_grid(grid, away, spec.optical_res, spec.max_height_m / descent + 5, 0.0)
    fr = rasterise(layout, frame)
    surface = fr.height + terrain.on_grid(frame)
    shadow = cast_shadow(surface, spec.optical_res, descent).astype(np.uint8)
    rgb *= 1.0 - 0.55 * sample_nearest(shadow, frame, grid, 0)
    rgb += rng.normal(0, 0.012, rgb.shape).astype(np.float32)
    return np.clip(rgb * 255 + 0.5, 1, 255).astype(np.uint8), ras


def _splat(shape: tuple[int, int], rows: np.ndarray, pos: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Accumulate weights ``w`` at fractional column centres ``pos`` of ``rows`` (linear)."""
    h, width = shape
    p = pos - 0.5
    i0 = np.floor(p).astype(np.int64)
    f = (p - i0).astype(np.float32)
    ok = (i0 >= 0) & (i0 < width - 1)
    flat = rows[ok].astype(np.int64) * width + i0[ok]
    out = np.bincount(flat, w[ok] * (1 - f[ok]), h * width)
    out += np.bincount(flat + 1, w[ok] * f[ok], h * width)
    return out.reshape(shape).astype(np.float32)


def _radar_reflectivity(cls: np.ndarray, building: np.ndarray, layout: Layout, rng) -> np.ndarray:
    """Backscatter per ground pixel before geometry (no material model: a value per class)."""
    tex = texture(cls.shape, rng, 8.0)
    refl = np.where(cls == GROUND, 0.12 + 0.04 * tex, 0.03).astype(np.float32)
    refl = np.where(cls == VEGETATION, 0.35 + 0.1 * tex, refl)
    tones = 0.1 + 0.4 * layout.tones
    refl = np.where(cls == ROOF, tones[np.maximum(building, 0)], refl)
    return np.maximum(refl, 0.01).astype(np.float32)


def _walls(height: np.ndarray, lit: np.ndarray, res: float, cot: float) -> tuple[np.ndarray, ...]:
    """Facade samples and double-bounce points of walls facing the sensor: (rows, cols, z, w)."""
    step = height[:, 1:] - height[:, :-1]
    rows, cols = np.nonzero((step > 1.0) & lit[:, 1:])
    low, high = height[rows, cols], height[rows, cols + 1]
    n = np.ceil((high - low) * cot / res).astype(np.int64) + 1
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    z = np.repeat(low, n) + (k + 0.5) / np.repeat(n, n) * np.repeat(high - low, n)
    r_f, c_f = np.repeat(rows, n), np.repeat(cols + 1, n).astype(float)
    w_f = np.full(z.shape, 0.1, np.float32)
    # double bounce: at the foot of the wall, strength growing with the wall up to 10 m
    db = lit[rows, cols]
    w_db = (6.0 * np.minimum((high - low) / 10.0, 1.0))[db].astype(np.float32)
    return (
        np.concatenate([r_f, rows[db]]),
        np.concatenate([c_f, cols[db] + 1.0]),
        np.concatenate([z, low[db]]),
        np.concatenate([w_f, w_db]),
    )


def _radar_frame(spec: UrbanSpec, layout: Layout, terrain: Terrain, ground: Grid, rng) -> tuple:
    """Ground-projected SAR intensity on a grid whose columns run along the range direction."""
    res, cot = spec.optical_res, spec.cot
    lo, hi = -spec.relief_m, spec.relief_m + spec.max_height_m
    frame = frame_grid(ground, spec.range_dir, res, lo * -cot + 5, hi * cot + 5)
    ras = rasterise(layout, frame)
    surface = terrain.on_grid(frame) + ras.height
    lit = ~cast_shadow(surface, res, cot)
    refl = _radar_reflectivity(ras.cls, ras.building, layout, rng) * lit
    pos = (np.arange(frame.width, dtype=np.float32) + 0.5)[None, :] - surface * np.float32(
        cot / res
    )
    rows = np.repeat(np.arange(frame.height, dtype=np.int32), frame.width)
    image = _splat(frame.shape, rows, pos.ravel(), refl.ravel())
    wr, wc, wz, ww = _walls(surface, lit, res, cot)
    image += _splat(frame.shape, wr, wc - wz * cot / res, ww)
    return frame, image + 0.004


def sar_grid_for(spec: UrbanSpec, optical: Grid, terrain: Terrain) -> Grid:
    """The rotated SAR grid: centred where the optical centre appears, 20 m wider each side."""
    cx, cy = optical.pixel_to_map(optical.width / 2, optical.height / 2)
    dx, dy = spec.shift(cx, cy, terrain(cx, cy))
    n = int(math.ceil((optical.width * spec.optical_res + 40) / spec.sar_res))
    th = math.radians(spec.sar_rotation_deg)
    ca, sa, res = math.cos(th), math.sin(th), spec.sar_res
    t = Affine(res * ca, -res * sa, 0.0, -res * sa, -res * ca, 0.0)
    ox = float(cx + dx) - (t.a + t.b) * n / 2
    oy = float(cy + dy) - (t.d + t.e) * n / 2
    return Grid(optical.crs, Affine(t.a, t.b, ox, t.d, t.e, oy), n, n)


def _sar(spec: UrbanSpec, layout: Layout, terrain: Terrain, grid: Grid, rng) -> np.ndarray:
    """The SAR on its grid: radar frame resampled (anti-aliased), speckled, dB to uint8."""
    off = spec.offset_m
    ground = Grid(
        grid.crs, Affine.translation(-off[0], -off[1]) @ grid.transform, *grid.shape[::-1]
    )
    frame, image = _radar_frame(spec, layout, terrain, ground, rng)
    f = spec.sar_res / spec.optical_res
    image = cv2.GaussianBlur(image, (0, 0), 0.5 * math.sqrt(max(f * f - 1, 0.01)))
    col, row = frame.map_to_pixel(*ground.pixel_centres())
    amp = cv2.remap(
        image, (col - 0.5).astype(np.float32), (row - 0.5).astype(np.float32), cv2.INTER_LINEAR
    )
    looks = spec.speckle_looks
    amp = amp * rng.gamma(looks, 1.0 / looks, amp.shape).astype(np.float32)
    db = 10 * np.log10(np.maximum(amp, 1e-5))
    lo, hi = np.percentile(db, [1, 99.5])
    sar = np.clip((db - lo) / (hi - lo) * 254 + 1, 1, 255).astype(np.uint8)
    n = grid.width
    rr, cc = np.mgrid[0:n, 0:n]
    sar[(np.abs(rr - n / 2) + np.abs(cc - n / 2)) > 0.92 * n] = 0
    return sar


def _clearance(layout: Layout, grid: Grid, pad_m: float) -> np.ndarray:
    """Distance (m, capped near ``pad_m``) of each pixel of ``grid`` to the nearest building,
    counting buildings up to ``pad_m`` outside it."""
    res = grid.transform.a
    pad = int(math.ceil(pad_m / res))
    t = grid.transform @ Affine.translation(-pad, -pad)
    big = Grid(grid.crs, t, grid.width + 2 * pad, grid.height + 2 * pad)
    free = (rasterise(layout, big).building < 0).astype(np.uint8)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, 5) * res
    return dist[pad : pad + grid.height, pad : pad + grid.width]


def simulate_urban(spec: UrbanSpec) -> UrbanScene:
    """Simulate the pair described by ``spec`` (seeded: the same spec gives the same scene)."""
    rng = np.random.default_rng(spec.seed)
    size_m = spec.size_px * spec.optical_res
    x0, y0 = spec.origin
    res, n = spec.optical_res, spec.size_px
    optical_grid = Grid(CRS.from_user_input(spec.crs), Affine(res, 0, x0, 0, -res, y0), n, n)
    centre = (x0 + size_m / 2, y0 - size_m / 2)
    terrain = draw_terrain(rng, centre, size_m, spec.relief_m)
    reach = size_m * 0.75 + 40 + (spec.relief_m + spec.max_height_m) * spec.cot + 100
    layout = draw_layout(rng, centre, reach, spec.max_height_m, spec.density)
    optical, ras = _optical(spec, layout, terrain, optical_grid, rng)
    xc, yc = optical_grid.pixel_centres()
    dtm = terrain.on_grid(optical_grid)
    dsm = dtm + ras.height
    reference = np.stack(spec.shift(xc, yc, dsm)).astype(np.float32)
    clearance = _clearance(layout, optical_grid, pad_m=30.0)
    sar_grid = sar_grid_for(spec, optical_grid, terrain)
    sar = _sar(spec, layout, terrain, sar_grid, rng)
    return UrbanScene(
        spec, optical_grid, sar_grid, optical, sar, dtm, dsm, reference, terrain, layout, clearance
    )


def ground_tiepoints(
    scene: UrbanScene, cells: int, clearance_m: float, seed: int, tries: int = 40
) -> Tiepoints:
    """Tiepoints as SN9 annotated them: ground pixels at least ``clearance_m`` from any building,
    one per cell of a ``cells``² grid where one is found, mapped exactly through the terrain
    layover and the offset (optical integer pixels, SAR fractional)."""
    rng = np.random.default_rng(seed)
    og, sg = scene.optical_grid, scene.sar_grid
    h, w = og.shape
    ci, cj = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    ci = np.repeat(ci.ravel(), tries)
    cj = np.repeat(cj.ravel(), tries)
    rows = ((ci + rng.random(ci.size)) * (h - 4) / cells + 2).astype(int)
    cols = ((cj + rng.random(cj.size)) * (w - 4) / cells + 2).astype(int)
    x, y = og.pixel_to_map(cols, rows)
    dx, dy = scene.ground_shift(x, y)
    sc, sr = sg.map_to_pixel(x + dx, y + dy)
    inside = (sc >= 1) & (sr >= 1) & (sc < sg.width - 1) & (sr < sg.height - 1)
    ok = inside & (scene.clearance_m[rows, cols] >= clearance_m)
    ok &= (
        scene.sar[
            np.clip(sr, 0, sg.height - 1).astype(int), np.clip(sc, 0, sg.width - 1).astype(int)
        ]
        > 0
    )
    cell = ci * cells + cj
    first = np.unique(cell[ok], return_index=True)[1]
    idx = np.flatnonzero(ok)[first]
    return Tiepoints(sr[idx], sc[idx], rows[idx].astype(float), cols[idx].astype(float))


def sar_tags(spec: UrbanSpec) -> dict[str, str]:
    """The acquisition-geometry tags of the SAR GeoTIFF."""
    return {
        "SAR_INCIDENCE_ANGLE": f"{spec.incidence_deg:.6f}",
        "SAR_LOOK_AZIMUTH": f"{spec.look_azimuth_deg:.6f}",
        "SAR_GROUND_PROJECTED": "true",
    }


def write_urban(folder: Path, scene: UrbanScene) -> dict[str, str]:
    """Write ``optical.tif``, ``sar.tif`` (with :func:`sar_tags`), ``dsm.tif``, ``dtm.tif``
    (metres on the optical grid) and ``reference.tif`` (dx, dy in metres of every optical pixel
    centre: where it appears in the SAR); returns name → file."""
    og = scene.optical_grid
    files = {
        "optical": "optical.tif",
        "sar": "sar.tif",
        "dsm": "dsm.tif",
        "dtm": "dtm.tif",
        "reference": "reference.tif",
    }
    metres = {"UNITS": "metre"}
    write_raster(folder / files["optical"], scene.optical, og, None)
    write_raster(folder / files["sar"], scene.sar[None], scene.sar_grid, 0, sar_tags(scene.spec))
    write_raster(folder / files["dsm"], scene.dsm[None], og, None, metres)
    write_raster(folder / files["dtm"], scene.dtm[None], og, None, metres)
    write_raster(folder / files["reference"], scene.reference, og, None, metres)
    return files


__all__ = [
    "UrbanScene",
    "UrbanSpec",
    "ground_tiepoints",
    "sar_grid_for",
    "sar_tags",
    "simulate_urban",
    "write_urban",
]
