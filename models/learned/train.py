"""Training of the learned descriptor: contrastive InfoNCE on corresponding locations of warped
optical/SAR patches, validated by template matching on held-out pairs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InputError
from models.learned.data import TrainingPair, aligned_sar, manifest, split_pairs
from models.learned.evaluate import (
    ValCrop,
    accuracy,
    cfog_describer,
    net_describer,
    validation_crops,
)
from models.learned.features import pick_device
from models.learned.net import DescriptorNet
from models.learned.patches import Patch, WarpSpec, make_patch, pad_to, reduced
from models.learned.template_loss import template_loss

# progress(step, total, metrics): called after every step; metrics has the running loss, and the
# validation accuracies at evaluation steps
Progress = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """How a descriptor is trained (the defaults take a few minutes on two CPU cores, plus
    validation, which grows with the held-out pairs)."""

    patch: int = 128  # patch side (pixels, a multiple of twice the net's stride)
    batch: int = 8  # patches per step
    queries: int = 128  # corresponding locations per patch
    steps: int = 600  # optimiser steps
    lr: float = 2e-3  # AdamW learning rate (cosine decay to a tenth)
    weight_decay: float = 1e-4  # AdamW weight decay
    warp_px: float = 8.0  # random warps: translation, uniform within ± this (pixels)
    bump_px: float = 2.0  # random warps: amplitude of the smooth non-rigid bumps (pixels)
    temperature: float = 0.07  # InfoNCE temperature
    ring_px: tuple[float, ...] = (4.0, 8.0)  # radii of the 8 hard negatives around each match
    template_weight: float = 1.0  # weight of the template-matching loss beside InfoNCE (0: off)
    template_radius: int = 12  # its search radius (pixels; beyond warp_px + bump_px)
    template_temperature: float = 0.02  # its NCC units per logit unit
    templates_per_side: int = 2  # its templates along each side of a patch
    scales: tuple[int, ...] = (1, 2, 4)  # pairs are also seen reduced by these factors
    seed: int = 0  # seeds the split, the initial weights, patches and validation crops
    val_share: float = 0.2  # share of pairs (per source, whole pairs) held out for validation
    val_crops: int = 6  # validation crops per held-out pair
    val_size: int = 192  # validation crop side (pixels)
    template: int = 32  # validation template side (pixels)
    radius: int = 8  # validation search radius (pixels)
    cfog_sigma: float = 0.8  # CFOG smoothing of the reference accuracy
    eval_every: int = 250  # steps between validations (and after the last step)
    device: str | None = None  # torch device; None: CUDA when available, else CPU
    net: dict[str, Any] = field(default_factory=dict)  # DescriptorNet settings over its defaults


@dataclass(frozen=True)
class TrainResult:
    """A trained network with its learning curve, what it learned from and the split."""

    net: DescriptorNet
    history: list[dict[str, float]]  # one entry per validation (step 0: the untrained net)
    manifest: dict[str, Any]  # sources, pairs (shape, sha256), counts, split
    split: dict[str, list[str]]  # {"train": pair names, "val": pair names}


def sample_batch(
    images: Sequence[tuple[np.ndarray, np.ndarray, float]],
    conf: TrainConfig,
    rng: np.random.Generator,
) -> list[Patch]:
    """``conf.batch`` patches from randomly chosen aligned pairs.

    Args:
        images: (optical, SAR on the optical lattice, least valid share of a patch) of each
            training pair (:func:`models.learned.patches.pad_to`).
        conf: The training settings.
        rng: The random generator.
    """
    warp = WarpSpec(conf.warp_px, conf.bump_px)
    out: list[Patch] = []
    failures = 0
    while len(out) < conf.batch:
        optical, sar, min_valid = images[int(rng.integers(len(images)))]
        patch = make_patch(optical, sar, conf.patch, conf.queries, warp, rng, min_valid)
        if patch is None:
            failures += 1
            if failures > 50 * conf.batch:
                raise InputError(
                    f"training pairs give no {conf.patch}-pixel patches with data in both images; "
                    "use larger pairs or a smaller patch"
                )
            continue
        out.append(patch)
    return out


def _sample(features: torch.Tensor, xy: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples (B, N, D) of low-resolution features at (B, N, 2) pixel-index positions of
    the ``size`` input (the same values as upsampling the features), L2-normalised."""
    grid = (xy + 0.5) * (2.0 / size) - 1.0
    out = F.grid_sample(
        features, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False
    )
    return F.normalize(out[:, :, 0].transpose(1, 2), dim=-1, eps=1e-6)


