"""Tile jobs of ``local``: one tile's optical and its SAR seen through the field, matched on
dense descriptors (CFOG or a learned network)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.grid import Grid, north_up_grid, same_crs
from models.areamatch import TemplateMatches, cfog, match_templates
from models.displacement import DisplacementField, lattice_bilinear
from models.methods.local.cues import share_at, structure_cues
from models.preprocess import LUMA, prepare_optical, sar_to_db
from models.raster import RasterSource, read_on_grid
from models.sampling import sample_array, sample_grid
from models.sar_adaptive import adaptive_sar

# col0, row0, col1, row1 of a window in a grid's pixels
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class TileJob:
    """Everything one tile needs, small and picklable."""

    optical: RasterSource
    sar: RasterSource
    grid: Grid  # tile grid including the margin
    core: Box  # the core in ``grid`` pixels
    field: DisplacementField  # current field cropped to the tile
    template: int
    spacing: int
    radius: int
    sigma: float  # CFOG spatial smoothing (working pixels)
    descriptor: str = "cfog"  # "cfog" or "learned"
    model: str = ""  # weights file of the learned descriptor
    cues: bool = False  # measure each template's share of image cues of structures
    device: str = "cpu"  # "cuda": the dense kernels run in torch on the GPU when one is visible


@dataclass(frozen=True)
class TileResult:
    """One tile's template vectors: centres and shifts in map metres, peak and peak margin."""

    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray  # metres, map axes
    dy: np.ndarray
    peak: np.ndarray
    margin: np.ndarray
    cue: np.ndarray  # share of each template on image cues of structures (0 without cues)
    sar_mode: str  # the adaptive SAR preprocessing chosen for the tile
    templates: int  # templates laid on the core
    matches: int  # templates that gave a vector
    kernels: str = "numpy"  # the dense kernels that ran: "numpy" or "torch-cuda"


@dataclass(frozen=True)
class Tile:
    """One tile of a level: its grid (core plus margin) and the core in that grid's pixels."""

    grid: Grid
    core: Box


def sar_through_field(sar: RasterSource, grid: Grid, fld: DisplacementField) -> np.ndarray:
    """SAR amplitude sampled at ``X + d(X)`` for every pixel centre ``X`` of ``grid`` (NaN outside).

    GDAL's warper first resamples the SAR window around the displaced tile onto a
    north-up grid at the working pixel (its bilinear kernel widens with the
    scale change of rotated grids, which tames speckle; sampling straight from
    the rotated grid matched worse), then the field is applied by ``remap``.
    """
    x, y = _centres(grid)
    dx, dy = field_on_grid(fld, grid)
    tx, ty = x + dx, y + dy
    res = grid.resolution
    pad = 3 * res
    src_grid = north_up_grid(
        grid.crs, (tx.min() - pad, ty.min() - pad, tx.max() + pad, ty.max() + pad), res
    )
    return sample_array(read_on_grid(sar, src_grid)[0], src_grid, tx, ty)


