"""A scene synthesiser: realistic-looking optical/SAR pairs with a known displacement.

Used for the demo event and for every core test fixture. A procedural ground
scene (fields, roads, buildings, trees, water) is rendered once on a fine base
grid; the optical image samples its colours on a north-up grid (Maxar-like,
3-band uint8); the SAR image samples a radar reflectivity of the same scene on
a rotated grid (Umbra GEC-like, 1-band) through the displacement field, with
layover of buildings towards the sensor, multiplicative speckle and nodata
corners. Tiepoints follow the SN9 CSV format.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS

from core.grid import Grid, north_up_grid, transform_points
from models.displacement import DisplacementField
from models.scoring import Tiepoints, read_tiepoints, write_tiepoints

ShiftFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ShiftModel:
    """Optical→SAR displacement in metres: offset + affine part + smooth non-rigid part."""

    offset: tuple[float, float] = (20.0, -15.0)
    linear: tuple[float, float, float, float] = (
        0.0,
        0.0,
        0.0,
        0.0,
    )  # d(dx)/dx, d(dx)/dy, d(dy)/dx, d(dy)/dy
    nonrigid_m: float = 0.0
    wavelength_m: float = 400.0
    centre: tuple[float, float] = (0.0, 0.0)
    seed: int = 0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = np.asarray(x, float) - self.centre[0]
        v = np.asarray(y, float) - self.centre[1]
        a, b, c, d = self.linear
        dx = self.offset[0] + a * u + b * v
        dy = self.offset[1] + c * u + d * v
        if self.nonrigid_m:
            rng = np.random.default_rng(self.seed)
            k = 2 * math.pi / self.wavelength_m
            for _ in range(3):
                p = rng.uniform(0, 2 * math.pi, 4)
                kx, ky = rng.uniform(0.5, 1.0, 2) * k
                dx = dx + self.nonrigid_m / 3 * np.sin(kx * u + p[0]) * np.cos(ky * v + p[1])
                dy = dy + self.nonrigid_m / 3 * np.cos(kx * u + p[2]) * np.sin(ky * v + p[3])
        return dx, dy


@dataclass(frozen=True)
class SceneSpec:
    """What to synthesise. Sizes in metres; the optical grid is north-up, the SAR grid rotated.

    The scene and the shift live in ``crs`` (metres). ``grid_crs`` writes both images on
    grids of another CRS (e.g. ``"EPSG:4326"``): the optical grid north-up over the same
    ground with as many pixels, the SAR grid the same rotated pixels expressed in it.
    """

    size_m: float = 300.0
    optical_res: float = 0.5
    sar_res: float = 0.65
    sar_rotation_deg: float = 12.0
    crs: str = "EPSG:32637"
    origin: tuple[float, float] = (377000.0, 4106000.0)  # upper-left of the optical grid
    shift: ShiftModel = field(default_factory=ShiftModel)
    sar_margin_m: float = 60.0
    speckle_looks: float = 3.0
    sar_dtype: str = "uint8"
    n_tiepoints: int = 60
    seed: int = 0
    layover_m: float = 4.0
    base_res: float = 0.25
    # "luminance" renders the SAR from the optical luminance: a same-modality control
    # case that isolates geometry (grids, rotation, CRS) from the radar/optical gap
    sar_appearance: Literal["radar", "luminance"] = "radar"
    grid_crs: str | None = None


@dataclass(frozen=True)
class SyntheticPair:
    optical: Path
    sar: Path
    tiepoints: Path
    spec: SceneSpec
    optical_grid: Grid
    sar_grid: Grid

    def field_error_px(self, fld: DisplacementField) -> np.ndarray:
        """Error (optical pixels) of a field against the true shift at the pair's tiepoints.

        Args:
            fld: The field (metres, map axes of the optical grid's CRS).
        """
        tp = read_tiepoints(self.tiepoints)
        x, y = self.optical_grid.pixel_to_map(tp.optical_col, tp.optical_row)
        tdx, tdy = self.spec.shift(x, y)
        dx, dy, _ = fld.sample(x, y)
        return np.hypot(dx - tdx, dy - tdy) / self.optical_grid.resolution


def _ground(
    spec: SceneSpec, base: Grid, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class map (0 field, 1 road, 2 building, 3 tree, 4 water), building heights, field texture."""
    h, w = base.shape
    px = 1.0 / base.resolution
    cls = np.zeros((h, w), np.uint8)
    height = np.zeros((h, w), np.float32)
    # fields: Voronoi-like patches with their own brightness
    n_fields = max(4, int(spec.size_m**2 / 8000))
    cx, cy = rng.uniform(0, w, n_fields), rng.uniform(0, h, n_fields)
    yy, xx = np.mgrid[0:h:4, 0:w:4]
    d = (xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2
    label = cv2.resize(
        np.argmin(d, axis=-1).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST
    ).astype(int)
    tone = rng.uniform(0.25, 0.75, n_fields)[label].astype(np.float32)
    noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 3 * px)
    texture = tone + 0.6 * noise / (noise.std() + 1e-6) * 0.08
    # water body
    if rng.random() < 0.7:
        wx, wy, wr = (
            rng.uniform(0.1, 0.9) * w,
            rng.uniform(0.1, 0.9) * h,
            rng.uniform(0.05, 0.12) * min(h, w),
        )
        cv2.ellipse(
            cls,
            (int(wx), int(wy)),
            (int(wr * 1.6), int(wr)),
            float(rng.uniform(0, 180)),
            0,
            360,
            4,
            -1,
        )
    # roads: a few long straight and bent lines
    for _ in range(max(3, int(spec.size_m / 60))):
        p0 = (int(rng.uniform(0, w)), 0) if rng.random() < 0.5 else (0, int(rng.uniform(0, h)))
        p1 = (int(rng.uniform(0, w)), h - 1) if p0[1] == 0 else (w - 1, int(rng.uniform(0, h)))
        mid = (
            int((p0[0] + p1[0]) / 2 + rng.normal(0, 0.1 * w)),
            int((p0[1] + p1[1]) / 2 + rng.normal(0, 0.1 * h)),
        )
        width = max(1, int(rng.uniform(4, 9) * px))
        cv2.line(cls, p0, mid, 1, width)
        cv2.line(cls, mid, p1, 1, width)
    # buildings: oriented rectangles with heights
    n_build = int(spec.size_m**2 / 900)
    for _ in range(n_build):
        bx, by = rng.uniform(0, w), rng.uniform(0, h)
        bw, bh = rng.uniform(8, 30) * px, rng.uniform(8, 22) * px
        ang = float(rng.choice([0, 0, 15, 30, 45, rng.uniform(0, 90)]))
        box = cv2.boxPoints(((bx, by), (bw, bh), ang)).astype(np.int32)
        if cls[int(min(max(by, 0), h - 1)), int(min(max(bx, 0), w - 1))] in (1, 4):
            continue
        cv2.fillPoly(cls, [box], 2)
        cv2.fillPoly(height, [box], float(rng.uniform(4, 25)))
    # trees: clusters of blobs
    for _ in range(int(spec.size_m**2 / 1500)):
        tx, ty = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(3, 12))):
            r = int(rng.uniform(2, 5) * px)
            c = (int(tx + rng.normal(0, 6 * px)), int(ty + rng.normal(0, 6 * px)))
            if 0 <= c[0] < w and 0 <= c[1] < h and cls[c[1], c[0]] == 0:
                cv2.circle(cls, c, r, 3, -1)
    return cls, height, texture.astype(np.float32)


