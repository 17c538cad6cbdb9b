"""Dense learned descriptors of a one-band image, with the same contract as CFOG."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from models.learned.net import DescriptorNet, Modality

# standardised values are clipped to ±CLIP (bright SAR targets, saturated roofs)
CLIP = 5.0
# no-data is dilated by this square (pixels) before the descriptor is zeroed there
NODATA_DILATE = 5


def standardise(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust standardisation of a one-band image: ``(x - median) / (1.4826 MAD)``, clipped.

    No data (NaN) becomes 0 (the median). Returns the float32 image and the valid mask.

    Args:
        image: One band, float, NaN = no data.
    """
    valid = np.isfinite(image)
    out = np.zeros(image.shape, np.float32)
    if not valid.any():
        return out, valid
    # statistics from a lattice subsample: the median of a million pixels costs more than the net
    step = max(1, int(np.sqrt(image.size / 65536)))
    sample = image[::step, ::step]
    values = sample[np.isfinite(sample)].astype(np.float64)
    if values.size < 64:
        values = image[valid].astype(np.float64)
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    if mad < 1e-6:
        mad = max(float(values.std()), 1e-6)
    np.subtract(image, np.float32(med), out=out, where=valid)
    out *= np.float32(1.0 / mad)
    np.clip(out, -CLIP, CLIP, out=out)
    return out, valid


def pick_device(device: str | None) -> torch.device:
    """``device`` when given, else CUDA when available, else the CPU.

    Args:
        device: A torch device string, or None to choose.
    """
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def nodata_mask(valid: np.ndarray) -> np.ndarray:
    """Pixels whose descriptor is meaningless: no data dilated by :data:`NODATA_DILATE`.

    Args:
        valid: True where the image has data.
    """
    kernel = np.ones((NODATA_DILATE, NODATA_DILATE), np.uint8)
    return cv2.dilate((~valid).astype(np.uint8), kernel) > 0


def upsample_normalise(low: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``low`` (D, h, w) by ``factor`` (pixel-centre convention, as
    ``torch``'s ``align_corners=False``), cropped to ``shape``, L2-normalised per pixel.

    Args:
        low: Raw descriptors at ``1/factor`` resolution.
        factor: The integer upsampling factor.
        shape: The (H, W) to crop to (at most ``factor`` × the low-resolution shape).
    """
    d, h, w = low.shape
    out = np.empty((d, h * factor, w * factor), np.float32)
    for i in range(d):
        cv2.resize(low[i], (w * factor, h * factor), dst=out[i], interpolation=cv2.INTER_LINEAR)
    out = out[:, : shape[0], : shape[1]]
    sq = np.einsum("chw,chw->hw", out, out)
    out *= np.float32(1.0) / (np.sqrt(sq) + np.float32(1e-6))
    return np.ascontiguousarray(out)


def run_net(
    std: np.ndarray, modality: Modality, net: DescriptorNet, dev: torch.device
) -> np.ndarray:
    """Raw low-resolution descriptors (D, ⌈H / stride⌉, ⌈W / stride⌉) of a standardised image,
    padded with zeros (the median) to a multiple of twice the stride.

    Args:
        std: The standardised image (H, W).
        modality: ``"optical"`` or ``"sar"``.
        net: The network.
        dev: Where to run it.
    """
    s = 2 * net.stride
    h, w = std.shape
    hp, wp = -(-h // s) * s, -(-w // s) * s
    padded = np.zeros((hp, wp), np.float32)
    padded[:h, :w] = std
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            # channels-last convolutions are several times faster on CPUs
            x = torch.from_numpy(padded)[None, None].to(dev)
            x = x.contiguous(memory_format=torch.channels_last)
            net = net.to(device=dev, memory_format=torch.channels_last)
            low = net(x, modality)[0].float().cpu().numpy()
    finally:
        net.train(was_training)
    keep = (-(-h // net.stride), -(-w // net.stride))
    return np.ascontiguousarray(low[:, : keep[0], : keep[1]], np.float32)


def describe(
    image: np.ndarray,
    modality: Modality,
    net: DescriptorNet,
    device: str | None = None,
) -> np.ndarray:
    """Learned descriptor ``(D, H, W)`` float32 of a one-band image (NaN = no data → zeros).

    Same contract as :func:`models.areamatch.cfog`: channel first, per-pixel
    L2-normalised, zero where there is no data (dilated a little). The image is
    standardised inside (median and MAD); SAR comes log-scaled and prepared as
    the ``local`` method prepares it. Runs without gradients on ``device`` (CUDA
    when None and available, else CPU); the result does not depend on the call.

    Args:
        image: One band (H, W), float, NaN = no data.
        modality: ``"optical"`` or ``"sar"`` (chooses the network's stem).
        net: The descriptor network.
        device: A torch device, or None to choose.
    """
    if image.ndim != 2:
        raise ValueError(f"describe needs one band (H, W), got shape {image.shape}")
    std, valid = standardise(image)
    low = run_net(std, modality, net, pick_device(device))
    out = upsample_normalise(low, net.stride, image.shape)
    if not valid.all():
        out[:, nodata_mask(valid)] = 0.0
    return out
