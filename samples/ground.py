"""The procedural ground the synthesiser renders: classes, heights, colours, radar backscatter."""

from __future__ import annotations

import cv2
import numpy as np

# ground classes of the class map
FIELD, ROAD, BUILDING, TREE, WATER = 0, 1, 2, 3, 4


def render_ground(
    size_m: float, shape: tuple[int, int], px: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class map (fields, roads, buildings, trees, water), building heights and field texture.

    Args:
        size_m: The scene side, metres: it sets how many fields, roads, buildings and trees.
        shape: ``(rows, columns)`` of the base grid.
        px: Base pixels per metre.
        rng: The scene's random generator (draws in a fixed order).
    """
    h, w = shape
    cls = np.zeros((h, w), np.uint8)
    height = np.zeros((h, w), np.float32)
    texture = _field_texture(size_m, shape, px, rng)
    if rng.random() < 0.7:
        _add_water(cls, rng)
    _add_roads(cls, size_m, px, rng)
    _add_buildings(cls, height, size_m, px, rng)
    _add_trees(cls, size_m, px, rng)
    return cls, height, texture


def _field_texture(
    size_m: float, shape: tuple[int, int], px: float, rng: np.random.Generator
) -> np.ndarray:
    """Voronoi-like field patches with their own brightness, plus smooth noise."""
    h, w = shape
    n_fields = max(4, int(size_m**2 / 8000))
    cx, cy = rng.uniform(0, w, n_fields), rng.uniform(0, h, n_fields)
    yy, xx = np.mgrid[0:h:4, 0:w:4]
    d = (xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2
    label = cv2.resize(
        np.argmin(d, axis=-1).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST
    ).astype(int)
    tone = rng.uniform(0.25, 0.75, n_fields)[label].astype(np.float32)
    noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 3 * px)
    texture = tone + 0.6 * noise / (noise.std() + 1e-6) * 0.08
    return texture.astype(np.float32)


def _add_water(cls: np.ndarray, rng: np.random.Generator) -> None:
    """One elliptic water body."""
    h, w = cls.shape
    wx, wy, wr = (
        rng.uniform(0.1, 0.9) * w,
        rng.uniform(0.1, 0.9) * h,
        rng.uniform(0.05, 0.12) * min(h, w),
    )
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(cls, (int(wx), int(wy)), (int(wr * 1.6), int(wr)), angle, 0, 360, WATER, -1)


def _add_roads(cls: np.ndarray, size_m: float, px: float, rng: np.random.Generator) -> None:
    """A few long roads across the scene, each bent once."""
    h, w = cls.shape
    for _ in range(max(3, int(size_m / 60))):
        p0 = (int(rng.uniform(0, w)), 0) if rng.random() < 0.5 else (0, int(rng.uniform(0, h)))
        p1 = (int(rng.uniform(0, w)), h - 1) if p0[1] == 0 else (w - 1, int(rng.uniform(0, h)))
        mid = (
            int((p0[0] + p1[0]) / 2 + rng.normal(0, 0.1 * w)),
            int((p0[1] + p1[1]) / 2 + rng.normal(0, 0.1 * h)),
        )
        width = max(1, int(rng.uniform(4, 9) * px))
        cv2.line(cls, p0, mid, ROAD, width)
        cv2.line(cls, mid, p1, ROAD, width)


def _add_buildings(
    cls: np.ndarray, height: np.ndarray, size_m: float, px: float, rng: np.random.Generator
) -> None:
    """Oriented rectangles with heights, off roads and water."""
    h, w = cls.shape
    for _ in range(int(size_m**2 / 900)):
        bx, by = rng.uniform(0, w), rng.uniform(0, h)
        bw, bh = rng.uniform(8, 30) * px, rng.uniform(8, 22) * px
        ang = float(rng.choice([0, 0, 15, 30, 45, rng.uniform(0, 90)]))
        box = cv2.boxPoints(((bx, by), (bw, bh), ang)).astype(np.int32)
        if cls[int(min(max(by, 0), h - 1)), int(min(max(bx, 0), w - 1))] in (ROAD, WATER):
            continue
        cv2.fillPoly(cls, [box], BUILDING)
        cv2.fillPoly(height, [box], float(rng.uniform(4, 25)))


def _add_trees(cls: np.ndarray, size_m: float, px: float, rng: np.random.Generator) -> None:
    """Clusters of round crowns on open fields."""
    h, w = cls.shape
    for _ in range(int(size_m**2 / 1500)):
        tx, ty = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(3, 12))):
            r = int(rng.uniform(2, 5) * px)
            c = (int(tx + rng.normal(0, 6 * px)), int(ty + rng.normal(0, 6 * px)))
            if 0 <= c[0] < w and 0 <= c[1] < h and cls[c[1], c[0]] == FIELD:
                cv2.circle(cls, c, r, TREE, -1)


def optical_rgb(
    cls: np.ndarray, height: np.ndarray, texture: np.ndarray, rng: np.random.Generator, px: float
) -> np.ndarray:
    """The ground's colours in [0, 1], ``(3, rows, columns)``, with buildings' cast shadows.

    Args:
        cls: The class map.
        height: Building heights, metres.
        texture: Field texture.
        rng: The scene's random generator (roof colour, sensor noise).
        px: Base pixels per metre.
    """
    rgb = np.stack([0.55 * texture + 0.15, 0.6 * texture + 0.2, 0.35 * texture + 0.1])
    palette = {ROAD: (0.45, 0.45, 0.47), TREE: (0.12, 0.3, 0.1), WATER: (0.08, 0.15, 0.25)}
    roof = rng.uniform(0.4, 0.9, 3).astype(np.float32)
    for k in (ROAD, BUILDING, TREE, WATER):
        m = cls == k
        if k == BUILDING:
            tone = (height / max(height.max(), 1.0) * 0.4 + 0.5)[m]
            for i in range(3):
                rgb[i][m] = roof[i] * tone
        else:
            for i in range(3):
                rgb[i][m] = palette[k][i]
    # cast shadows to the north-east of buildings (sun from the south-west)
    shadow = cv2.warpAffine(
        (height > 0).astype(np.float32),
        np.float32([[1, 0, 3 * px], [0, 1, -3 * px]]),
        cls.shape[::-1],
    )
    rgb *= 1.0 - 0.45 * ((shadow > 0) & (height == 0))
    rgb += rng.normal(0, 0.015, rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 1)


def sar_reflectivity(
    cls: np.ndarray, height: np.ndarray, texture: np.ndarray, layover_m: float, px: float
) -> np.ndarray:
    """Radar backscatter of the ground seen from the west (look direction +x), before speckle.

    Args:
        cls: The class map.
        height: Building heights, metres.
        texture: Field texture.
        layover_m: How far roofs lay over towards the sensor, metres.
        px: Base pixels per metre.
    """
    refl = 0.15 + 0.25 * texture
    refl = np.where(cls == ROAD, 0.03, refl)
    refl = np.where(cls == WATER, 0.01, refl)
    refl = np.where(cls == TREE, 0.45 + 0.3 * texture, refl)
    roofs = cls == BUILDING
    refl = np.where(roofs, 0.35, refl)
    # double bounce at the wall facing the sensor, and layover towards the sensor (west)
    walls = (
        cv2.morphologyEx(roofs.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    )
    west_edge = walls & (np.roll(roofs, -2, axis=1)) & ~roofs
    refl = np.where(west_edge, 3.0, refl)
    lay = cv2.warpAffine(
        (roofs * height).astype(np.float32),
        np.float32([[1, 0, -layover_m * px], [0, 1, 0]]),
        cls.shape[::-1],
    )
    refl = refl + 0.08 * lay
    # radar shadow behind tall buildings (east side)
    shadow = cv2.warpAffine(
        roofs.astype(np.float32), np.float32([[1, 0, 3 * px], [0, 1, 0]]), cls.shape[::-1]
    )
    refl = np.where((shadow > 0) & ~roofs, 0.02, refl)
    return refl.astype(np.float32)
