"""Freed heap memory goes back to the system, or is kept for reuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.memory import _malloc_trim, return_freed_memory

ROOT = Path(__file__).resolve().parents[2]


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


_REUSE = """
import resource, sys
import numpy as np
from core.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for round_ in range(3):
    before = faults()
    a, b = np.ones(2**20), np.ones(2**20)  # 8 MB each
    del a, b
print(faults() - before)
"""


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc (Linux)")
@pytest.mark.parametrize("mode", ["keep", "default"])
def test_kept_blocks_are_reused_without_page_faults(mode: str) -> None:
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0", "PYTHONPATH": str(ROOT)}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    done = subprocess.run(
        [sys.executable, "-c", _REUSE, mode], env=env, capture_output=True, text=True, check=True
    )
    pages = 2 * 2**20 * 8 // 4096  # the two arrays' pages
    faults = int(done.stdout.split()[-1])
    if mode == "keep":
        assert faults < pages // 10
    else:  # glibc maps blocks this large afresh, or returns them, each time
        assert faults > pages // 2
