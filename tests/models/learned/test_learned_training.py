"""A tiny training run on synthetic radar-like pairs learns a descriptor that matches."""

from __future__ import annotations

import numpy as np
import torch

from models.learned import TrainConfig, train_descriptor

CHANCE_3PX = np.pi * 3**2 / (2 * 8 + 1) ** 2  # a 3-px disc in the ±8 px search window


def test_tiny_training_learns(synth_pairs) -> None:
    conf = TrainConfig(
        patch=96,
        batch=6,
        queries=128,
        steps=120,
        lr=5e-3,
        eval_every=120,
        val_crops=4,
        val_size=128,
        seed=2,
    )
    seen: list[int] = []
    losses: list[float] = []

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        seen.append(step)
        losses.append(metrics["loss"])

    result = train_descriptor(synth_pairs, conf, progress)
    assert seen == list(range(1, 121))
    untrained, trained = result.history[0], result.history[-1]
    assert trained["step"] == 120 and trained["loss"] < 0.8 * losses[0]
    assert trained["val_acc_3px"] > 2 * CHANCE_3PX
    assert trained["val_acc_3px"] > untrained["val_acc_3px"] + 0.1
    assert trained["val_acc_5px"] > untrained["val_acc_5px"] + 0.1
    assert 0.0 < trained["val_acc_3px_cfog"] <= 1.0


def test_training_runs_where_the_caller_turned_gradients_off(synth_pairs) -> None:
    conf = TrainConfig(patch=64, batch=2, queries=16, steps=2, eval_every=2, val_crops=1, seed=1)
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)  # as an inference library may leave the thread
    try:
        result = train_descriptor(synth_pairs, conf)
    finally:
        torch.set_grad_enabled(previous)
    assert np.isfinite(result.history[-1]["loss"])
