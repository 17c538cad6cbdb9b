"""Displacement fields and the SpaceNet 9 displacement-map convention.

A :class:`DisplacementField` holds the optical→SAR displacement in metres on a
coarse north-up grid of a metric CRS: the SAR position of the ground seen at
map point ``X`` in the optical image is ``X + d(X)``.

The SN9 product (values from :func:`sn9_lattice`) is a 2-band float32 raster on the
optical grid: band 1 ``dx = (x_sar - x_opt) / gt_opt[1]``, band 2
``dy = (y_sar - y_opt) / gt_opt[5]``, in optical pixels (SpaceNet 9 challenge,
scoring rules; ``gt[5]`` is negative on north-up grids, so a SAR point north of
the optical one has a negative ``dy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from core.grid import Grid, ground_pixel_size, transform_points


@dataclass(frozen=True)
class DisplacementField:
    """Optical→SAR displacement (metres, map axes) sampled on a metric grid."""

    grid: Grid
    dx: np.ndarray
    dy: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        for a in (self.dx, self.dy, self.confidence):
            if a.shape != self.grid.shape:
                raise ValueError(
                    f"field arrays must have the grid shape {self.grid.shape}, got {a.shape}"
                )

    @classmethod
    def constant(
        cls, grid: Grid, dx: float = 0.0, dy: float = 0.0, confidence: float = 0.0
    ) -> DisplacementField:
        shape = grid.shape
        return cls(
            grid,
            np.full(shape, dx, np.float32),
            np.full(shape, dy, np.float32),
            np.full(shape, confidence, np.float32),
        )

    @classmethod
    def from_function(
        cls, grid: Grid, fn, confidence: np.ndarray | float = 1.0
    ) -> DisplacementField:
        """Sample ``fn(x, y) -> (dx, dy)`` (map coordinates, metres) at the grid's pixel centres."""
        x, y = grid.pixel_centres()
        dx, dy = fn(x, y)
        conf = np.broadcast_to(np.asarray(confidence, np.float32), grid.shape).copy()
        return cls(grid, np.asarray(dx, np.float32), np.asarray(dy, np.float32), conf)

    def sample(
        self, x: np.ndarray, y: np.ndarray, order: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Displacement and confidence at map points (in ``self.grid.crs``), clamped at the
        edges."""
        col, row = self.grid.map_to_pixel(np.asarray(x, float), np.asarray(y, float))
        coords = np.stack([np.ravel(row) - 0.5, np.ravel(col) - 0.5])
        out = [
            map_coordinates(a, coords, order=order, mode="nearest").reshape(np.shape(x))
            for a in (self.dx, self.dy, self.confidence)
        ]
        return out[0], out[1], out[2]

    def composed(self, residual: DisplacementField) -> DisplacementField:
        """``d(X) = d0(X) + r(X + d0(X))``: a residual measured after warping by this field."""
        x, y = self.grid.pixel_centres()
        rx, ry, rc = residual.sample(x + self.dx, y + self.dy)
        return DisplacementField(self.grid, self.dx + rx, self.dy + ry, rc.astype(np.float32))

    def magnitude(self) -> np.ndarray:
        return np.hypot(self.dx, self.dy)


@dataclass(frozen=True)
class SN9Lattice:
    """The SN9 ``(dx, dy)`` (optical pixels) and confidence of an optical pixel window at the
    nodes of a lattice every ``step`` pixels from its corner (see :func:`sn9_lattice`)."""

    dx: np.ndarray
    dy: np.ndarray
    confidence: np.ndarray
    step: int
    height: int  # the window's pixels
    width: int

    def band(self, name: str) -> np.ndarray:
        """Band ``dx``, ``dy`` or ``confidence`` at every pixel of the window, float32: bilinear
        between the lattice nodes (the nodes themselves when ``step`` is 1)."""
        nodes = getattr(self, name)
        if self.step == 1:
            return nodes[: self.height, : self.width].astype(np.float32, copy=False)
        at_rows = np.arange(self.height) / self.step
        at_cols = np.arange(self.width) / self.step
        return lattice_bilinear(nodes, at_rows, at_cols)


def sn9_lattice(
    field: DisplacementField,
    optical: Grid,
    row0: int,
    col0: int,
    height: int,
    width: int,
    lattice_step: int | None = None,
) -> SN9Lattice:
    """The SN9 shift and confidence of an optical pixel window on a lattice of its pixels.

    Positions use the SN9 corner convention (``x = gt0 + col*gt1``). The exact CRS round trip
    (optical CRS → field CRS → +d → optical CRS) is evaluated at the lattice nodes, every
    ``lattice_step`` pixels (default :func:`sn9_lattice_step`); :meth:`SN9Lattice.band`
    interpolates one band between them.

    Args:
        field: The displacement field.
        optical: The optical grid.
        row0: The window's first row.
        col0: The window's first column.
        height: The window's rows.
        width: The window's columns.
        lattice_step: Optical pixels between lattice nodes (1: every pixel exactly).
    """
    if lattice_step is None:
        lattice_step = sn9_lattice_step(field.grid, optical, col0 + width / 2, row0 + height / 2)
    rows = np.arange(row0, row0 + height + lattice_step, lattice_step, dtype=float)
    cols = np.arange(col0, col0 + width + lattice_step, lattice_step, dtype=float)
    cc, rr = np.meshgrid(cols, rows)
    xo, yo = optical.pixel_to_map(cc, rr)
    xw, yw = transform_points(optical.crs, field.grid.crs, xo, yo)
    ddx, ddy, conf = field.sample(xw, yw)
    xs, ys = transform_points(field.grid.crs, optical.crs, xw + ddx, yw + ddy)
    gt1, gt5 = optical.transform.a, optical.transform.e
    lat_dx = ((xs - xo) / gt1).astype(np.float32)
    lat_dy = ((ys - yo) / gt5).astype(np.float32)
    return SN9Lattice(lat_dx, lat_dy, conf, lattice_step, height, width)


def sn9_lattice_step(field_grid: Grid, optical: Grid, col: float, row: float) -> int:
    """Optical pixels between the lattice nodes of :func:`sn9_lattice`.

    Half a field cell: the field cell (units of ``field_grid.crs``, metres) divided by
    the optical pixel measured in that same CRS at optical pixel ``(col, row)``, along
    its longer side. The optical pixel's own units (degrees on a geographic grid,
    feet on some projected ones) never meet the field's metres.

    Args:
        field_grid: The displacement field's grid (metric working CRS).
        optical: The optical grid the SN9 map is written on.
        col: Optical pixel column where the pixel size is measured.
        row: Optical pixel row where the pixel size is measured.
    """
    pixel = max(ground_pixel_size(optical, field_grid.crs, col, row))
    return max(1, int(field_grid.resolution / max(pixel, 1e-9) / 2))


def _linear_nodes(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower node index and fraction towards the next node of fractional indices ``pos`` over
    ``n`` nodes, clamped at the ends (the last interval ends on the last node)."""
    p = np.clip(np.asarray(pos, float), 0.0, n - 1.0)
    i0 = np.minimum(np.floor(p).astype(np.intp), max(n - 2, 0))
    return i0, p - i0


