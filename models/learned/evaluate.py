"""Validation of dense descriptors: template matching on held-out crops with known shifts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.areamatch import cfog, match_templates
from models.learned.features import describe
from models.learned.net import DescriptorNet, Modality
from models.learned.patches import pick_window

# a describer: one prepared band and its modality → (C, H, W) descriptors
Describer = Callable[[np.ndarray, Modality], np.ndarray]
THRESHOLDS_PX: tuple[int, ...] = (1, 3, 5)


@dataclass(frozen=True)
class ValCrop:
    """An optical crop and the SAR of the same ground shifted by ``shift`` (SAR − optical, px)."""

    name: str  # the pair it comes from
    optical: np.ndarray  # (S, S) prepared optical
    sar: np.ndarray  # (S, S) prepared SAR, shifted
    shift: np.ndarray  # (2,) x, y
    centres: np.ndarray  # (N, 2) template centres (x, y pixels)


def template_centres(size: int, template: int, radius: int) -> np.ndarray:
    """Centres of templates every ``template / 2`` px that stay inside a ``size`` crop with their
    search radius.

    Args:
        size: The crop side (smaller for pairs that lack room).
        template: The template side.
        radius: The search radius.
    """
    lo = template // 2 + radius
    ticks = np.arange(lo, size - lo + 1, max(1, template // 2), dtype=float)
    cx, cy = np.meshgrid(ticks, ticks)
    return np.column_stack([cx.ravel(), cy.ravel()])


def validation_crops(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    crops_per_pair: int,
    size: int,
    template: int,
    radius: int,
    seed: int,
) -> list[ValCrop]:
    """Crops of held-out aligned pairs, each SAR shifted by a random sub-pixel translation.

    Shifts are uniform within ``±(radius - 2)`` px per axis, so the true peak lies
    inside the search window.

    Args:
        pairs: (name, optical, SAR on the optical lattice) of each validation pair.
        crops_per_pair: Crops drawn from each pair (fewer where the pair lacks data).
        size: The crop side (smaller for pairs that lack room).
        template: The template side.
        radius: The search radius.
        seed: Seeds the crops and shifts.
    """
    rng = np.random.default_rng([seed, 7])
    pad = radius + 2
    out: list[ValCrop] = []
    for name, optical, sar in pairs:
        # pairs smaller than the crop give smaller crops, while they hold a few templates
        side = min(size, min(optical.shape) - 2 * pad)
        if side < template + 2 * radius + template // 2:
            continue
        centres = template_centres(side, template, radius)
        for _ in range(crops_per_pair):
            corner = pick_window(optical, sar, side + 2 * pad, rng)
            if corner is None:
                break
            out.append(_shifted_crop(name, optical, sar, corner, side, pad, centres, rng))
    return out


def _shifted_crop(
    name: str,
    optical: np.ndarray,
    sar: np.ndarray,
    corner: tuple[int, int],
    side: int,
    pad: int,
    centres: np.ndarray,
    rng: np.random.Generator,
) -> ValCrop:
    """The crop at ``corner + pad``, its SAR shifted by a random translation within the radius."""
    radius = pad - 2
    x0, y0 = corner[0] + pad, corner[1] + pad
    shift = rng.uniform(-(radius - 2), radius - 2, 2)
    # SAR view v(p) = sar(p - shift): the optical ground at p shows at p + shift
    mx = np.arange(side, dtype=np.float32)[None, :] + np.float32(x0 - shift[0])
    my = np.arange(side, dtype=np.float32)[:, None] + np.float32(y0 - shift[1])
    mx, my = np.broadcast_to(mx, (side, side)), np.broadcast_to(my, (side, side))
    view = cv2.remap(sar, mx, my, cv2.INTER_LINEAR, borderValue=float("nan"))
    opt = np.ascontiguousarray(optical[y0 : y0 + side, x0 : x0 + side])
    return ValCrop(name, opt, view, shift, centres)


def accuracy(
    crops: Sequence[ValCrop], describer: Describer, template: int, radius: int
) -> dict[str, float]:
    """Shares of templates matched within 1, 3 and 5 px of the true shift (templates the matcher
    skips count as misses), and the share matched at all.

    Args:
        crops: The validation crops.
        describer: Gives each crop's descriptors.
        template: The template side.
        radius: The search radius.
    """
    laid = 0
    hits = dict.fromkeys(THRESHOLDS_PX, 0)
    matched = 0
    for crop in crops:
        m = match_templates(
            describer(crop.optical, "optical"),
            describer(crop.sar, "sar"),
            crop.centres,
            template,
            radius,
        )
        laid += len(crop.centres)
        matched += len(m)
        err = np.linalg.norm(m.shifts - crop.shift[None, :], axis=1)
        for t in THRESHOLDS_PX:
            hits[t] += int((err <= t).sum())
    out = {f"val_acc_{t}px": hits[t] / laid if laid else 0.0 for t in THRESHOLDS_PX}
    out["val_matched"] = matched / laid if laid else 0.0
    return out


def cfog_describer(sigma: float = 0.8) -> Describer:
    """CFOG as a describer (the reference).

    Args:
        sigma: CFOG's spatial smoothing (pixels).
    """
    return lambda image, modality: cfog(image, sigma=sigma)


def net_describer(net: DescriptorNet, device: str | None = None) -> Describer:
    """A descriptor network as a describer.

    Args:
        net: The network.
        device: Where to run it (None: CUDA when available).
    """
    return lambda image, modality: describe(image, modality, net, device)
