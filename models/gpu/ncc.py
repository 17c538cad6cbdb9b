"""Zero-mean NCC template matching in torch: every template at every shift, on any device."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.areamatch_parts import TemplateMatches, surface_matches, template_corners

# device memory one batch of templates may take (windows, spectra, products)
MAX_BATCH_BYTES = 512 * 2**20


def as_descriptor(desc: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """A (C, H, W) descriptor as a contiguous float32 tensor (tensors stay on their device).

    Args:
        desc: NumPy array or tensor.
        device: Where a NumPy array goes.
    """
    if isinstance(desc, torch.Tensor):
        return desc.float().contiguous()
    return torch.from_numpy(np.ascontiguousarray(desc, np.float32)).to(device)


def _index(start: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """(N, size) pixel indices ``start + 0 .. size - 1``."""
    first = torch.as_tensor(np.asarray(start, np.int64), device=device)
    return first[:, None] + torch.arange(size, device=device)[None, :]


def _cut(desc: torch.Tensor, x0: np.ndarray, y0: np.ndarray, size: int) -> torch.Tensor:
    """(N, C, size, size) windows of ``desc`` with top-left corners ``(x0, y0)``."""
    rows, cols = _index(y0, size, desc.device), _index(x0, size, desc.device)
    return desc[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)


def _box_mean(planes: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of each ``size²`` window of (K, H, W), separably: (K, H - size + 1, W - size + 1)."""
    x = F.avg_pool2d(planes[None], (size, 1), stride=1)
    return F.avg_pool2d(x, (1, size), stride=1)[0]


def window_energy(sar_desc: torch.Tensor, template: int) -> torch.Tensor:
    """Sum over channels of ``Σ s² − (Σ s)² / n`` for every ``template²`` window (top-left
    corners): the SAR term of the NCC denominator, (H − template + 1, W − template + 1).

    Args:
        sar_desc: (C, H, W) float32.
        template: Template side.
    """
    m1 = _box_mean(sar_desc, template)
    m2 = _box_mean((sar_desc * sar_desc).sum(0, keepdim=True), template)[0]
    return (template * template) * (m2 - (m1 * m1).sum(0))


