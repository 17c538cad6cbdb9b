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
from models.methods.base import RegistrationInput
from models.preprocess import optical_to_gray
from models.scoring import Tiepoints, read_tiepoints, write_tiepoints
from samples.ground import optical_rgb, render_ground, sar_reflectivity

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

    def open(self, device: str = "cpu") -> RegistrationInput:
        """The pair opened for registration.

        Args:
            device: Where the matchers run (``auto``, ``cpu`` or ``cuda``).
        """
        return RegistrationInput.open(str(self.optical), str(self.sar), device)

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
    ``out_dir``.

    Args:
        out_dir: The folder written into (made when missing).
        spec: What to synthesise.
        name: The files' prefix.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    crs = CRS.from_user_input(spec.crs)
    out_crs = CRS.from_user_input(spec.grid_crs) if spec.grid_crs else crs
    x0, y0 = spec.origin
    size, m = spec.size_m, spec.sar_margin_m
    optical_grid = _grid_in(
        north_up_grid(crs, (x0, y0 - size, x0 + size, y0), spec.optical_res), out_crs, True
    )
    base = north_up_grid(crs, (x0 - m, y0 - size - m, x0 + size + m, y0 + m), spec.base_res)
    px = 1.0 / spec.base_res
    cls, height, texture = render_ground(spec.size_m, base.shape, px, rng)
    rgb = optical_rgb(cls, height, texture, rng, px)
    if spec.sar_appearance == "luminance":
        refl = optical_to_gray(rgb)
    else:
        refl = sar_reflectivity(cls, height, texture, spec.layover_m, px)
    optical = _optical_image(rgb, spec, base, optical_grid)
    sar_grid = _sar_grid(spec, crs, out_crs)
    sar, sar_nodata, corner = _sar_image(refl, spec, base, sar_grid, rng)
    optical_path, sar_path, tp_path = (
        out / f"{name}_optical.tif",
        out / f"{name}_sar.tif",
        out / f"{name}_tiepoints.csv",
    )
    write_raster(optical_path, optical, optical_grid, None)
    write_raster(sar_path, sar[None], sar_grid, sar_nodata)
    write_tiepoints(tp_path, _tiepoints(spec, crs, optical_grid, sar_grid, corner, str(tp_path)))
    return SyntheticPair(optical_path, sar_path, tp_path, spec, optical_grid, sar_grid)