def _optical_rgb(
    cls: np.ndarray, height: np.ndarray, texture: np.ndarray, rng: np.random.Generator, px: float
) -> np.ndarray:
    field_rgb = np.stack([0.55 * texture + 0.15, 0.6 * texture + 0.2, 0.35 * texture + 0.1])
    palette = {
        1: (0.45, 0.45, 0.47),
        2: None,
        3: (0.12, 0.3, 0.1),
        4: (0.08, 0.15, 0.25),
    }
    rgb = field_rgb.copy()
    roof = rng.uniform(0.4, 0.9, 3).astype(np.float32)
    for k, colour in palette.items():
        m = cls == k
        if k == 2:
            tone = (height / max(height.max(), 1.0) * 0.4 + 0.5)[m]
            for i in range(3):
                rgb[i][m] = roof[i] * tone
        else:
            for i in range(3):
                rgb[i][m] = colour[i]
    # cast shadows to the north-east of buildings (sun from the south-west)
    shadow = cv2.warpAffine(
        (height > 0).astype(np.float32),
        np.float32([[1, 0, 3 * px], [0, 1, -3 * px]]),
        cls.shape[::-1],
    )
    rgb *= 1.0 - 0.45 * ((shadow > 0) & (height == 0))
    rgb += rng.normal(0, 0.015, rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 1)


