"""Tests of the training patches: reduced pairs and the warp a patch records."""

import numpy as np

from models.learned.patches import WarpSpec, make_patch, reduced


def test_reduced_averages_blocks_and_keeps_no_data() -> None:
    optical = np.arange(36, dtype=np.float32).reshape(6, 6)
    sar = optical.copy()
    sar[0, 0] = np.nan
    small_optical, small_sar = reduced(optical, sar, 2)
    assert small_optical.shape == (3, 3) and small_optical.dtype == np.float32
    assert small_optical[0, 0] == np.mean([0, 1, 6, 7])
    assert np.isnan(small_sar[0, 0]) and np.isfinite(small_sar[1:, 1:]).all()
    # a side that is not a multiple of the factor loses its last pixels
    assert reduced(optical[:5, :5], sar[:5, :5], 2)[0].shape == (2, 2)
    assert reduced(optical, sar, 1)[0] is optical


def test_patch_queries_follow_its_warp() -> None:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((160, 160)).astype(np.float32)
    patch = make_patch(image, image, 96, 32, WarpSpec(6.0, 2.0), rng)
    assert patch is not None and patch.warp.shape == (2, 96, 96)
    r, c = patch.sar_xy[:, 1].astype(int), patch.sar_xy[:, 0].astype(int)
    d = np.stack([patch.warp[0, r, c], patch.warp[1, r, c]], 1)
    assert np.allclose(patch.optical_xy, patch.sar_xy + d, atol=1e-4)
