"""Atomic file writes: a temporary beside the destination, renamed onto it with umask modes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TEMP_RANDOM",
    "atomic_path",
    "copy_atomic",
    "current_umask",
    "is_atomic_temporary",
    "locked",
    "rename_into_place",
    "write_atomic",
]

# the 8 characters tempfile.mkstemp puts in a name (its alphabet: a-z, 0-9 and "_")
TEMP_RANDOM = r"[a-z0-9_]{8}"


def current_umask() -> int:
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


def rename_into_place(tmp: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Give ``tmp`` the mode a plain ``open()`` would (``0o666`` less the umask), rename it onto
    ``dst``.

    Args:
        tmp: The complete file, in the folder of ``dst``.
        dst: The final name.
    """
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, dst)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary path in the destination folder, renamed onto ``path`` on success.

    The temporary is named ``.<name>.<8 random characters><suffix>`` (``suffix`` defaults to the
    destination's, so writers that choose a driver by extension see the right one); it is deleted
    when the block raises. The file gets the mode a plain ``open()`` would give it (``0o666``
    less the umask) before the rename; ``mkstemp`` alone would leave it ``0o600``.

    Args:
        path: The destination file; its folder must exist.
        suffix: The temporary's suffix, when it must differ from the destination's.
    """
    dst = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=suffix or dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        rename_into_place(tmp_path, dst)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def is_atomic_temporary(name: str, dst: str | os.PathLike[str]) -> bool:
    """Whether the file ``name`` is an :func:`atomic_path` temporary of ``dst`` (default suffix)."""
    dst = Path(dst)
    pattern = rf"^\.{re.escape(dst.name)}\.{TEMP_RANDOM}{re.escape(dst.suffix)}$"
    return re.match(pattern, name) is not None


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path` (never a partial file), creating
    its folder when missing."""
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data)


def copy_atomic(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy ``src`` to ``dst`` through :func:`atomic_path`, creating the folder when missing;
    skipped when ``dst`` already holds the same bytes."""
    src, dst = Path(src), Path(dst)
    if dst.is_file() and _same_bytes(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created, with its folder, when missing).

    Args:
        lock_file: The lock file; processes that lock the same file run the block one at a time.
    """
    lock = Path(lock_file)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
