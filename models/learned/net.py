"""The learned cross-modal descriptor network: modality stems and a shared dilated trunk."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

Modality = Literal["optical", "sar"]
MODALITIES: tuple[Modality, ...] = ("optical", "sar")

default_conf: dict[str, Any] = {
    "stride": 2,  # the head works at 1/stride resolution; descriptors are upsampled to full
    "patch_kernel": 4,  # side of each stem's strided first convolution (>= stride)
    "stem_width": 16,  # channels of the modality stems (at 1/stride)
    "width": 24,  # channels of the shared trunk (at 1/(2 stride))
    "dilations": [1, 2, 4],  # one residual 3x3 trunk convolution per entry, with this dilation
    "descriptor_dim": 16,  # output channels (per-pixel L2-normalised)
}


def merged_conf(conf: dict[str, Any] | None) -> dict[str, Any]:
    """``default_conf`` updated by ``conf`` (unknown keys are an error).

    Args:
        conf: Keys to override, or None for the defaults.
    """
    out = {**default_conf, **(conf or {})}
    unknown = set(out) - set(default_conf)
    if unknown:
        raise ValueError(f"unknown descriptor settings: {', '.join(sorted(unknown))}")
    out["dilations"] = [int(d) for d in out["dilations"]]
    if out["patch_kernel"] < out["stride"] or (out["patch_kernel"] - out["stride"]) % 2:
        raise ValueError("patch_kernel must be >= stride and differ from it by an even number")
    return out


def oriented_gradients(channels: int, size: int) -> torch.Tensor:
    """``channels`` (size × size) filters: derivatives of a Gaussian along evenly spread
    orientations over 0–360° (pairs of opposite signs, which a ReLU turns into CFOG-like
    rectified orientation responses), unit L2 norm, shaped (channels, 1, size, size).

    Args:
        channels: The number of filters.
        size: The filter side.
    """
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    g = torch.exp(-(xx**2 + yy**2) / (2 * (size / 4) ** 2))
    out = torch.empty(channels, 1, size, size)
    for i in range(channels):
        a = 2 * math.pi * i / channels
        f = (math.cos(a) * xx + math.sin(a) * yy) * g
        out[i, 0] = f / f.norm().clamp_min(1e-6)
    return out


class _Stem(nn.Module):
    """One modality's stem: a strided convolution to ``1/stride`` resolution, then a 3x3 one.

    The strided convolution is padded so output pixel ``j`` is centred on input
    coordinate ``stride * (j + 0.5)`` (pixel-centre convention), which is where
    bilinear upsampling by ``stride`` puts it.
    """

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__()
        k, s, c = conf["patch_kernel"], conf["stride"], conf["stem_width"]
        self.down = nn.Conv2d(1, c, k, stride=s, padding=(k - s) // 2)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        with torch.no_grad():
            self.down.weight.copy_(oriented_gradients(c, k))
            self.down.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(F.relu(self.down(x))))


class DescriptorNet(nn.Module):
    """Dense descriptors of one-band images, at ``1/stride`` resolution (see :meth:`forward`).

    Each modality has its own stem (optical, SAR) at ``1/stride``; a shared trunk
    halves the resolution again (a 4x4 stride-2 convolution, centred like the
    stem's) and gives context with residual dilated 3x3 convolutions; a 1x1 head
    over its output upsampled bilinearly by 2 and the stem's features gives
    ``descriptor_dim`` channels. Full-resolution descriptors are the head's
    output upsampled bilinearly by ``stride`` and L2-normalised per pixel
    (:meth:`dense`, and :func:`models.learned.features.describe` for NumPy images).

    Args:
        conf: Settings overriding :data:`default_conf` (kept in ``self.conf``).
    """

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merged_conf(conf)
        c = self.conf
        self.stems = nn.ModuleDict({m: _Stem(c) for m in MODALITIES})
        self.down = nn.Conv2d(c["stem_width"], c["width"], 4, stride=2, padding=1)
        self.trunk = nn.ModuleList(
            nn.Conv2d(c["width"], c["width"], 3, padding=d, dilation=d) for d in c["dilations"]
        )
        # the 1x1 head over [upsampled trunk, stem], split in two: a 1x1 convolution commutes
        # with bilinear upsampling, so the trunk's part runs before it, at the coarse resolution
        self.head_coarse = nn.Conv2d(c["width"], c["descriptor_dim"], 1)
        self.head_fine = nn.Conv2d(c["stem_width"], c["descriptor_dim"], 1, bias=False)

    @property
    def stride(self) -> int:
        """The factor between the input and the network's output resolution."""
        return int(self.conf["stride"])

    def forward(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Raw descriptors ``(B, D, H / stride, W / stride)`` of standardised images.

        Args:
            x: Images (B, 1, H, W) of one modality, standardised
                (:func:`models.learned.features.standardise`), H and W multiples of
                ``2 stride``.
            modality: Which stem to use: ``"optical"`` or ``"sar"``.
        """
        if modality not in self.stems:
            raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
        fine = self.stems[modality](x)
        y = F.relu(self.down(fine))
        for conv in self.trunk:
            y = y + F.relu(conv(y))
        coarse = F.interpolate(
            self.head_coarse(y), size=fine.shape[-2:], mode="bilinear", align_corners=False
        )
        return coarse + self.head_fine(fine)

    def dense(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Full-resolution descriptors ``(B, D, H, W)``, per-pixel L2-normalised.

        Args:
            x: Images (B, 1, H, W), standardised, H and W multiples of ``2 stride``.
            modality: ``"optical"`` or ``"sar"``.
        """
        return self.full_resolution(self(x, modality))

    def full_resolution(self, low: torch.Tensor) -> torch.Tensor:
        """The output ``low`` of :meth:`forward` upsampled bilinearly by ``stride`` and
        L2-normalised per pixel.

        Args:
            low: Raw descriptors (B, D, h, w).
        """
        y = F.interpolate(low, scale_factor=self.stride, mode="bilinear", align_corners=False)
        return F.normalize(y, dim=1, eps=1e-6)
