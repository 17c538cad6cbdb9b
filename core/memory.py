"""Memory a process freed handed back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """glibc, with ``malloc_trim`` and ``mallopt``; None where the C library is another
    (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    libc = _glibc()
    return None if libc is None else libc.malloc_trim


def return_freed_memory() -> bool:
    """Give the heap memory this process has freed back to the system; whether it could.

    glibc keeps freed blocks of the size of large temporaries (a network's feature maps) in
    its heap for reuse, where they count in the resident set of a process that will not need
    them again; ``malloc_trim`` releases them. Elsewhere this does nothing.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# largest block glibc serves from its heap (its cap, 64-bit): larger ones are always mapped
_HEAP_BLOCK_MAX = 32 * 2**20


def keep_freed_memory() -> bool:
    """Keep the memory this process frees for its own reuse; whether it could.

    A process that repeats the same work (a tile worker) allocates the same large temporaries
    each time. By default glibc maps the largest afresh and returns freed heap at its top, and
    the kernel zeroes every page again. With this, blocks up to glibc's 32 MB cap come from the
    heap and nothing is returned until :func:`return_freed_memory`. Elsewhere this does
    nothing.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCK_MAX)
        & libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    )


@contextmanager
def freed_after() -> Iterator[None]:
    """Run the block, then :func:`return_freed_memory` (also when it raises)."""
    try:
        yield
    finally:
        return_freed_memory()
