"""Splatted Gaussian sums in torch: the normalised convolution's sums on any torch device."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def splat_blur_torch(
    shape: tuple[int, int],
    r: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    taps: np.ndarray,
    device: str,
) -> np.ndarray:
    """The values ``v`` added at cells ``(r, c)`` of a zero grid, then filtered along the rows
    and the columns by ``taps`` with zeros outside, in float64 on ``device``: SciPy's
    ``gaussian_filter(mode="constant")`` of the same sums when ``taps`` is its kernel.

    Args:
        shape: The grid's (rows, columns).
        r: Row of each value's cell.
        c: Column of each value's cell.
        v: The values.
        taps: An odd-length 1-D kernel (centre tap in the middle).
        device: The torch device, e.g. ``"cuda"`` (``"cpu"`` for tests).
    """
    h, w = shape
    cells = np.ascontiguousarray(np.asarray(r, np.int64) * w + np.asarray(c, np.int64))
    values = np.ascontiguousarray(v, np.float64)
    grid = torch.zeros(h * w, dtype=torch.float64, device=device).index_add_(
        0, torch.as_tensor(cells, device=device), torch.as_tensor(values, device=device)
    )
    k = torch.as_tensor(np.ascontiguousarray(taps, np.float64), device=device)
    reach = len(taps) // 2
    with torch.inference_mode():
        out = F.conv2d(grid.view(1, 1, h, w), k.view(1, 1, -1, 1), padding=(reach, 0))
        out = F.conv2d(out, k.view(1, 1, 1, -1), padding=(0, reach))
    return out[0, 0].cpu().numpy()