def ring_offsets(radii: Sequence[float]) -> torch.Tensor:
    """(R, 2) offsets: 8 directions at each radius.

    Args:
        radii: The radii (pixels).
    """
    ang = torch.arange(8, dtype=torch.float32) * (math.pi / 4)
    return torch.cat([torch.stack([r * ang.cos(), r * ang.sin()], 1) for r in radii])


def infonce_loss(
    f_opt: torch.Tensor,
    f_sar: torch.Tensor,
    sar_xy: torch.Tensor,
    opt_xy: torch.Tensor,
    conf: TrainConfig,
) -> torch.Tensor:
    """Symmetric InfoNCE between SAR and optical descriptors at corresponding locations.

    Negatives are the other locations of the batch (other patches and the same
    patch; locations within 3 px of each other in one patch are left out) and,
    for SAR queries, 8 optical locations on each ring of ``conf.ring_px`` around
    the true match.

    Args:
        f_opt: The net's optical output (B, D, P / stride, P / stride).
        f_sar: The net's SAR output, same shape.
        sar_xy: (B, K, 2) query locations in the SAR patches.
        opt_xy: (B, K, 2) where each query's ground is in the optical patches.
        conf: The training settings.
    """
    size, dev = conf.patch, f_opt.device
    d_sar, d_opt = _sample(f_sar, sar_xy, size), _sample(f_opt, opt_xy, size)
    b, k, dim = d_sar.shape
    ring = ring_offsets(conf.ring_px).to(dev)
    ring_xy = (opt_xy[:, :, None] + ring[None, None]).clamp(0, size - 1).reshape(b, -1, 2)
    d_ring = _sample(f_opt, ring_xy, size).reshape(b, k, len(ring), dim)
    s, o = d_sar.reshape(b * k, dim), d_opt.reshape(b * k, dim)
    logits = s @ o.T / conf.temperature
    # near-duplicate locations of one patch are no negatives
    near = torch.cdist(sar_xy, sar_xy) < 3.0
    near &= ~torch.eye(k, dtype=torch.bool, device=dev)[None]
    mask = torch.zeros(b * k, b * k, dtype=torch.bool, device=dev)
    for i in range(b):
        mask[i * k : (i + 1) * k, i * k : (i + 1) * k] = near[i]
    logits = logits.masked_fill(mask, float("-inf"))
    ring_logits = torch.einsum("bkd,bkrd->bkr", d_sar, d_ring).reshape(b * k, -1)
    target = torch.arange(b * k, device=dev)
    loss_sar = F.cross_entropy(torch.cat([logits, ring_logits / conf.temperature], 1), target)
    return 0.5 * (loss_sar + F.cross_entropy(logits.T, target))


def batch_loss(
    net: DescriptorNet, patches: Sequence[Patch], conf: TrainConfig, dev: torch.device
) -> torch.Tensor:
    """InfoNCE at corresponding locations plus ``conf.template_weight`` × the
    template-matching loss (:func:`models.learned.template_loss.template_loss`) on the
    full-resolution descriptors ``local`` matches.

    Args:
        net: The network (in training mode).
        patches: The batch.
        conf: The training settings.
        dev: Where to compute.
    """

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(p, name) for p in patches])).to(dev)

    optical, sar = (
        stack(n)[:, None].contiguous(memory_format=torch.channels_last) for n in ("optical", "sar")
    )
    f_opt, f_sar = net(optical, "optical"), net(sar, "sar")
    loss = infonce_loss(f_opt, f_sar, stack("sar_xy"), stack("optical_xy"), conf)
    if conf.template_weight > 0:
        matching = template_loss(
            net.full_resolution(f_opt),
            net.full_resolution(f_sar),
            patches,
            conf.template,
            conf.template_radius,
            conf.templates_per_side,
            conf.template_temperature,
        )
        loss = loss + conf.template_weight * matching
    return loss


