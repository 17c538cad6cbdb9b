"""Raster grids: CRS + affine geotransform + shape, including rotated grids.

A :class:`Grid` is the georeferencing of a raster. Positions follow GDAL's
geotransform convention: ``x = a*col + b*row + c``, ``y = d*col + e*row + f``
(``rasterio.Affine(a, b, c, d, e, f)``), with (col, row) at a pixel's
upper-left corner; pixel centres are at ``col + 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon, box
from shapely.ops import transform as shapely_transform

from core.errors import InputError


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (possibly rotated) and shape."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Ground size of one pixel along columns and rows (CRS units, positive)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def resolution(self) -> float:
        """Mean pixel size (CRS units)."""
        return float(np.sqrt(self.pixel_size[0] * self.pixel_size[1]))

    @property
    def is_north_up(self) -> bool:
        """Whether each map coordinate depends on one pixel coordinate only (the transform's
        cross terms are exactly zero), so pixel centres lie on axes (:meth:`centre_axes`)."""
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def is_rotated(self) -> bool:
        """Whether the transform has cross terms (the grid is rotated or sheared)."""
        return not self.is_north_up

    def pixel_to_map(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of fractional pixel positions (upper-left corner convention)."""
        t = self.transform
        col = np.asarray(col, dtype=np.float64)
        row = np.asarray(row, dtype=np.float64)
        return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f

    def map_to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (col, row) of map coordinates."""
        inv = ~self.transform
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f

    def footprint(self) -> Polygon:
        """The grid's outline in its own CRS."""
        cols = np.array([0, self.width, self.width, 0], dtype=float)
        rows = np.array([0, 0, self.height, self.height], dtype=float)
        xs, ys = self.pixel_to_map(cols, rows)
        return Polygon(zip(xs, ys, strict=False))

    def footprint_in(self, crs: CRS, densify: int = 8) -> Polygon:
        """The grid's outline in another CRS (edges densified so curvature survives)."""
        if CRS.from_user_input(crs) == self.crs:
            return self.footprint()
        t = np.linspace(0.0, 1.0, densify + 1)[:-1]
        cols = np.concatenate(
            [t * self.width, np.full_like(t, self.width), (1 - t) * self.width, np.zeros_like(t)]
        )
        rows = np.concatenate(
            [np.zeros_like(t), t * self.height, np.full_like(t, self.height), (1 - t) * self.height]
        )
        xs, ys = self.pixel_to_map(cols, rows)
        tr = Transformer.from_crs(self.crs, crs, always_xy=True)
        X, Y = tr.transform(xs, ys)
        return Polygon(zip(X, Y, strict=False))

    def window_grid(self, col_off: int, row_off: int, width: int, height: int) -> Grid:
        """The sub-grid of a pixel window."""
        return Grid(self.crs, self.transform @ Affine.translation(col_off, row_off), width, height)

    def scaled(self, factor: float) -> Grid:
        """The same extent with pixels ``factor`` times larger (``factor > 1`` is coarser)."""
        width = max(1, int(math.ceil(self.width / factor)))
        height = max(1, int(math.ceil(self.height / factor)))
        sx = self.width / width
        sy = self.height / height
        return Grid(self.crs, self.transform @ Affine.scale(sx, sy), width, height)

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of every pixel centre, each shaped ``(height, width)``."""
        if self.is_north_up:
            x, y = self.centre_axes()
            return (
                np.repeat(x[None, :], self.height, axis=0),
                np.repeat(y[:, None], self.width, axis=1),
            )
        cols, rows = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        return self.pixel_to_map(cols, rows)

    def centre_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Map x of each column's pixel centres and map y of each row's, of a north-up grid
        (the values :meth:`pixel_centres` repeats down the rows and along the columns).

        Raises:
            ValueError: The grid is rotated.
        """
        if not self.is_north_up:
            raise ValueError("a rotated grid's pixel centres have no axes; use pixel_centres")
        t = self.transform
        return t.a * (np.arange(self.width) + 0.5) + t.c, t.e * (np.arange(self.height) + 0.5) + t.f