def _batch(channels: int, template: int, radius: int, max_bytes: int) -> int:
    """Templates per batch so windows, their spectra and the products fit in ``max_bytes``."""
    big = template + 2 * radius
    per_template = 4 * channels * big * big * 6
    return max(1, max_bytes // per_template)


def ncc_surfaces_torch(
    opt_desc: torch.Tensor,
    sar_desc: torch.Tensor,
    x0: np.ndarray,
    y0: np.ndarray,
    template: int,
    radius: int,
    max_bytes: int = MAX_BATCH_BYTES,
) -> torch.Tensor:
    """Zero-mean NCC over all channels of each optical template at every shift within
    ``±radius``: (N, side, side) float32, row = dy + radius, column = dx + radius.

    The cross term is one FFT correlation per template and window (channel spectra
    summed before the inverse transform); the SAR energies come from box means of
    the whole descriptor, shared by every template. Templates go in batches that
    keep the device memory under ``max_bytes``.

    Args:
        opt_desc: (C, H, W) optical descriptor, float32.
        sar_desc: (C, H, W) SAR descriptor on the same grid and device.
        x0: Template top-left columns; every search window must lie inside the image.
        y0: Template top-left rows.
        template: Template side.
        radius: Search radius, pixels.
        max_bytes: Device memory one batch may take.
    """
    side, big = 2 * radius + 1, template + 2 * radius
    x0, y0 = np.asarray(x0, np.int64), np.asarray(y0, np.int64)
    energy = window_energy(sar_desc, template)
    out = torch.empty((len(x0), side, side), dtype=torch.float32, device=opt_desc.device)
    step = _batch(opt_desc.shape[0], template, radius, max_bytes)
    for k in range(0, len(x0), step):
        bx, by = x0[k : k + step], y0[k : k + step]
        t = _cut(opt_desc, bx, by, template)
        t = t - t.mean(dim=(2, 3), keepdim=True)
        t_energy = (t * t).sum(dim=(1, 2, 3)).clamp_min(1e-12)
        spectrum = torch.fft.rfft2(_cut(sar_desc, bx - radius, by - radius, big))
        spectrum *= torch.fft.rfft2(t, s=(big, big)).conj()
        cross = torch.fft.irfft2(spectrum.sum(1), s=(big, big))[:, :side, :side]
        e_s = _cut(energy[None], bx - radius, by - radius, side)[:, 0].clamp_min(1e-12)
        out[k : k + step] = cross / torch.sqrt(t_energy[:, None, None] * e_s)
    return out


def _integral(planes: torch.Tensor) -> torch.Tensor:
    """Integral images (K, H + 1, W + 1) of (K, H, W), first row and column zero."""
    return F.pad(planes.cumsum(1).cumsum(2), (1, 0, 1, 0))


def _sums(ii: torch.Tensor, x0: np.ndarray, y0: np.ndarray, size: int) -> np.ndarray:
    """Sums over ``size²`` windows at top-left corners ``(x0, y0)`` from integral images:
    (N, K) NumPy."""
    x = torch.as_tensor(x0, device=ii.device)
    y = torch.as_tensor(y0, device=ii.device)
    s = ii[:, y + size, x + size] - ii[:, y, x + size] - ii[:, y + size, x] + ii[:, y, x]
    return s.T.cpu().numpy()


def _screen(
    opt: torch.Tensor,
    sar: torch.Tensor,
    x0: np.ndarray,
    y0: np.ndarray,
    template: int,
    radius: int,
    min_valid: float,
    min_structure: float,
) -> np.ndarray:
    """Templates with enough data in the template and its search window and enough structure
    (mean per-channel standard deviation): the checks of ``match_templates``, float64 sums."""
    n, big = float(template * template), template + 2 * radius
    valid_o = _sums(_integral(opt.ne(0).any(0)[None].long()), x0, y0, template)[:, 0]
    valid_s = _sums(_integral(sar.ne(0).any(0)[None].long()), x0 - radius, y0 - radius, big)[:, 0]
    keep = (valid_o / n >= min_valid) & (valid_s / (big * big) >= min_valid)
    o64 = opt.double()
    so = _sums(_integral(o64), x0, y0, template)
    so2 = _sums(_integral(o64 * o64), x0, y0, template)
    var_c = np.maximum(so2 / n - (so / n) ** 2, 0.0)
    return keep & (np.sqrt(var_c).mean(axis=1) >= min_structure)


def match_templates_torch(
    optical_desc: np.ndarray | torch.Tensor,
    sar_desc: np.ndarray | torch.Tensor,
    centres: np.ndarray,
    template: int,
    radius: int,
    min_valid: float = 0.9,
    min_structure: float = 0.05,
    device: str = "cpu",
) -> TemplateMatches:
    """:func:`models.areamatch.match_templates` with the correlations done in torch.

    Same templates kept (data and structure checks), same surfaces up to float32
    rounding, same peak, margin and sub-pixel fit (:func:`surface_matches`).

    Args:
        optical_desc: (C, H, W) optical descriptor (tensors are used on their device).
        sar_desc: (C, H, W) SAR descriptor on the same grid.
        centres: (N, 2) template centres, x and y pixels.
        template: Template side.
        radius: Search radius, pixels.
        min_valid: Least share of data in a template and in its search window.
        min_structure: Least mean per-channel standard deviation of a template.
        device: Where NumPy descriptors are moved to.
    """
    opt = as_descriptor(optical_desc, device)
    sar = as_descriptor(sar_desc, opt.device)
    x0, y0, centres = template_corners(centres, template, radius, tuple(opt.shape[1:]))
    if len(centres):
        keep = _screen(opt, sar, x0, y0, template, radius, min_valid, min_structure)
        x0, y0, centres = x0[keep], y0[keep], centres[keep]
    if not len(centres):
        return TemplateMatches.empty()
    surfaces = ncc_surfaces_torch(opt, sar, x0, y0, template, radius)
    return surface_matches(surfaces.cpu().numpy(), centres, radius)
