"""Tests of the template-matching loss of the learned descriptor."""

import numpy as np
import pytest
import torch

from models.learned.patches import Patch
from models.learned.template_loss import (
    ncc_surfaces,
    soft_target,
    template_corners,
    template_loss,
    true_shift,
)


def _shifted_pair(dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features and the same features moved by (dx, dy): content at p appears at p + d."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, 8, 96, 96, generator=g)
    return f, torch.roll(f, shifts=(dy, dx), dims=(2, 3))


@pytest.mark.parametrize("dx, dy", [(3, -2), (0, 0), (-5, 4)])
def test_ncc_surface_peaks_at_the_shift(dx, dy):
    optical, sar = _shifted_pair(dx, dy)
    corner = torch.tensor([[30, 30]])
    ncc = ncc_surfaces(optical, sar, torch.tensor([0]), corner, 24, 6).reshape(13, 13)
    iy, ix = divmod(int(ncc.argmax()), 13)
    assert (ix - 6, iy - 6) == (dx, dy)
    assert float(ncc.max()) == pytest.approx(1.0, abs=1e-4)
    assert float(ncc.reshape(-1).sort().values[-2]) < 0.5


def test_soft_target_is_a_distribution_centred_on_the_shift():
    shifts = torch.tensor([[0.25, 0.5], [-3.0, 2.75], [9.0, -9.0]])
    target = soft_target(shifts, 6).reshape(3, 13, 13)
    assert torch.allclose(target.sum((1, 2)), torch.ones(3))
    grid = torch.arange(-6, 7, dtype=torch.float32)
    centroid_x = (target.sum(1) * grid).sum(1)
    centroid_y = (target.sum(2) * grid).sum(1)
    assert torch.allclose(centroid_x[:2], shifts[:2, 0]) and torch.allclose(
        centroid_y[:2], shifts[:2, 1]
    )
    # beyond the window: clamped onto its border
    assert (float(centroid_x[2]), float(centroid_y[2])) == (6.0, -6.0)


def test_true_shift_of_a_translation_is_minus_the_warp():
    warp = np.zeros((2, 64, 64), np.float32)
    warp[0], warp[1] = 2.5, -1.0
    assert np.allclose(true_shift(warp, np.array([10, 20]), 16), [-2.5, 1.0])


def test_template_corners_keep_the_search_window_inside():
    corners = template_corners(128, 32, 12, 2)
    assert corners.min() == 12 and corners.max() + 32 + 12 == 128
    with pytest.raises(ValueError, match="does not fit"):
        template_corners(48, 32, 12, 2)


def test_loss_is_lower_for_features_that_follow_the_warp():
    optical, sar = _shifted_pair(0, 0)
    warp = np.zeros((2, 96, 96), np.float32)
    warp[0] = -3.0  # the SAR shows at q the ground at q - 3: templates move by +3 in x
    patch = Patch(np.zeros((96, 96)), np.zeros((96, 96)), np.zeros((0, 2)), np.zeros((0, 2)), warp)
    moved = torch.roll(optical, shifts=(0, 3), dims=(2, 3))
    right = template_loss(optical, moved, [patch], 24, 6, 2, 0.02)
    wrong = template_loss(optical, sar, [patch], 24, 6, 2, 0.02)
    assert float(right) < 0.5 * float(wrong)
