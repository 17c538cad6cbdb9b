"""CFOG descriptors in torch: the maths of ``models.areamatch.cfog`` on any torch device."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_taps(sigma: float, device: torch.device) -> torch.Tensor:
    """OpenCV's float Gaussian kernel for ``sigma`` (side ``round(8 sigma + 1) | 1``), normalised.

    Args:
        sigma: Standard deviation, pixels (> 0).
        device: Where the taps live.
    """
    size = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (taps / taps.sum()).to(device=device, dtype=torch.float32)


def fill_nodata_torch(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` with NaN replaced by the median of the valid pixels (0 if none), and the valid
    mask; the median averages the two middle values, as NumPy's does.

    Args:
        image: (H, W) float tensor.
    """
    valid = torch.isfinite(image)
    if bool(valid.all()):
        return image.float(), valid
    values = image[valid].float().sort().values
    n = values.numel()
    fill = (values[(n - 1) // 2] + values[n // 2]) / 2 if n else image.new_zeros(())
    return torch.where(valid, image.float(), fill), valid


def sobel_torch(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """3×3 Sobel derivatives (x right, y down) of (H, W), borders reflected without repeating
    the edge; central differences then [1, 2, 1] across, so equal neighbours give exactly 0.

    Args:
        image: (H, W) float32 tensor.
    """
    p = F.pad(image[None, None], (1, 1, 1, 1), mode="reflect")[0, 0]
    dx = p[:, 2:] - p[:, :-2]
    dy = p[2:] - p[:-2]
    gx = dx[:-2] + 2 * dx[1:-1] + dx[2:]
    gy = dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]
    return gx, gy


def _separable_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each plane of (K, H, W), borders reflected without repeating the edge."""
    taps = gaussian_taps(sigma, planes.device).tolist()
    k, (_, h, w) = len(taps), planes.shape
    x = F.pad(planes[None], (k // 2, k // 2, k // 2, k // 2), mode="reflect")[0]
    # weighted sums of shifted slices: cheaper than a one-channel convolution on the CPU
    rows = sum(t * x[:, :, i : i + w] for i, t in enumerate(taps))
    return sum(t * rows[:, i : i + h] for i, t in enumerate(taps))


def cfog_torch(image: torch.Tensor, bins: int = 9, sigma: float = 0.8) -> torch.Tensor:
    """CFOG descriptor ``(bins, H, W)`` float32 of a single-band image tensor (NaN = no data).

    Sobel 3×3 gradients (borders reflected without repeating the edge, as OpenCV's
    default), their absolute projections on ``bins`` orientations over 0–180°, a
    Gaussian blur of ``sigma`` per plane, circular [1, 2, 1] / 4 smoothing across
    orientations and per-pixel L2 normalisation; zeros on no-data grown by 2 pixels.

    Args:
        image: (H, W) tensor on the device the descriptor is computed on.
        bins: Orientation planes.
        sigma: Spatial smoothing, pixels (0: none).
    """
    filled, valid = fill_nodata_torch(image)
    dev = filled.device
    gx, gy = sobel_torch(filled)
    angles = torch.arange(bins, dtype=torch.float64) * math.pi / bins
    cos = torch.cos(angles).to(dev, torch.float32)[:, None, None]
    sin = torch.sin(angles).to(dev, torch.float32)[:, None, None]
    planes = (cos * gx + sin * gy).abs()
    if sigma > 0:
        planes = _separable_blur(planes, sigma)
    out = 0.25 * (torch.roll(planes, 1, 0) + torch.roll(planes, -1, 0)) + 0.5 * planes
    bad = F.max_pool2d((~valid).float()[None, None], 5, stride=1, padding=2)[0, 0] > 0
    inv = 1.0 / (torch.sqrt((out * out).sum(0)) + 1e-6)
    inv = torch.where(bad, torch.zeros_like(inv), inv)
    return out * inv
