"""Tests of the cross terms of template NCC (models/areamatch_cross.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models import areamatch_cross
from models.areamatch import cfog
from models.areamatch_cross import block_cross, pixel_cross


def _pair(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2)
    other = np.roll(img, (1, -2), axis=(0, 1)) + 0.05 * rng.random(shape).astype(np.float32)
    return cfog(img), cfog(other)


def _lattice(shape: tuple[int, int], template: int, radius: int) -> tuple[np.ndarray, ...]:
    h, w = shape
    xx, yy = np.meshgrid(
        np.arange(radius + 4, w - template - radius, 16),
        np.arange(radius + 4, h - template - radius, 16),
    )
    return xx.ravel(), yy.ravel()


def _spy_paths(monkeypatch) -> list[str]:
    """The names of the block paths taken, in order."""
    called: list[str] = []
    for name in ("_block_rows", "_block_columns"):
        real = getattr(areamatch_cross, name)

        def spy(*args, _real=real, _name=name):
            called.append(_name)
            return _real(*args)

        monkeypatch.setattr(areamatch_cross, name, spy)
    return called


@pytest.mark.parametrize("path", ["rows", "columns"])
@pytest.mark.parametrize("radius", [2, 4, 9])
def test_block_lattice_cross_terms_equal_the_per_pixel_products(monkeypatch, path, radius):
    """Templates on a lattice share block sums; either block path gives the per-pixel product
    images' cross terms."""
    called = _spy_paths(monkeypatch)
    # forcing one path: no waste allowed (rows), or any (columns)
    monkeypatch.setattr(areamatch_cross, "COLUMN_PRODUCT_WASTE", 0.0 if path == "rows" else 1e9)
    o, s = _pair((180, 190))
    template = 32
    x0, y0 = _lattice((180, 190), template, radius)
    shifts = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    block = block_cross(o, s, x0, y0, template, radius)
    assert block is not None and called == [f"_block_{path}"]
    np.testing.assert_allclose(
        block, pixel_cross(o, s, x0, y0, template, shifts), rtol=1e-4, atol=1e-3
    )


@pytest.mark.parametrize(("radius", "path"), [(2, "rows"), (3, "rows"), (6, "columns")])
def test_wide_searches_take_the_column_products_and_small_ones_the_rows(monkeypatch, radius, path):
    """The finest levels' radius 2-3 keep the row path; a coarse level's radius 6 takes the
    column products."""
    called = _spy_paths(monkeypatch)
    o, s = _pair((180, 190))
    x0, y0 = _lattice((180, 190), 32, radius)
    assert block_cross(o, s, x0, y0, 32, radius) is not None
    assert called == [f"_block_{path}"]


def test_templates_off_the_lattice_have_no_block_cross_terms():
    o, s = _pair((120, 130))
    x0, y0 = _lattice((120, 130), 32, 6)
    assert block_cross(o, s, x0, y0, 32, 6) is not None
    # no shared blocks: the per-pixel path answers
    assert block_cross(o, s, x0 + np.arange(len(x0)) % 3, y0, 32, 6) is None
