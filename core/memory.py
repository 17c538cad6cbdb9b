"""Memory a process freed handed back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


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


@contextmanager
def freed_after() -> Iterator[None]:
    """Run the block, then :func:`return_freed_memory` (also when it raises)."""
    try:
        yield
    finally:
        return_freed_memory()
