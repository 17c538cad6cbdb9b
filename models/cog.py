"""Writing Cloud-Optimized GeoTIFFs block by block, atomically.

Blocks go to a tiled scratch GeoTIFF next to the destination, its overview levels are
halved from it (:mod:`models.cog_overviews`), GDAL's COG driver turns both into a COG
(internal overviews, DEFLATE/ZSTD) under a temporary name, and only then is it renamed to the
destination: a crash never leaves a partial product under the final name. The temporaries a
killed run leaves behind are deleted when a later write to that folder starts
(:func:`sweep_stale_temporaries`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import stat
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from core.errors import InputError
from core.files import TEMP_RANDOM, atomic_path, is_atomic_temporary
from core.grid import Grid
from models.cog_overviews import overview_levels

BlockFn = Callable[[Window], np.ndarray]
SCRATCH_SUFFIX = ".scratch.tif"
log = logging.getLogger(__name__)
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
    # compression effort (DEFLATE 1-9); readers decode every level alike. 1, the fastest, keeps
    # the write of a scene-sized field short for files slightly larger than GDAL's default 6
    level: int = 1
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


@dataclass(frozen=True)
class OutputFormat:
    """A file format a command writes: its name in messages and the extensions that name it."""

    name: str
    suffixes: tuple[str, ...]

    def check(self, option: str, path: Path) -> None:
        """InputError unless ``path`` ends in one of the suffixes (any letter case).

        Args:
            option: The option the path was given with, for the message (e.g. ``"-o"``).
            path: The output path.
        """
        if path.suffix.lower() in self.suffixes:
            return
        found = f"extension {path.suffix}" if path.suffix else "no extension"
        wanted = " or ".join(self.suffixes)
        raise InputError(
            f"{option} {path}: {found}, but this output is written as {self.name}; give a path "
            f"ending in {wanted} (e.g. {path.with_suffix(self.suffixes[0]).name})"
        )


COG = OutputFormat("a GeoTIFF (COG)", (".tif", ".tiff"))
CSV = OutputFormat("CSV", (".csv",))
JSON = OutputFormat("JSON", (".json",))


def check_outputs(
    outputs: Mapping[str, PathArg],
    inputs: Mapping[str, PathArg],
    *,
    overwrite: bool = True,
    formats: Mapping[str, OutputFormat] | None = None,
    makes_folders: bool = False,
) -> dict[str, Path]:
    """Check the output paths of one command before any work starts; InputError otherwise.

    Every output must have the extension of its format, must pass :func:`check_output_path`,
    must not be the same file as any input (writing it would destroy that input) nor as another
    output, and must not exist unless ``overwrite`` is true.

    Args:
        outputs: Output paths by the name a user knows them by (e.g. ``"-o"``,
            ``"--confidence"``); None entries (options not given) are skipped.
        inputs: Input paths by name (e.g. ``"optical"``, ``"--tiepoints"``); None entries skipped.
        overwrite: Whether an existing output may be replaced. The command line passes its
            ``--overwrite`` flag; library callers writing their own products replace them.
        formats: The format of each output by name; outputs not named here are not checked
            for an extension.
        makes_folders: Whether the writer creates missing output folders (then a missing
            folder is no error).

    Returns:
        The checked output paths by name (given entries only).
    """
    given = {k: Path(v) for k, v in outputs.items() if v is not None}
    sources = {k: Path(v) for k, v in inputs.items() if v is not None}
    seen: list[tuple[str, Path]] = []
    for name, path in given.items():
        _check_not_input(name, path, sources)
        if formats and name in formats:
            formats[name].check(name, path)
        if not (makes_folders and not path.parent.exists()):
            check_output_path(path)
        for other_name, other in seen:
            if same_file(path, other):
                raise InputError(
                    f"outputs {other_name} {other} and {name} {path} are the same file; "
                    "give each output its own path"
                )
        if not overwrite and os.path.lexists(path):
            raise InputError(
                f"output {name} {path} exists; pass --overwrite to replace it, or choose another "
                f"{name} path"
            )
        seen.append((name, path))
    return given


def _check_not_input(name: str, path: Path, sources: Mapping[str, Path]) -> None:
    """InputError when output ``name`` at ``path`` is the same file as one of ``sources``."""
    for in_name, in_path in sources.items():
        if same_file(path, in_path):
            raise InputError(
                f"output {name} {path} is the same file as input {in_name} {in_path}; "
                f"writing it would overwrite the input: choose another {name} path"
            )


def _host_id() -> str:
    """Eight hex digits naming this host (its name's CRC-32): PIDs only mean something on it."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


@contextmanager
def scratch_path(near: str | os.PathLike[str], suffix: str) -> Iterator[Path]:
    """A temporary file beside ``near``, always deleted afterwards.

    Its name, ``.<near name>.<host>-<pid>.<random><suffix>``, says which process on which host
    writes it, so :func:`sweep_stale_temporaries` can tell a leftover of a killed run from a
    file in use.
    """
    prefix = f".{Path(near).name}.{_host_id()}-{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=Path(near).parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


# Names of coalign's scratch files (tempfile.mkstemp adds TEMP_RANDOM to them).
_SCRATCH_NAME = re.compile(
    rf"^\..+\.(?P<host>[0-9a-f]{{8}})-(?P<pid>[0-9]+)\.{TEMP_RANDOM}{re.escape(SCRATCH_SUFFIX)}$"
)
_OWNERLESS_SCRATCH_NAME = re.compile(rf"^\..+\.{TEMP_RANDOM}{re.escape(SCRATCH_SUFFIX)}$")
# a scratch file of a dead process on this host, unmodified this long, is a leftover
DEAD_WRITER_AGE_S = 300.0
# a temporary whose writer cannot be checked (other host, no PID in the name) must be this old
UNKNOWN_WRITER_AGE_S = 86400.0


def _stale_after(name: str, dst: Path) -> float | None:
    """Seconds unmodified after which the file ``name`` beside ``dst`` is a leftover; None: keep.

    Only coalign's own temporaries qualify: scratch files (:func:`scratch_path`) of any output in
    the folder, and :func:`core.files.atomic_path` temporaries of ``dst`` itself.
    """
    m = _SCRATCH_NAME.match(name)
    if m:
        if m["host"] != _host_id():
            return UNKNOWN_WRITER_AGE_S
        return None if _pid_alive(int(m["pid"])) else DEAD_WRITER_AGE_S
    if _OWNERLESS_SCRATCH_NAME.match(name) or is_atomic_temporary(name, dst):
        return UNKNOWN_WRITER_AGE_S
    return None


def sweep_stale_temporaries(dst: str | os.PathLike[str], now: float | None = None) -> list[Path]:
    """Delete coalign's temporaries beside ``dst`` that a killed run left behind.

    A scratch file written by a process on this host goes once that process is gone and the file
    has not been modified for :data:`DEAD_WRITER_AGE_S`; a temporary whose writer cannot be
    checked (written on another host, or named without a PID) goes after
    :data:`UNKNOWN_WRITER_AGE_S`. Nothing else in the folder is touched, nor are links and
    folders; files that cannot be deleted are left alone.

    Args:
        dst: The output about to be written; its folder is swept.
        now: The current time (``time.time()`` when not given).

    Returns:
        The paths deleted.
    """
    dst = Path(dst)
    now = time.time() if now is None else now
    try:
        entries = [e for e in os.scandir(dst.parent) if e.name.startswith(".")]
    except OSError:
        return []
    removed: list[Path] = []
    for entry in entries:
        age = _stale_after(entry.name, dst)
        if age is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < age:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        log.info("removed %s, left behind by a killed coalign run", entry.path)
        removed.append(Path(entry.path))
    return removed


# GDAL's block cache while a COG is written (bytes): the scratch file's blocks and the COG
# driver's reads pass through it, and GDAL's default (5 % of the RAM) fills with gigabytes of a
# large map without making the write faster
WRITE_CACHE_BYTES = 256 * 2**20


@dataclass
class _CacheBound:
    """The writes holding GDAL's process-wide cache bound, and the size to restore after."""

    lock: threading.Lock
    holders: int = 0
    previous: int | None = None  # None: the cache was already within the bound


_CACHE_BOUND = _CacheBound(threading.Lock())


@contextmanager
def bounded_gdal_cache(limit: int = WRITE_CACHE_BYTES) -> Iterator[None]:
    """GDAL's block cache at most ``limit`` bytes inside the block, as it was after it.

    The cache is the process's: writes in several threads share one bound, set by the first
    to enter and lifted when the last leaves.
    """
    bound = _CACHE_BOUND
    with bound.lock:
        if bound.holders == 0:
            current = get_gdal_config("GDAL_CACHEMAX")
            bound.previous = None if isinstance(current, int) and current <= limit else current
            if bound.previous is not None:
                set_gdal_config("GDAL_CACHEMAX", limit)
        bound.holders += 1
    try:
        yield
    finally:
        with bound.lock:
            bound.holders -= 1
            if bound.holders == 0 and bound.previous is not None:
                set_gdal_config("GDAL_CACHEMAX", bound.previous)


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
    ``path``, with GDAL's block cache bounded (:func:`bounded_gdal_cache`)."""
    dst = check_output_path(path)
    sweep_stale_temporaries(dst)
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
    average = spec.dtype.startswith("float")
    new_scratch = partial(scratch_path, dst, SCRATCH_SUFFIX)
    with (
        scratch_path(dst, SCRATCH_SUFFIX) as scratch,
        bounded_gdal_cache(),
        overview_levels(profile, spec.block, average, new_scratch) as levels,
    ):
        with rasterio.open(scratch, "w", **profile) as out:
            for i, desc in enumerate(spec.descriptions, start=1):
                out.set_band_description(i, desc)
            for i, unit in enumerate(spec.units, start=1):
                out.update_tags(i, units=unit)
                out.set_band_unit(i, unit)
            if spec.tags:
                out.update_tags(**dict(spec.tags))
            for window in windows(grid, spec.block):
                data = block_fn(window).astype(spec.dtype, copy=False)
                out.write(data, window=window)
                levels.add(window, data)
                if progress:
                    progress(int(window.width * window.height))
        source = levels.source(scratch)
        # GDAL's COG driver copies the overviews and compresses on every core
        with atomic_path(dst) as tmp_cog, rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            rio_copy(
                str(source),
                str(tmp_cog),
                driver="COG",
                COMPRESS=spec.compress,
                LEVEL=spec.level,
                PREDICTOR=spec.predictor,
                BLOCKSIZE=spec.block,
                NUM_THREADS="ALL_CPUS",
                BIGTIFF="IF_SAFER",
                OVERVIEWS="FORCE_USE_EXISTING" if levels.sizes else "NONE",
            )
    return dst
