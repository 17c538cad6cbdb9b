"""The torch kernels (CFOG, template NCC) on CPU tensors agree with the NumPy reference."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from rasterio.transform import Affine

from core.grid import north_up_grid
from models.areamatch import cfog, match_templates, ncc_surface
from models.areamatch_parts import template_corners
from models.displacement import DisplacementField
from models.gpu import cfog_torch, match_templates_torch, ncc_surfaces_torch
from models.methods.base import RegistrationInput, make_config
from models.methods.local import LocalMethod
from models.methods.local.config import LocalConfig
from models.methods.local.tiles import TileJob, match_descriptors, match_tile, tile_kernels
from tests.conftest import write_geotiff

SHIFT = (2, -3)  # x, y: SAR position minus optical position


def _texture(rng: np.random.Generator, shape: tuple[int, int], blur: float = 2.0) -> np.ndarray:
    return cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), blur)


@pytest.fixture(scope="module")
def pair_descriptors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CFOG of a texture and of a shifted, squared, noisy copy with a no-data hole and a flat
    patch; template centres on a 12 px lattice."""
    rng = np.random.default_rng(7)
    img = _texture(rng, (260, 240))
    sar = np.roll(img, SHIFT[::-1], axis=(0, 1)) ** 2 + 0.01 * rng.random(img.shape)
    sar = sar.astype(np.float32)
    sar[180:215, 30:90] = np.nan
    img[20:80, 150:220] = 0.5  # featureless: its templates are skipped by both paths
    cc, rr = np.meshgrid(np.arange(20, 230, 12.0), np.arange(20, 250, 12.0))
    return cfog(img), cfog(sar), np.column_stack([cc.ravel(), rr.ravel()])


@pytest.mark.parametrize("sigma", [0.0, 0.8, 1.7])
def test_cfog_torch_matches_cfog(sigma: float) -> None:
    rng = np.random.default_rng(1)
    img = _texture(rng, (150, 170), 1.5) * 80
    img[40:60, 70:110] = np.nan  # no data: zeros on it and its 2 px border, fill from the median
    img[100:130, 10:40] = 3.0  # flat: zero gradients stay exactly zero
    ref = cfog(img, sigma=sigma)
    out = cfog_torch(torch.from_numpy(img), sigma=sigma)
    assert out.dtype == torch.float32 and tuple(out.shape) == ref.shape
    assert np.abs(out.numpy() - ref).max() < 1e-4
    assert not out.numpy()[:, 45:55, 75:105].any()


def test_ncc_surfaces_match_the_numpy_surfaces(pair_descriptors) -> None:
    opt, sar, centres = pair_descriptors
    template, radius = 24, 5
    x0, y0, _ = template_corners(centres, template, radius, opt.shape[1:])
    surfaces = ncc_surfaces_torch(
        torch.from_numpy(opt), torch.from_numpy(sar), x0, y0, template, radius, max_bytes=2**20
    ).numpy()
    # reference: the NumPy single-template surface on each cut-out
    for k in range(0, len(x0), 17):
        r0, c0, big = y0[k] - radius, x0[k] - radius, template + 2 * radius
        win = sar[:, r0 : r0 + big, c0 : c0 + big]
        ref = ncc_surface(win, opt[:, y0[k] : y0[k] + template, x0[k] : x0[k] + template])
        assert np.abs(surfaces[k] - ref).max() < 1e-3


def test_match_templates_torch_matches_match_templates(pair_descriptors) -> None:
    opt, sar, centres = pair_descriptors
    ref = match_templates(opt, sar, centres, 24, 6)
    out = match_templates_torch(torch.from_numpy(opt), torch.from_numpy(sar), centres, 24, 6)
    # the same templates kept (no-data hole, flat patch and border ones dropped by both)
    assert 0 < len(ref) < len(centres)
    np.testing.assert_array_equal(out.centres, ref.centres)
    assert np.abs(out.shifts - ref.shifts).max() < 0.05
    assert np.abs(out.peak - ref.peak).max() < 1e-3
    assert np.abs(out.margin - ref.margin).max() < 1e-3
    good = ref.peak > 0.5
    np.testing.assert_allclose(np.median(out.shifts[good], axis=0), SHIFT, atol=0.1)
    # NumPy descriptors are accepted too, off a lattice, and an empty set of centres
    odd = centres[:40] + 0.3 * np.arange(40)[:, None] % 5
    a = match_templates(opt, sar, odd, 21, 4)
    b = match_templates_torch(opt, sar, odd, 21, 4, device="cpu")
    np.testing.assert_array_equal(a.centres, b.centres)
    assert np.abs(a.shifts - b.shifts).max() < 0.05
    assert len(match_templates_torch(opt, sar, np.zeros((0, 2)), 24, 6)) == 0


