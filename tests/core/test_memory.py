"""Freed heap memory goes back to the system."""

from __future__ import annotations

import numpy as np
import pytest

from core.memory import _malloc_trim, return_freed_memory


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim (Linux)")
def test_freed_blocks_leave_the_resident_set() -> None:
    # 64 KB arrays come from the heap; freeing every other one leaves holes glibc keeps
    arrays = [np.ones(8192) for _ in range(4000)]
    del arrays[::2]
    before = _resident_mb()
    assert return_freed_memory()
    assert before - _resident_mb() > 50
    assert all(a[0] == 1.0 for a in arrays)
