"""The torch Gaussian sums (models/gpu/gaussian.py) on CPU tensors agree with SciPy's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.grid import north_up_grid
from models.gpu import splat_blur_torch
from models.methods.local.dense import (
    _blurred,
    choose_sigma,
    dense_residual,
    filter_taps,
    held_out_errors,
    normalised_convolution,
)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _vectors(n: int = 300, side: int = 60, seed: int = 4):
    rng = np.random.default_rng(seed)
    r, c = rng.integers(0, side, n), rng.integers(0, side - 7, n)
    q = rng.uniform(0.1, 1.0, n)
    dx = 3 * np.sin(r / 9.0) + rng.normal(0, 0.3, n)
    dy = 2 * np.cos(c / 7.0) + rng.normal(0, 0.3, n)
    return (side, side - 7), r, c, q, dx, dy


@pytest.mark.parametrize("sigma", [0.5, 2.3, 30.0])  # 30: the kernel is wider than the grid
def test_splatted_gaussian_equals_scipys(sigma: float) -> None:
    shape, r, c, q, _, _ = _vectors()
    ref = _blurred(shape, r, c, q, sigma)
    out = splat_blur_torch(shape, r, c, q, filter_taps(sigma), "cpu")
    assert out.dtype == np.float64 and out.shape == shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-14)


def test_normalised_convolution_and_held_out_errors_equal_on_torch() -> None:
    shape, r, c, q, dx, dy = _vectors()
    near = np.array([[0, 1], [2, 3], [4, 9]])
    for ref, out in zip(
        normalised_convolution(shape, r, c, q, dx, dy, 4.0),
        normalised_convolution(shape, r, c, q, dx, dy, 4.0, torch_device="cpu"),
        strict=True,
    ):
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    for sigma in (3.0, 26.0):  # 26: scored on a coarsened grid
        ref = held_out_errors(shape, r, c, q, dx, dy, sigma, near)
        out = held_out_errors(shape, r, c, q, dx, dy, sigma, near, torch_device="cpu")
        np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-10)


def test_smoothing_choice_and_dense_residual_equal_on_torch() -> None:
    rng = np.random.default_rng(2)
    grid = north_up_grid("EPSG:32637", (0, 0, 1200, 1000), 8.0)
    x, y = rng.uniform(0, 1200, 500), rng.uniform(0, 1000, 500)
    dx = 2 * np.sin(x / 300) + rng.normal(0, 0.4, 500)
    dy = np.cos(y / 250) + rng.normal(0, 0.4, 500)
    q = rng.uniform(0.2, 1.0, 500)
    candidates = [24.0, 48.0, 96.0, 192.0]
    chosen = choose_sigma(grid, x, y, dx, dy, q, candidates, template_m=48.0)
    assert choose_sigma(grid, x, y, dx, dy, q, candidates, 48.0, torch_device="cpu") == chosen
    ref = dense_residual(grid, x, y, dx, dy, q, chosen)
    out = dense_residual(grid, x, y, dx, dy, q, chosen, torch_device="cpu")
    for a, b in zip(out, ref, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@CUDA
def test_gaussian_sums_on_cuda_equal_scipys() -> None:
    shape, r, c, q, dx, dy = _vectors()
    ref = held_out_errors(shape, r, c, q, dx, dy, 3.0)
    out = held_out_errors(shape, r, c, q, dx, dy, 3.0, torch_device="cuda")
    np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-10)