def _tile_pair(tmp_path) -> RegistrationInput:
    rng = np.random.default_rng(5)
    img = (_texture(rng, (240, 240), 1.5) * 255).astype(np.float32)
    sar = np.roll(img, SHIFT[::-1], axis=(0, 1)) + 1.0
    transform = Affine(1, 0, 0, 0, -1, 240)
    write_geotiff(tmp_path / "opt.tif", img[None].astype(np.uint8), transform)
    write_geotiff(tmp_path / "sar.tif", sar[None].astype(np.float32), transform)
    return RegistrationInput.open(str(tmp_path / "opt.tif"), str(tmp_path / "sar.tif"), "cpu")


def _job(pair: RegistrationInput, device: str) -> TileJob:
    grid = north_up_grid(pair.crs, (20, 20, 220, 220), 1.0)
    fld = DisplacementField.constant(north_up_grid(pair.crs, (0, 0, 240, 240), 10.0))
    sigma = LocalConfig().descriptor_sigma_px
    core = (20, 20, 180, 180)
    return TileJob(pair.optical, pair.sar, grid, core, fld, 32, 16, 6, sigma, device=device)


def test_tile_torch_kernels_match_numpy_ones(tmp_path) -> None:
    job = _job(_tile_pair(tmp_path), "cpu")
    rng = np.random.default_rng(2)
    optical = _texture(rng, (200, 200))
    sar = np.roll(optical, (1, 2), axis=(0, 1))
    centres = np.column_stack([np.arange(40.0, 170, 9), np.arange(40.0, 170, 9)])
    ref = match_descriptors(optical, sar, centres, job)
    out = match_descriptors(optical, sar, centres, job, "cpu")
    np.testing.assert_array_equal(out.centres, ref.centres)
    assert len(ref) and np.abs(out.shifts - ref.shifts).max() < 0.05


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: nothing falls back")
def test_match_tile_on_cuda_without_cuda_falls_back_and_says_so(tmp_path) -> None:
    pair = _tile_pair(tmp_path)
    assert tile_kernels("cuda") == "numpy" and tile_kernels("cpu") == "numpy"
    cpu = match_tile(_job(pair, "cpu"))
    cuda = match_tile(replace(_job(pair, "cpu"), device="cuda"))
    assert cuda.kernels == "numpy" and cpu.kernels == "numpy"
    assert cuda.matches == cpu.matches > 0
    np.testing.assert_array_equal(cuda.dx, cpu.dx)
    np.testing.assert_allclose(np.median(cuda.dx), SHIFT[0], atol=0.2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_match_tile_on_cuda_runs_the_torch_kernels(tmp_path) -> None:
    pair = _tile_pair(tmp_path)
    cpu = match_tile(_job(pair, "cpu"))
    cuda = match_tile(_job(pair, "cuda"))
    assert cuda.kernels == "torch-cuda" and cpu.kernels == "numpy"
    assert cuda.matches == cpu.matches > 0
    assert np.abs(cuda.dx - cpu.dx).max() < 0.05 and np.abs(cuda.peak - cpu.peak).max() < 1e-3


def test_local_records_which_kernels_ran(tmp_path) -> None:
    pair = _tile_pair(tmp_path)
    conf = make_config(LocalConfig, {"global_prior": "false", "workers": "1"})
    result = LocalMethod().run(pair, conf)
    assert result.details["kernels"] == ("torch-cuda" if pair.device == "cuda" else "numpy")


def test_local_with_torch_kernels_takes_the_dense_gaussians_there_too(tmp_path, monkeypatch):
    from models.gpu import gaussian
    from models.methods.local import levels

    pair = _tile_pair(tmp_path)
    conf = make_config(LocalConfig, {"global_prior": "false", "workers": "1"})
    ref = LocalMethod().run(pair, conf).field
    devices = []
    real = gaussian.splat_blur_torch

    def on_cpu(*args):  # the device asked for is recorded; the sums run on CPU tensors
        devices.append(args[-1])
        return real(*args[:-1], "cpu")

    monkeypatch.setattr(levels, "tile_kernels", lambda device: "torch-cuda")
    monkeypatch.setattr(gaussian, "splat_blur_torch", on_cpu)
    out = LocalMethod().run(pair, conf).field
    assert devices and set(devices) == {"cuda"}
    np.testing.assert_allclose(out.dx, ref.dx, atol=1e-4)
    np.testing.assert_allclose(out.dy, ref.dy, atol=1e-4)
