"""The learned cross-modal descriptor network: modality stems and a shared dilated trunk."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

Modality = Literal["optical", "sar"]
MODALITIES: tuple[Modality, ...] = ("optical", "sar")

default_conf: dict[str, Any] = {
    "stride": 4,  # the network works at 1/stride resolution; descriptors are upsampled to full
    "patch_kernel": 8,  # side of the strided first convolution of each stem (>= stride)
    "stem_width": 24,  # channels of each modality stem
    "width": 24,  # channels of the shared trunk
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


class _Stem(nn.Module):
    """One modality's stem: a strided convolution to ``1/stride`` resolution, then a 3x3 one.

    The strided convolution is padded so output pixel ``j`` is centred on input
    coordinate ``stride * (j + 0.5)`` (pixel-centre convention), which is where
    bilinear upsampling by ``stride`` puts it.
    """

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__()
        k, s = conf["patch_kernel"], conf["stride"]
        self.down = nn.Conv2d(1, conf["stem_width"], k, stride=s, padding=(k - s) // 2)
        self.conv = nn.Conv2d(conf["stem_width"], conf["width"], 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(F.relu(self.down(x))))


class DescriptorNet(nn.Module):
    """Dense descriptors of one-band images, at ``1/stride`` resolution (see :meth:`forward`).

    Each modality has its own stem (optical, SAR); a shared trunk of residual
    dilated 3x3 convolutions gives context; a 1x1 head gives ``descriptor_dim``
    channels. Full-resolution descriptors are the head's output upsampled
    bilinearly by ``stride`` and L2-normalised per pixel (:meth:`dense`, and
    :func:`models.learned.features.describe` for NumPy images).

    Args:
        conf: Settings overriding :data:`default_conf` (kept in ``self.conf``).
    """

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merged_conf(conf)
        c = self.conf
        self.stems = nn.ModuleDict({m: _Stem(c) for m in MODALITIES})
        self.trunk = nn.ModuleList(
            nn.Conv2d(c["width"], c["width"], 3, padding=d, dilation=d) for d in c["dilations"]
        )
        self.head = nn.Conv2d(c["width"], c["descriptor_dim"], 1)

    @property
    def stride(self) -> int:
        """The factor between the input and the network's output resolution."""
        return int(self.conf["stride"])

    def forward(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Raw descriptors ``(B, D, H / stride, W / stride)`` of standardised images.

        Args:
            x: Images (B, 1, H, W) of one modality, standardised
                (:func:`models.learned.features.standardise`), H and W multiples of ``stride``.
            modality: Which stem to use: ``"optical"`` or ``"sar"``.
        """
        if modality not in self.stems:
            raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
        y = self.stems[modality](x)
        for conv in self.trunk:
            y = y + F.relu(conv(y))
        return self.head(y)

    def dense(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Full-resolution descriptors ``(B, D, H, W)``, per-pixel L2-normalised.

        Args:
            x: Images (B, 1, H, W), standardised, H and W multiples of ``stride``.
            modality: ``"optical"`` or ``"sar"``.
        """
        y = F.interpolate(
            self(x, modality), scale_factor=self.stride, mode="bilinear", align_corners=False
        )
        return F.normalize(y, dim=1, eps=1e-6)