def _sar_reflectivity(
    cls: np.ndarray, height: np.ndarray, texture: np.ndarray, spec: SceneSpec, px: float
) -> np.ndarray:
    """Radar backscatter of the scene seen from the west (look direction +x), before speckle."""
    refl = 0.15 + 0.25 * texture
    refl = np.where(cls == 1, 0.03, refl)
    refl = np.where(cls == 4, 0.01, refl)
    refl = np.where(cls == 3, 0.45 + 0.3 * texture, refl)
    roofs = cls == 2
    refl = np.where(roofs, 0.35, refl)
    # double bounce at the wall facing the sensor, and layover towards the sensor (west)
    walls = (
        cv2.morphologyEx(roofs.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    )
    west_edge = walls & (np.roll(roofs, -2, axis=1)) & ~roofs
    refl = np.where(west_edge, 3.0, refl)
    lay = cv2.warpAffine(
        (roofs * height).astype(np.float32),
        np.float32([[1, 0, -spec.layover_m * px], [0, 1, 0]]),
        cls.shape[::-1],
    )
    refl = refl + 0.08 * lay
    # radar shadow behind tall buildings (east side)
    shadow = cv2.warpAffine(
        roofs.astype(np.float32), np.float32([[1, 0, 3 * px], [0, 1, 0]]), cls.shape[::-1]
    )
    refl = np.where((shadow > 0) & ~roofs, 0.02, refl)
    return refl.astype(np.float32)


def write_raster(
    path: Path,
    data: np.ndarray,
    grid: Grid,
    nodata: float | None,
    tags: dict[str, str] | None = None,
) -> None:
    """A tiled, compressed GeoTIFF of ``data`` (bands, rows, cols) on ``grid``, with overviews.

    Args:
        path: The file to write.
        data: The bands.
        grid: The grid the bands are on.
        nodata: The nodata value, if any.
        tags: Dataset tags (default metadata domain) to set.
    """
    profile = dict(
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=data.shape[0],
        dtype=str(data.dtype),
        crs=grid.crs.to_wkt(),
        transform=grid.transform,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="DEFLATE",
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        if tags:
            ds.update_tags(**tags)
        ds.build_overviews([2, 4, 8], rasterio.enums.Resampling.average)


def _grid_in(grid: Grid, crs: CRS, north_up: bool = False) -> Grid:
    """``grid``'s pixels expressed in ``crs``: the affine through three of its corners, or with
    ``north_up`` the axis-aligned one through its upper-left and lower-right corners."""
    if crs == grid.crs:
        return grid
    w, h = grid.width, grid.height
    x, y = grid.pixel_to_map(np.array([0.0, w, 0.0, w]), np.array([0.0, 0.0, h, h]))
    X, Y = transform_points(grid.crs, crs, x, y)
    if north_up:
        t = Affine((X[3] - X[0]) / w, 0.0, X[0], 0.0, (Y[3] - Y[0]) / h, Y[0])
    else:
        t = Affine(
            (X[1] - X[0]) / w, (X[2] - X[0]) / h, X[0], (Y[1] - Y[0]) / w, (Y[2] - Y[0]) / h, Y[0]
        )
    return Grid(crs, t, w, h)


def synthesize_pair(
    out_dir: str | Path, spec: SceneSpec = SceneSpec(), name: str = "pair"
) -> SyntheticPair:
    """Write ``<name>_optical.tif``, ``<name>_sar.tif`` and ``<name>_tiepoints.csv`` into
    ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    crs = CRS.from_user_input(spec.crs)
    x0, y0 = spec.origin
    size = spec.size_m
    m = spec.sar_margin_m
    out_crs = CRS.from_user_input(spec.grid_crs) if spec.grid_crs else crs
    optical_grid = _grid_in(
        north_up_grid(crs, (x0, y0 - size, x0 + size, y0), spec.optical_res), out_crs, True
    )
    base = north_up_grid(crs, (x0 - m, y0 - size - m, x0 + size + m, y0 + m), spec.base_res)
    px = 1.0 / spec.base_res
    cls, height, texture = _ground(spec, base, rng)
    rgb = _optical_rgb(cls, height, texture, rng, px)
    if spec.sar_appearance == "luminance":
        refl = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).astype(np.float32)
    else:
        refl = _sar_reflectivity(cls, height, texture, spec, px)

    def sample(img: np.ndarray, x: np.ndarray, y: np.ndarray, interp: int) -> np.ndarray:
        c, r = base.map_to_pixel(x, y)
        return cv2.remap(
            img,
            (c - 0.5).astype(np.float32),
            (r - 0.5).astype(np.float32),
            interp,
            borderMode=cv2.BORDER_REFLECT,
        )

    # optical: area-average the base rendering onto the optical grid
    k = max(1, int(round(spec.optical_res / spec.base_res))) | 1
    blurred = [cv2.blur(b, (k, k)) for b in rgb]
    xo, yo = transform_points(out_crs, crs, *optical_grid.pixel_centres())
    optical = np.stack([sample(b, xo, yo, cv2.INTER_LINEAR) for b in blurred])
    optical_u8 = np.clip(optical * 255 + 0.5, 1, 255).astype(np.uint8)

    # SAR on a rotated grid covering the optical footprint shifted by the field
    cx, cy = x0 + size / 2, y0 - size / 2
    mean_dx, mean_dy = spec.shift(np.array([cx]), np.array([cy]))
    theta = math.radians(spec.sar_rotation_deg)
    side = size + m
    n = int(math.ceil(side / spec.sar_res))
    ca, sa = math.cos(theta), math.sin(theta)
    res = spec.sar_res
    centre = (cx + float(mean_dx[0]), cy + float(mean_dy[0]))
    # rotate the pixel axes by theta about the grid centre
    t = Affine(res * ca, -res * sa, 0.0, -res * sa, -res * ca, 0.0)
    ox = centre[0] - (t.a * n / 2 + t.b * n / 2)
    oy = centre[1] - (t.d * n / 2 + t.e * n / 2)
    sar_grid = _grid_in(Grid(crs, Affine(t.a, t.b, ox, t.d, t.e, oy), n, n), out_crs)
    xs, ys = transform_points(out_crs, crs, *sar_grid.pixel_centres())
    # ground seen at SAR point X is the optical point Y with Y + d(Y) = X (fixed-point inverse)
    gx, gy = xs.copy(), ys.copy()
    for _ in range(4):
        ddx, ddy = spec.shift(gx, gy)
        gx, gy = xs - ddx, ys - ddy
    k = max(1, int(round(spec.sar_res / spec.base_res))) | 1
    sar_amp = sample(cv2.blur(refl, (k, k)), gx, gy, cv2.INTER_LINEAR)
    speckle = rng.gamma(spec.speckle_looks, 1.0 / spec.speckle_looks, sar_amp.shape).astype(
        np.float32
    )
    amp = np.sqrt(np.maximum(sar_amp * speckle, 1e-6))
    # nodata outside a disc-cut square (Umbra GEC products have slanted no-data borders)
    rr, cc = np.mgrid[0:n, 0:n]
    corner = (np.abs(rr - n / 2) + np.abs(cc - n / 2)) > 0.92 * n
    if spec.sar_dtype == "uint8":
        db = 20 * np.log10(amp)
        lo, hi = np.percentile(db, [1, 99.5])
        sar = np.clip((db - lo) / (hi - lo) * 254 + 1, 1, 255).astype(np.uint8)
        sar[corner] = 0
        sar_nodata: float | None = 0
    else:
        sar = amp.astype(np.float32)
        sar[corner] = np.nan
        sar_nodata = float("nan")
    optical_path, sar_path, tp_path = (
        out / f"{name}_optical.tif",
        out / f"{name}_sar.tif",
        out / f"{name}_tiepoints.csv",
    )
    write_raster(optical_path, optical_u8, optical_grid, None)
    write_raster(sar_path, sar[None], sar_grid, sar_nodata)

    # tiepoints: integer optical pixels -> SAR pixels through the field (SN9 integer convention)
    tp_rng = np.random.default_rng(spec.seed + 1)
    rows = tp_rng.integers(5, optical_grid.height - 5, spec.n_tiepoints * 3)
    cols = tp_rng.integers(5, optical_grid.width - 5, spec.n_tiepoints * 3)
    xo_t, yo_t = transform_points(out_crs, crs, *optical_grid.pixel_to_map(cols, rows))
    ddx, ddy = spec.shift(xo_t, yo_t)
    sc, sr = sar_grid.map_to_pixel(*transform_points(crs, out_crs, xo_t + ddx, yo_t + ddy))
    sc, sr = np.rint(sc), np.rint(sr)
    ok = (sc >= 0) & (sr >= 0) & (sc < n) & (sr < n)
    ok &= ~corner[np.clip(sr, 0, n - 1).astype(int), np.clip(sc, 0, n - 1).astype(int)]
    idx = np.flatnonzero(ok)[: spec.n_tiepoints]
    tiepoints = Tiepoints(
        sr[idx], sc[idx], rows[idx].astype(float), cols[idx].astype(float), str(tp_path)
    )
    write_tiepoints(tp_path, tiepoints)
    return SyntheticPair(optical_path, sar_path, tp_path, spec, optical_grid, sar_grid)
