"""Template-matching loss: the zero-mean NCC surface of optical templates over the warped SAR's
descriptors, as ``local`` computes it, scored by cross-entropy at the true shift."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.learned.patches import Patch


def template_corners(size: int, template: int, radius: int, per_side: int) -> np.ndarray:
    """Top-left corners (K, 2) of ``per_side²`` templates spread over a ``size`` patch, each
    with room for its ``radius`` search window.

    Args:
        size: The patch side.
        template: The template side.
        radius: The search radius.
        per_side: Templates along each axis.
    """
    lo, hi = radius, size - template - radius
    if hi < lo:
        raise ValueError(
            f"a {template}-pixel template with a {radius}-pixel search does not fit a "
            f"{size}-pixel patch"
        )
    ticks = np.linspace(lo, hi, per_side).round().astype(int)
    cx, cy = np.meshgrid(ticks, ticks)
    return np.column_stack([cx.ravel(), cy.ravel()])


def true_shift(warp: np.ndarray, corner: np.ndarray, template: int) -> np.ndarray:
    """The mean SAR − optical shift (x, y pixels) of the optical template at ``corner``.

    The SAR patch shows at ``q`` the ground the optical shows at ``q + d(q)``; the
    optical pixel ``p`` is found in the SAR at ``q = p - d(q)`` (two fixed-point
    steps from ``q = p``).

    Args:
        warp: The patch's warp ``d`` (2, P, P), pixels.
        corner: The template's top-left (x, y).
        template: The template side.
    """
    size = warp.shape[-1]
    yy, xx = np.mgrid[0:template, 0:template]
    px, py = xx + corner[0], yy + corner[1]
    qx, qy = px.astype(np.float32), py.astype(np.float32)
    for _ in range(2):
        ix = np.clip(np.rint(qx), 0, size - 1).astype(int)
        iy = np.clip(np.rint(qy), 0, size - 1).astype(int)
        qx, qy = px - warp[0, iy, ix], py - warp[1, iy, ix]
    return np.array([(qx - px).mean(), (qy - py).mean()], np.float32)


def soft_target(shift: torch.Tensor, radius: int) -> torch.Tensor:
    """Bilinear weights (K, (2r+1)²) of each sub-pixel ``shift`` (K, 2) on the integer shifts
    ``-radius..radius`` (rows: y, columns: x), clamped into the window.

    Args:
        shift: The true shifts (x, y), pixels.
        radius: The search radius.
    """
    side = 2 * radius + 1
    s = shift.clamp(-radius, radius) + radius
    lo = s.floor().clamp(0, side - 2)
    frac = s - lo
    out = torch.zeros(len(shift), side, side, device=shift.device)
    rows = torch.arange(len(shift), device=shift.device)
    for oy in (0, 1):
        for ox in (0, 1):
            w = (frac[:, 0] if ox else 1 - frac[:, 0]) * (frac[:, 1] if oy else 1 - frac[:, 1])
            out[rows, (lo[:, 1] + oy).long(), (lo[:, 0] + ox).long()] += w
    return out.reshape(len(shift), -1)


def _crops(
    features: torch.Tensor, index: torch.Tensor, corners: torch.Tensor, side: int
) -> torch.Tensor:
    """Squares (K, D, side, side) of ``features`` (B, D, P, P): patch ``index[k]`` from top-left
    ``corners[k]`` (x, y), gathered in one indexing (its gradient is one scatter)."""
    steps = torch.arange(side, device=features.device)
    rows = (corners[:, 1, None] + steps)[:, :, None]
    cols = (corners[:, 0, None] + steps)[:, None, :]
    return features.permute(0, 2, 3, 1)[index[:, None, None], rows, cols].permute(0, 3, 1, 2)


def ncc_surfaces(
    optical: torch.Tensor,
    sar: torch.Tensor,
    index: torch.Tensor,
    corners: torch.Tensor,
    template: int,
    radius: int,
) -> torch.Tensor:
    """Zero-mean NCC ``(K, (2r+1)²)`` of each optical template over its SAR search window.

    Channel means are removed separately and the sums run over all channels, as
    in :func:`models.areamatch.ncc_surface`. The cross-correlation is computed by
    FFT, as are the window sums the energies need, so the gradient is cheap.

    Args:
        optical: Dense optical descriptors (B, D, P, P) of the patches.
        sar: Dense SAR descriptors (B, D, P, P) of the same patches.
        index: (K,) the patch of each template.
        corners: (K, 2) template top-left corners (x, y), integers.
        template: The template side.
        radius: The search radius.
    """
    k = len(index)
    big = template + 2 * radius
    corners = corners.long().to(optical.device)
    t = _crops(optical, index, corners, template)
    t = t - t.mean(dim=(2, 3), keepdim=True)
    w = _crops(sar, index, corners - radius, big)
    side, n = 2 * radius + 1, float(template * template)

    def correlate(spectrum: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(spectrum, s=(big, big))[..., :side, :side]

    f_win = torch.fft.rfft2(w)
    cross = correlate((f_win * torch.fft.rfft2(t, s=(big, big)).conj()).sum(1))
    box = torch.fft.rfft2(torch.ones(template, template, device=w.device), s=(big, big)).conj()
    sums = correlate(f_win * box)
    energy = (correlate(torch.fft.rfft2(w * w) * box) - sums * sums / n).sum(1)
    t_norm = t.pow(2).sum(dim=(1, 2, 3)).sqrt()
    ncc = cross / (t_norm[:, None, None] * energy.clamp_min(1e-8).sqrt() + 1e-6)
    return ncc.reshape(k, -1)


def template_loss(
    optical: torch.Tensor,
    sar: torch.Tensor,
    patches: Sequence[Patch],
    template: int,
    radius: int,
    per_side: int,
    temperature: float,
) -> torch.Tensor:
    """Cross-entropy of the NCC surfaces (over ``temperature``) against the true shifts.

    Args:
        optical: Dense optical descriptors (B, D, P, P) of the batch.
        sar: Dense SAR descriptors (B, D, P, P).
        patches: The batch (their warps give the true shifts).
        template: The template side.
        radius: The search radius.
        per_side: Templates along each axis of a patch.
        temperature: NCC units per logit unit.
    """
    size = optical.shape[-1]
    corners = template_corners(size, template, radius, per_side)
    shifts = np.stack([true_shift(p.warp, c, template) for p in patches for c in corners])
    idx = torch.arange(len(patches), device=optical.device).repeat_interleave(len(corners))
    all_corners = torch.from_numpy(np.tile(corners, (len(patches), 1)))
    ncc = ncc_surfaces(optical, sar, idx, all_corners, template, radius)
    target = soft_target(torch.from_numpy(shifts).to(optical.device), radius)
    return F.cross_entropy(ncc / temperature, target)


__all__ = ["ncc_surfaces", "soft_target", "template_corners", "template_loss", "true_shift"]