def _initial_net(conf: TrainConfig, dev: torch.device) -> DescriptorNet:
    """The untrained network, its weights drawn from ``conf.seed`` without touching the global
    generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(conf.seed)
        net = DescriptorNet(conf.net)
    # channels-last convolutions are several times faster on CPUs
    net = net.to(memory_format=torch.channels_last)
    if conf.patch % (2 * net.stride):
        raise InputError(
            f"training patch {conf.patch} is not a multiple of twice the stride {net.stride}"
        )
    return net.to(dev)


def _validate(
    net: DescriptorNet, crops: Sequence[ValCrop], conf: TrainConfig, dev: torch.device
) -> dict[str, float]:
    """The net's validation accuracies (zeros without validation crops)."""
    if not crops:
        return {"val_acc_1px": 0.0, "val_acc_3px": 0.0, "val_acc_5px": 0.0, "val_matched": 0.0}
    return accuracy(crops, net_describer(net, str(dev)), conf.template, conf.radius)


def _split(
    pairs: Sequence[TrainingPair], conf: TrainConfig
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """Train and validation pairs, checked."""
    if not pairs:
        raise InputError("no training pairs: give at least one optical/SAR pair")
    train, val = split_pairs(pairs, conf.val_share, conf.seed)
    if not train:
        raise InputError("every pair is held out for validation; lower the validation share")
    return train, val


def train_descriptor(
    pairs: Sequence[TrainingPair],
    conf: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
) -> TrainResult:
    """Train a :class:`DescriptorNet` on ``pairs``; the same pairs and settings give the same
    weights.

    Whole pairs are held out for validation (:func:`split_pairs`). Every step
    draws patches of training pairs, warps their SAR by a random smooth field and
    minimises :func:`batch_loss`; every ``conf.eval_every`` steps (and at step 0
    and the last) template matching on held-out crops with known shifts measures
    the share of templates within 1/3/5 px, next to CFOG's on the same crops.

    Args:
        pairs: The training pairs (names unique).
        conf: The training settings.
        progress: Called as ``progress(step, total, metrics)`` after every step.
    """
    train, val = _split(pairs, conf)
    split = {"train": [p.name for p in train], "val": [p.name for p in val]}
    crops = validation_crops(
        [(p.name, p.optical, aligned_sar(p)) for p in val],
        conf.val_crops,
        conf.val_size,
        conf.template,
        conf.radius,
        conf.seed,
    )
    reference = _cfog_reference(crops, conf)
    dev = pick_device(conf.device)
    net = _initial_net(conf, dev)
    history = [{"step": 0, "loss": float("nan"), **_validate(net, crops, conf, dev), **reference}]
    images = [
        pad_to(*reduced(p.optical, aligned_sar(p), f), conf.patch)
        for p in train
        for f in conf.scales
        if f == 1 or min(p.optical.shape) >= f * conf.patch
    ]
    with torch.enable_grad():  # whatever the calling thread's grad mode is
        for entry in _optimise(net, images, crops, conf, dev, progress):
            history.append({**entry, **reference})
    net.eval()
    return TrainResult(net.cpu(), history, manifest(pairs, split), split)


def _cfog_reference(crops: Sequence[ValCrop], conf: TrainConfig) -> dict[str, float]:
    """CFOG's validation accuracies on the same crops, keys suffixed ``_cfog``."""
    if not crops:
        return {}
    acc = accuracy(crops, cfog_describer(conf.cfog_sigma), conf.template, conf.radius)
    return {f"{k}_cfog": v for k, v in acc.items()}


def _optimise(
    net: DescriptorNet,
    images: Sequence[tuple[np.ndarray, np.ndarray, float]],
    crops: Sequence[ValCrop],
    conf: TrainConfig,
    dev: torch.device,
    progress: Progress | None,
) -> Iterator[dict[str, float]]:
    """Run the optimiser for ``conf.steps`` steps, yielding each validation's metrics."""
    optimiser = torch.optim.AdamW(net.parameters(), lr=conf.lr, weight_decay=conf.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, conf.steps, conf.lr / 10)
    rng = np.random.default_rng([conf.seed, 1])
    running = float("nan")
    net.train()
    for step in range(1, conf.steps + 1):
        loss = batch_loss(net, sample_batch(images, conf, rng), conf, dev)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        value = float(loss.detach())
        running = value if math.isnan(running) else 0.9 * running + 0.1 * value
        metrics = {"loss": running}
        if step % conf.eval_every == 0 or step == conf.steps:
            metrics.update(_validate(net, crops, conf, dev))
            yield {"step": step, **metrics}
        if progress is not None:
            progress(step, conf.steps, metrics)