def field_on_grid(fld: DisplacementField, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The field's (dx, dy) at every pixel centre of ``grid``: ``fld.sample`` there, done separably.

    When both grids are north-up in one CRS, bilinear interpolation at a
    lattice is two weighted sums of neighbouring field cells
    (:func:`~models.displacement.lattice_bilinear`, ``sample``'s result);
    otherwise it falls back to sampling point by point.
    """
    north_up = fld.grid.is_north_up and grid.is_north_up
    if not north_up or not same_crs(fld.grid.crs, grid.crs):
        x, y = grid.pixel_centres()
        dx, dy, _ = fld.sample(x, y)
        return dx, dy
    a = fld.grid.transform
    x, y = grid.centre_axes()
    cols = (x - a.c) / a.a - 0.5
    rows = (y - a.f) / a.e - 0.5
    # only the field cells under the grid take part
    c0 = int(np.clip(np.floor(cols.min()), 0, fld.grid.width - 1))
    c1 = int(np.clip(np.floor(cols.max()) + 2, c0 + 1, fld.grid.width))
    r0 = int(np.clip(np.floor(rows.min()), 0, fld.grid.height - 1))
    r1 = int(np.clip(np.floor(rows.max()) + 2, r0 + 1, fld.grid.height))
    dx, dy = (lattice_bilinear(v[r0:r1, c0:c1], rows - r0, cols - c0) for v in (fld.dx, fld.dy))
    return dx, dy


def read_optical(optical: RasterSource, grid: Grid) -> np.ndarray:
    """Optical luminance (or the single band) at the pixel centres of ``grid`` (NaN outside)."""
    return sample_grid(optical, grid, LUMA if optical.count >= 3 else None)


def _centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The grid's pixel centres as arrays that broadcast to ``(height, width)``: a row and a
    column for a north-up grid, whole arrays for a rotated one."""
    if not grid.is_north_up:
        return grid.pixel_centres()
    x, y = grid.centre_axes()
    return x[None, :], y[:, None]


def describe_tile(
    image: np.ndarray, modality: Literal["optical", "sar"], job: TileJob
) -> np.ndarray:
    """The job's dense descriptor of one prepared image: CFOG, or the learned network's features.

    Args:
        image: One band, float32, NaN where there is no data.
        modality: Which stem of the learned network the image goes through.
        job: The tile job (descriptor, weights file, CFOG smoothing).
    """
    if job.descriptor == "learned":
        from models.learned import describe, load_descriptor

        return describe(image, modality, load_descriptor(job.model))
    return cfog(image, sigma=job.sigma)


def tile_kernels(device: str) -> str:
    """The dense kernels a tile job on ``device`` runs: ``"torch-cuda"`` when CUDA is asked for
    and visible, otherwise ``"numpy"`` (NumPy and OpenCV on the CPU).

    Args:
        device: The pair's device, ``"cpu"`` or ``"cuda"``.
    """
    if device != "cuda":
        return "numpy"
    import torch

    return "torch-cuda" if torch.cuda.is_available() else "numpy"


def match_descriptors(
    optical: np.ndarray,
    sar: np.ndarray,
    centres: np.ndarray,
    job: TileJob,
    torch_device: str | None = None,
) -> TemplateMatches:
    """The job's descriptors of both images and the templates matched on them.

    Args:
        optical: Prepared optical, float32, NaN where there is no data.
        sar: Prepared SAR through the field, float32, NaN where there is no data.
        centres: (N, 2) template centres, tile pixels.
        job: The tile job.
        torch_device: None for the NumPy kernels, else the torch device the kernels run on.
    """
    if torch_device is None:
        return match_templates(
            describe_tile(optical, "optical", job),
            describe_tile(sar, "sar", job),
            centres,
            job.template,
            job.radius,
        )
    import torch

    from models.gpu import cfog_torch, match_templates_torch

    if job.descriptor == "learned":
        descs = [describe_tile(optical, "optical", job), describe_tile(sar, "sar", job)]
    else:
        descs = [
            cfog_torch(torch.from_numpy(im).to(torch_device), sigma=job.sigma)
            for im in (optical, sar)
        ]
    return match_templates_torch(*descs, centres, job.template, job.radius, device=torch_device)


def match_tile(job: TileJob) -> TileResult:
    """Area-based matching of one tile (the unit of work for pools and Dask)."""
    optical = prepare_optical(read_optical(job.optical, job.grid))
    sar_amp = sar_through_field(job.sar, job.grid, job.field)
    sar_db = sar_to_db(sar_amp, "auto", job.sar.dtype)
    sar, mode = adaptive_sar(sar_db)
    c0, r0, c1, r1 = job.core
    half = job.spacing / 2
    cols = np.arange(c0 + half, c1, job.spacing)
    rows = np.arange(r0 + half, r1, job.spacing)
    cc, rr = np.meshgrid(cols, rows)
    centres = np.column_stack([cc.ravel(), rr.ravel()])
    kernels = tile_kernels(job.device)
    m = match_descriptors(optical, sar, centres, job, None if kernels == "numpy" else "cuda")
    cue = np.zeros(len(m), np.float32)
    if job.cues and len(m):
        mask = structure_cues(sar_db, optical, max(3, job.template // 8))
        cue = share_at(mask, m.centres, job.template)
    res = job.grid.resolution
    x, y = (
        job.grid.pixel_to_map(m.centres[:, 0], m.centres[:, 1])
        if len(m)
        else (np.zeros(0), np.zeros(0))
    )
    # pixel shifts (x right, y down) → map metres on a north-up grid
    return TileResult(
        x=np.asarray(x),
        y=np.asarray(y),
        dx=m.shifts[:, 0] * res,
        dy=-m.shifts[:, 1] * res,
        peak=m.peak,
        margin=m.margin,
        cue=cue,
        sar_mode=mode,
        templates=len(centres),
        matches=len(m),
        kernels=kernels,
    )


def level_tiles(level_grid: Grid, tile: int, margin: int) -> list[Tile]:
    """``level_grid`` cut into cores of ``tile`` pixels, each grown by ``margin`` on every side."""
    out = []
    for r in range(0, level_grid.height, tile):
        for c in range(0, level_grid.width, tile):
            c1, r1 = min(c + tile, level_grid.width), min(r + tile, level_grid.height)
            g = level_grid.window_grid(
                c - margin, r - margin, c1 - c + 2 * margin, r1 - r + 2 * margin
            )
            out.append(Tile(g, (margin, margin, margin + c1 - c, margin + r1 - r)))
    return out


def crop_field(fld: DisplacementField, grid: Grid) -> DisplacementField:
    """The part of the field under ``grid`` (plus a border) so tile jobs stay small."""
    fp = grid.footprint_in(fld.grid.crs)
    c, r = fld.grid.map_to_pixel(*np.asarray(fp.exterior.coords).T)
    c0, r0 = max(0, int(c.min()) - 2), max(0, int(r.min()) - 2)
    c1, r1 = (
        min(fld.grid.width, int(math.ceil(c.max())) + 2),
        min(fld.grid.height, int(math.ceil(r.max())) + 2),
    )
    if c1 <= c0 or r1 <= r0:
        return fld
    sub = fld.grid.window_grid(c0, r0, c1 - c0, r1 - r0)
    return DisplacementField(
        sub, fld.dx[r0:r1, c0:c1], fld.dy[r0:r1, c0:c1], fld.confidence[r0:r1, c0:c1]
    )