def north_up_grid(crs: CRS, bounds: tuple[float, float, float, float], resolution: float) -> Grid:
    """A north-up grid covering ``bounds`` (minx, miny, maxx, maxy) at ``resolution``.

    The origin is snapped to a multiple of the resolution so that grids made for
    overlapping areas at the same resolution share pixel edges.
    """
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    minx, miny, maxx, maxy = bounds
    x0 = math.floor(minx / resolution) * resolution
    y0 = math.ceil(maxy / resolution) * resolution
    width = max(1, int(math.ceil((maxx - x0) / resolution)))
    height = max(1, int(math.ceil((y0 - miny) / resolution)))
    return Grid(
        CRS.from_user_input(crs), Affine(resolution, 0.0, x0, 0.0, -resolution, y0), width, height
    )


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS containing a point."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def metric_crs_for(grid: Grid, path: str = "") -> CRS:
    """A CRS in metres in which to work on ``grid``.

    A projected CRS in metres is used as it is; a geographic CRS is replaced by
    the local UTM zone (the raster is then reprojected on the fly).
    """
    crs = grid.crs
    if crs is None:
        raise InputError(
            f"{path or 'raster'} has no CRS: georeference it (e.g. gdal_edit.py -a_srs EPSG:xxxx) "
            "and retry"
        )
    if crs.is_projected:
        unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
        if unit in ("metre", "meter", "m"):
            return crs
    centre = grid.footprint().centroid
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(centre.x, centre.y)
    return utm_crs_for(lon, lat)


def ground_pixel_size(
    grid: Grid, crs: CRS | None = None, col: float | None = None, row: float | None = None
) -> tuple[float, float]:
    """Length of one pixel along columns and along rows, in the units of another CRS.

    Measured on the pixel at ``(col, row)`` (default: the grid centre) through the
    exact CRS transformation, so it holds for geographic grids, whose pixel is
    degrees wide and a latitude-dependent number of metres on the ground.

    Args:
        grid: The raster grid.
        crs: The CRS to measure in; default the metric working CRS of ``grid``
            (:func:`metric_crs_for`), so the result is in metres.
        col: Pixel column to measure at; default the centre column.
        row: Pixel row to measure at; default the centre row.
    """
    crs = metric_crs_for(grid) if crs is None else crs
    if same_crs(crs, grid.crs):
        return grid.pixel_size
    c = grid.width / 2 if col is None else float(col)
    r = grid.height / 2 if row is None else float(row)
    x, y = grid.pixel_to_map(np.array([c, c + 1.0, c]), np.array([r, r, r + 1.0]))
    X, Y = transform_points(grid.crs, crs, x, y)
    return float(math.hypot(X[1] - X[0], Y[1] - Y[0])), float(math.hypot(X[2] - X[0], Y[2] - Y[0]))


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRSs, in any form pyproj takes, are the same; remembered for hashable ones
    (building a pyproj CRS from a rasterio one costs about 0.2 ms).

    Args:
        a: A CRS (pyproj, rasterio, EPSG code, WKT or PROJ text).
        b: Another.
    """
    try:
        return _same_crs(a, b)
    except (TypeError, CRSError):  # unhashable (a PROJ JSON dict), or without a WKT to hash
        return bool(CRS.from_user_input(a) == CRS.from_user_input(b))


@lru_cache(maxsize=64)
def _same_crs(a: Any, b: Any) -> bool:
    return bool(CRS.from_user_input(a) == CRS.from_user_input(b))


def transform_points(
    src: CRS, dst: CRS, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reproject point arrays (a no-op when the CRSs are equal)."""
    if same_crs(src, dst):
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    tr = Transformer.from_crs(src, dst, always_xy=True)
    X, Y = tr.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(X), np.asarray(Y)


def reproject_geometry(geom, src: CRS, dst: CRS):
    """Reproject a shapely geometry."""
    if same_crs(src, dst):
        return geom
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely_transform(tr.transform, geom)


def bounds_box(bounds: tuple[float, float, float, float]) -> Polygon:
    return box(*bounds)
