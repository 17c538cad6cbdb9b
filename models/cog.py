"""Writing Cloud-Optimized GeoTIFFs block by block, atomically.

Blocks go to a tiled scratch GeoTIFF next to the destination, GDAL's COG driver
turns it into a COG (internal overviews, DEFLATE/ZSTD) under a temporary name, and only
then is it renamed to the destination: a crash never leaves a partial product
under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from models.errors import InputError
from models.grid import Grid

BlockFn = Callable[[Window], np.ndarray]
PathArg = str | os.PathLike[str] | None


@dataclass(frozen=True)
class CogSpec:
    """What the COG holds: bands, type, nodata, names, units, compression."""

    count: int
    dtype: str = "float32"
    nodata: float | None = float("nan")
    descriptions: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    compress: str = "DEFLATE"
    block: int = 512
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def predictor(self) -> int:
        return 3 if self.dtype.startswith("float") else 2


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """An output path whose folder exists; InputError otherwise."""
    p = Path(path)
    if not p.parent.exists():
        raise InputError(
            f"output folder {p.parent} does not exist; create it first or choose another -o path"
        )
    if p.exists() and p.is_dir():
        raise InputError(
            f"output path {p} is a folder; give a file name such as {p / 'displacement.tif'}"
        )
    return p


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: equal after ``realpath``, or one inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_outputs(outputs: Mapping[str, PathArg], inputs: Mapping[str, PathArg]) -> dict[str, Path]:
    """Check the output paths of one command before any work starts; InputError otherwise.

    Every output must pass :func:`check_output_path`, must not be the same file as any input
    (writing it would destroy that input) and must not be the same file as another output.

    Args:
        outputs: Output paths by the name a user knows them by (e.g. ``"-o"``,
            ``"--confidence"``); None entries (options not given) are skipped.
        inputs: Input paths by name (e.g. ``"optical"``, ``"--tiepoints"``); None entries skipped.

    Returns:
        The checked output paths by name (given entries only).
    """
    given = {k: Path(v) for k, v in outputs.items() if v is not None}
    sources = {k: Path(v) for k, v in inputs.items() if v is not None}
    seen: list[tuple[str, Path]] = []
    for name, path in given.items():
        check_output_path(path)
        for in_name, in_path in sources.items():
            if same_file(path, in_path):
                raise InputError(
                    f"output {name} {path} is the same file as input {in_name} {in_path}; "
                    f"writing it would overwrite the input: choose another {name} path"
                )
        for other_name, other in seen:
            if same_file(path, other):
                raise InputError(
                    f"outputs {other_name} {other} and {name} {path} are the same file; "
                    "give each output its own path"
                )
        seen.append((name, path))
    return given


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (threads may be writing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary path in the destination folder, renamed onto ``path`` on success.

    The file gets the mode a plain ``open()`` would give it (``0o666`` less the umask) before
    the rename; ``mkstemp`` alone would leave it ``0o600``.
    """
    dst = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=suffix or dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, dst)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def scratch_path(near: str | os.PathLike[str], suffix: str) -> Iterator[Path]:
    """A temporary file beside ``near``, always deleted afterwards."""
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(near).name}.", suffix=suffix, dir=Path(near).parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def windows(grid: Grid, block: int) -> Iterator[Window]:
    for row in range(0, grid.height, block):
        for col in range(0, grid.width, block):
            yield Window(col, row, min(block, grid.width - col), min(block, grid.height - row))


def write_cog(
    path: str | os.PathLike[str],
    grid: Grid,
    spec: CogSpec,
    block_fn: BlockFn,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``block_fn(window) -> (count, h, w)`` for every block of ``grid`` as a COG at
    ``path``."""
    dst = check_output_path(path)
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": spec.count,
        "dtype": spec.dtype,
        "crs": grid.crs.to_wkt(),
        "transform": grid.transform,
        "nodata": spec.nodata,
        "tiled": True,
        "blockxsize": spec.block,
        "blockysize": spec.block,
        "compress": "NONE",
        "BIGTIFF": "IF_SAFER",
    }
    with scratch_path(dst, ".scratch.tif") as scratch:
        with rasterio.open(scratch, "w", **profile) as out:
            for i, desc in enumerate(spec.descriptions, start=1):
                out.set_band_description(i, desc)
            for i, unit in enumerate(spec.units, start=1):
                out.update_tags(i, units=unit)
                out.set_band_unit(i, unit)
            if spec.tags:
                out.update_tags(**dict(spec.tags))
            for window in windows(grid, spec.block):
                out.write(block_fn(window).astype(spec.dtype, copy=False), window=window)
                if progress:
                    progress(int(window.width * window.height))
        # GDAL's COG driver builds the overviews and compresses on every core in one pass
        with atomic_path(dst) as tmp_cog, rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            rio_copy(
                str(scratch),
                str(tmp_cog),
                driver="COG",
                COMPRESS=spec.compress,
                PREDICTOR=spec.predictor,
                BLOCKSIZE=spec.block,
                NUM_THREADS="ALL_CPUS",
                BIGTIFF="IF_SAFER",
                OVERVIEW_RESAMPLING="AVERAGE" if spec.dtype.startswith("float") else "NEAREST",
            )
    return dst