def _sample_base(base: Grid, img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` on the base grid sampled bilinearly at map points ``(x, y)`` of its CRS."""
    c, r = base.map_to_pixel(x, y)
    return cv2.remap(
        img,
        (c - 0.5).astype(np.float32),
        (r - 0.5).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _optical_image(rgb: np.ndarray, spec: SceneSpec, base: Grid, grid: Grid) -> np.ndarray:
    """The base rendering area-averaged onto the optical grid, 3-band uint8 (1-255)."""
    k = max(1, int(round(spec.optical_res / spec.base_res))) | 1
    blurred = [cv2.blur(b, (k, k)) for b in rgb]
    xo, yo = transform_points(grid.crs, base.crs, *grid.pixel_centres())
    optical = np.stack([_sample_base(base, b, xo, yo) for b in blurred])
    return np.clip(optical * 255 + 0.5, 1, 255).astype(np.uint8)


def _sar_grid(spec: SceneSpec, crs: CRS, out_crs: CRS) -> Grid:
    """The SAR's square grid, rotated by ``sar_rotation_deg``, over the optical footprint plus
    the margin, centred where the field moves the footprint's centre; expressed in ``out_crs``."""
    x0, y0 = spec.origin
    size = spec.size_m
    cx, cy = x0 + size / 2, y0 - size / 2
    mean_dx, mean_dy = spec.shift(np.array([cx]), np.array([cy]))
    theta = math.radians(spec.sar_rotation_deg)
    n = int(math.ceil((size + spec.sar_margin_m) / spec.sar_res))
    ca, sa = math.cos(theta), math.sin(theta)
    res = spec.sar_res
    centre = (cx + float(mean_dx[0]), cy + float(mean_dy[0]))
    # rotate the pixel axes by theta about the grid centre
    t = Affine(res * ca, -res * sa, 0.0, -res * sa, -res * ca, 0.0)
    ox = centre[0] - (t.a * n / 2 + t.b * n / 2)
    oy = centre[1] - (t.d * n / 2 + t.e * n / 2)
    return _grid_in(Grid(crs, Affine(t.a, t.b, ox, t.d, t.e, oy), n, n), out_crs)


def _sar_image(
    refl: np.ndarray, spec: SceneSpec, base: Grid, grid: Grid, rng: np.random.Generator
) -> tuple[np.ndarray, float | None, np.ndarray]:
    """The SAR amplitude on ``grid``: the reflectivity seen through the field, with speckle
    and no-data corners; returns it, its no-data value and the corners' mask."""
    xs, ys = transform_points(grid.crs, base.crs, *grid.pixel_centres())
    # ground seen at SAR point X is the optical point Y with Y + d(Y) = X (fixed-point inverse)
    gx, gy = xs.copy(), ys.copy()
    for _ in range(4):
        ddx, ddy = spec.shift(gx, gy)
        gx, gy = xs - ddx, ys - ddy
    k = max(1, int(round(spec.sar_res / spec.base_res))) | 1
    sar_amp = _sample_base(base, cv2.blur(refl, (k, k)), gx, gy)
    speckle = rng.gamma(spec.speckle_looks, 1.0 / spec.speckle_looks, sar_amp.shape).astype(
        np.float32
    )
    amp = np.sqrt(np.maximum(sar_amp * speckle, 1e-6))
    # nodata outside a disc-cut square (Umbra GEC products have slanted no-data borders)
    n = grid.width
    rr, cc = np.mgrid[0:n, 0:n]
    corner = (np.abs(rr - n / 2) + np.abs(cc - n / 2)) > 0.92 * n
    if spec.sar_dtype == "uint8":
        db = 20 * np.log10(amp)
        lo, hi = np.percentile(db, [1, 99.5])
        sar = np.clip((db - lo) / (hi - lo) * 254 + 1, 1, 255).astype(np.uint8)
        sar[corner] = 0
        return sar, 0, corner
    sar = amp.astype(np.float32)
    sar[corner] = np.nan
    return sar, float("nan"), corner


def _tiepoints(
    spec: SceneSpec, crs: CRS, optical_grid: Grid, sar_grid: Grid, corner: np.ndarray, path: str
) -> Tiepoints:
    """Integer optical pixels and the SAR pixels the field takes them to (SN9's integer
    convention), off the SAR's no-data corners; ``crs`` is the scene's."""
    tp_rng = np.random.default_rng(spec.seed + 1)
    rows = tp_rng.integers(5, optical_grid.height - 5, spec.n_tiepoints * 3)
    cols = tp_rng.integers(5, optical_grid.width - 5, spec.n_tiepoints * 3)
    xo, yo = transform_points(optical_grid.crs, crs, *optical_grid.pixel_to_map(cols, rows))
    ddx, ddy = spec.shift(xo, yo)
    sc, sr = sar_grid.map_to_pixel(*transform_points(crs, sar_grid.crs, xo + ddx, yo + ddy))
    sc, sr = np.rint(sc), np.rint(sr)
    n = sar_grid.width
    ok = (sc >= 0) & (sr >= 0) & (sc < n) & (sr < n)
    ok &= ~corner[np.clip(sr, 0, n - 1).astype(int), np.clip(sc, 0, n - 1).astype(int)]
    idx = np.flatnonzero(ok)[: spec.n_tiepoints]
    return Tiepoints(sr[idx], sc[idx], rows[idx].astype(float), cols[idx].astype(float), path)
