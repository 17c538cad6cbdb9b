"""Cross terms of template NCC: sums of optical × shifted SAR descriptors over templates."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

# most sums computed per sum needed that the column products may have: they run several times
# faster per sum than the row-by-row einsum, so they win once the search is wide
COLUMN_PRODUCT_WASTE = 2.5

# origin column and row, columns, rows and side of a block lattice, pixels and blocks
Lattice = tuple[int, int, int, int, int]


def sums_at(ii: np.ndarray, x0: np.ndarray, y0: np.ndarray, size: int) -> np.ndarray:
    """Sums over ``size²`` windows with top-left corners ``(x0, y0)`` (any shape) from an integral
    image."""
    return ii[y0 + size, x0 + size] - ii[y0, x0 + size] - ii[y0 + size, x0] + ii[y0, x0]


def lattice_step(x0: np.ndarray, y0: np.ndarray, template: int) -> int:
    """The largest step dividing the template side and every corner offset (1: no common
    lattice)."""
    return math.gcd(
        template,
        *(int(v) for v in np.unique(x0 - x0.min())),
        *(int(v) for v in np.unique(y0 - y0.min())),
    )


def template_sums(
    blocks: np.ndarray, dx0: np.ndarray, dy0: np.ndarray, template: int, b: int
) -> np.ndarray:
    """Sums over each template (corner offsets ``dx0``, ``dy0`` from the lattice origin) from
    block sums ``blocks`` (K, rows + 1, cols + 1, first row and column zero), which become their
    integral in place: (K, N)."""
    blocks.cumsum(axis=1, out=blocks)
    blocks.cumsum(axis=2, out=blocks)
    m = template // b
    iy, ix = dy0 // b, dx0 // b
    return (
        blocks[:, iy + m, ix + m]
        - blocks[:, iy, ix + m]
        - blocks[:, iy + m, ix]
        + blocks[:, iy, ix]
    )


def box_sums(desc: np.ndarray, x0: np.ndarray, y0: np.ndarray, template: int) -> np.ndarray:
    """Per-channel sums of ``desc`` (C, H, W) over each template: (N, C) float64 (block sums on a
    lattice)."""
    ch = desc.shape[0]
    b = lattice_step(x0, y0, template)
    if b < 4:
        return np.stack(
            [sums_at(cv2.integral(plane, sdepth=cv2.CV_64F), x0, y0, template) for plane in desc],
            axis=1,
        )
    bx0, by0 = int(x0.min()), int(y0.min())
    nbx, nby = (int(x0.max()) + template - bx0) // b, (int(y0.max()) + template - by0) // b
    region = desc[:, by0 : by0 + nby * b, bx0 : bx0 + nbx * b]
    # rows of blocks first (contiguous), then the columns inside each block
    rows = region.reshape(ch, nby, b, nbx * b).sum(axis=2, dtype=np.float64)
    blocks = np.zeros((ch, nby + 1, nbx + 1), np.float64)
    blocks[:, 1:, 1:] = rows.reshape(ch, nby, nbx, b).sum(axis=3)
    return template_sums(blocks, x0 - bx0, y0 - by0, template, b).T


def block_cross(
    optical_desc: np.ndarray,
    sar_desc: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    template: int,
    radius: int,
    min_block: int = 4,
) -> np.ndarray | None:
    """Cross term ``sum(optical · shifted SAR)`` over every template, for every shift: (shifts, N)
    float64, shifts ordered by row then column (``dy`` outer, ``dx`` inner), of float32
    descriptors ``(C, H, W)``.

    Templates on a regular lattice (corners on a common step that divides the
    template side, as the local method's grids are) are sums of ``b × b``
    blocks, so the products are reduced to block sums once per shift and
    shared by the overlapping templates: by :func:`_block_rows` for small
    searches, by :func:`_block_columns` (matrix products) for wide ones. None when the
    templates are not on such a lattice (:func:`pixel_cross` then does it).
    """
    b = lattice_step(x0, y0, template)
    if b < min_block:
        return None
    bx0, by0 = int(x0.min()), int(y0.min())
    nbx, nby = (int(x0.max()) + template - bx0) // b, (int(y0.max()) + template - by0) // b
    lattice = (bx0, by0, nbx, nby, b)
    h, w = optical_desc.shape[1:]
    # the column products read through strided views: every search window inside the image
    inside = (
        min(bx0, by0) >= radius and max(bx0 + nbx * b + radius - w, by0 + nby * b + radius - h) <= 0
    )
    wide = (b + 2 * radius) / (2 * radius + 1) <= COLUMN_PRODUCT_WASTE
    cross = _block_columns if wide and inside else _block_rows
    blocks = cross(optical_desc, sar_desc, lattice, radius)
    return template_sums(blocks, x0 - bx0, y0 - by0, template, b)


def _block_rows(
    optical_desc: np.ndarray, sar_desc: np.ndarray, lattice: Lattice, radius: int
) -> np.ndarray:
    """Block sums of the products for every shift, one block row and one shift at a time: each
    product with its channel sum is one ``einsum`` pass while the row is in cache.

    Returns (shifts, rows + 1, columns + 1) float64, first row and column zero.
    """
    ch, h, w = optical_desc.shape
    bx0, by0, nbx, nby, b = lattice
    c0, c1 = bx0 * ch, (bx0 + nbx * b) * ch
    shifts = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    blocks = np.zeros((len(shifts), nby + 1, nbx + 1), np.float64)
    # each shift's column sums of a block row, then every shift's block sums at once
    columns = np.empty((len(shifts), c1 - c0), np.float32)
    for by in range(nby):
        r0 = by0 + by * b
        # channels interleaved, a block row (and its search rows) at a time: a block row of
        # every channel is then one contiguous 2-D slice, and no interleaved image is held
        o = _interleaved(optical_desc[:, r0 : r0 + b])[:, c0:c1]
        lo, hi = _search_rows(r0, b, radius, h)
        s_rows = _interleaved(sar_desc[:, lo:hi])
        for k, (dx, dy) in enumerate(shifts):
            s = s_rows[r0 + dy - lo : r0 + dy - lo + b, c0 + dx * ch : c1 + dx * ch]
            np.einsum("ij,ij->j", o, s, out=columns[k])
        blocks[:, by + 1, 1:] = columns.reshape(len(shifts), nbx, b * ch).sum(axis=2)
    return blocks


def _search_rows(r0: int, b: int, radius: int, h: int) -> tuple[int, int]:
    """The image rows a block row from ``r0`` (``b`` rows) reads with a ±``radius`` search."""
    return max(0, r0 - radius), min(h, r0 + b + radius)


def _interleaved(desc: np.ndarray) -> np.ndarray:
    """``desc`` (C, H, W) float32 with the channels interleaved: (H, W × C), contiguous."""
    ch, h, w = desc.shape
    return cv2.merge(list(desc)).reshape(h, w * ch)


def _block_columns(
    optical_desc: np.ndarray, sar_desc: np.ndarray, lattice: Lattice, radius: int
) -> np.ndarray:
    """Block sums of the products for every shift by matrix products, one block row and one
    row shift at a time.

    With pixels stored column by column, each pixel column of a block row (``b`` rows of every
    channel) is one vector. The products of a block's ``b`` optical columns with the
    ``b + 2·radius`` SAR columns around them hold every column shift's sum on a diagonal, so
    a batched matrix product serves all column shifts of every block at once; it computes
    ``(b + 2·radius) / (2·radius + 1)`` times the sums needed, at several times ``einsum``'s
    speed per sum.

    Returns (shifts, rows + 1, columns + 1) float64, first row and column zero.
    """
    ch, h, _ = optical_desc.shape
    bx0, by0, nbx, nby, b = lattice
    side = 2 * radius + 1
    item = optical_desc.itemsize
    blocks = np.zeros((side * side, nby + 1, nbx + 1), np.float64)
    products = np.empty((nbx, b, b + 2 * radius), np.float32)
    p_block, p_row, p_col = products.strides
    for by in range(nby):
        r0 = by0 + by * b
        # a block row (and its search rows) stored column by column at a time
        o_cols = _column_major(optical_desc[:, r0 : r0 + b])
        lo, hi = _search_rows(r0, b, radius, h)
        s_cols = _column_major(sar_desc[:, lo:hi])
        o_col, s_col = o_cols.strides[0], s_cols.strides[0]
        o = as_strided(o_cols[bx0:], (nbx, b, b * ch), (b * o_col, o_col, item))
        for iy, dy in enumerate(range(-radius, radius + 1)):
            s = as_strided(
                s_cols[bx0 - radius :, r0 + dy - lo :],
                (nbx, b + 2 * radius, b * ch),
                (b * s_col, s_col, item),
            )
            np.matmul(o, s.transpose(0, 2, 1), out=products)
            # diagonal k of each block's products: optical column p with SAR column p + k
            diagonals = as_strided(products, (nbx, side, b), (p_block, p_col, p_row + p_col))
            blocks[iy * side : (iy + 1) * side, by + 1, 1:] = diagonals.sum(axis=2).T
    return blocks


def _column_major(desc: np.ndarray) -> np.ndarray:
    """``desc`` (C, H, W) float32 stored column by column: (W, H, C), contiguous.

    Interleaving the channels first (OpenCV) and transposing whole pixels (C × 4-byte items)
    moves the data in two cache-friendly passes instead of one strided 3-D transpose.
    """
    ch, h, w = desc.shape
    pixels = _interleaved(desc).view(np.dtype((np.void, 4 * ch)))  # (H, W) whole pixels
    return np.ascontiguousarray(pixels.T).view(np.float32).reshape(w, h, ch)


def pixel_cross(
    optical_desc: np.ndarray,
    sar_desc: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    template: int,
    shifts: list[tuple[int, int]],
) -> np.ndarray:
    """Cross term for templates anywhere: per shift, the product image and its box sums (shifts,
    N)."""
    ch, h, w = optical_desc.shape
    out = np.empty((len(shifts), len(x0)), np.float64)
    prod = np.empty((h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for k, (dx, dy) in enumerate(shifts):
        # product image of optical with the SAR shifted by (dx, dy), over the valid overlap
        ys, ye = max(0, -dy), min(h, h - dy)
        xs, xe = max(0, -dx), min(w, w - dx)
        prod.fill(0.0)
        p, t = prod[ys:ye, xs:xe], tmp[ys:ye, xs:xe]
        for c in range(ch):
            np.multiply(
                optical_desc[c, ys:ye, xs:xe],
                sar_desc[c, ys + dy : ye + dy, xs + dx : xe + dx],
                out=t,
            )
            p += t
        out[k] = sums_at(cv2.integral(prod, sdepth=cv2.CV_64F), x0, y0, template)
    return out