def lattice_bilinear(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of the 2-D array ``a`` at every point of the lattice
    ``rows × cols`` (fractional indices), clamped at the edges: float32 ``(len(rows),
    len(cols))``.

    The result of ``map_coordinates`` with ``order=1, mode="nearest"`` at those points,
    computed separably as two weighted sums of neighbouring nodes, columns then rows, in
    float64: its cost grows with the output's pixels, not with the nodes.

    Args:
        a: The values at the nodes.
        rows: Fractional row indices of the lattice's rows.
        cols: Fractional column indices of the lattice's columns.
    """
    a = np.asarray(a, np.float64)
    j0, fx = _linear_nodes(cols, a.shape[1])
    a = _weighted_pair(a[:, j0], a[:, j0 + 1], fx) if a.shape[1] > 1 else a[:, j0]
    i0, fy = _linear_nodes(rows, a.shape[0])
    a = _weighted_pair(a[i0], a[i0 + 1], fy[:, None]) if a.shape[0] > 1 else a[i0]
    return a.astype(np.float32)


def _weighted_pair(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``first * (1 - weight) + second * weight``, written into ``first``; both arrays are
    overwritten, so they must be copies of the caller's own (as fancy indexing gives)."""
    first *= 1.0 - weight
    second *= weight
    first += second
    return first
