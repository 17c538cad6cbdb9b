"""Benchmark test fixtures: generated pairs only (the real data is used by one test, skipped when
absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_fixtures import write_cfog_like


@pytest.fixture
def cfog_like_folder(tmp_path: Path) -> Path:
    return write_cfog_like(tmp_path)
