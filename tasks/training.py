"""Prefect tasks of descriptor training: gather the pairs, train (with progress), log and register.

The pairs are arrays held in memory, so these tasks are not cached (``NO_CACHE``): hashing the
images for a cache key would cost more than it saves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.registration import ProgressArtifact

TRAIN_STAGE = "train"


@task(name="gather-training-pairs", cache_policy=NO_CACHE)
def gather_pairs(
    sources: list[str],
    data: str,
    work: str,
    synth_pairs: int = 6,
    seed: int = 0,
    pseudo_labels: str | None = None,
    min_confidence: float = 0.5,
    sn9: str | None = None,
) -> list[Any]:
    """The training pairs of ``sources`` (benchmark kinds, ``synth``), the verified
    registrations of a working directory (``pseudo_labels``) and the SN9 training sets with
    images (``sn9``); see :mod:`bench.training_sets`."""
    from bench.training_sets import (
        SYNTH,
        bench_training_pairs,
        pseudo_label_pairs,
        sn9_training_pairs,
        synth_training_pairs,
    )

    log = get_run_logger().info
    pairs = bench_training_pairs(Path(data), tuple(sources), Path(work), log)
    if SYNTH in sources:
        pairs += synth_training_pairs(synth_pairs, seed)
    if pseudo_labels:
        pairs += pseudo_label_pairs(Path(pseudo_labels), min_confidence, log)
    if sn9 and Path(sn9).is_dir():
        pairs += sn9_training_pairs(Path(sn9))
    return pairs


class TrainingProgress:
    """A ``train_descriptor`` progress callback feeding a Prefect progress artifact and, when
    given, a command-line bar (a models progress callback ``(stage, done, total)``)."""

    def __init__(self, bar: Any | None = None) -> None:
        self.artifact = ProgressArtifact("descriptor training")
        self.bar = bar
        self.metrics: dict[str, float] = {}

    def __call__(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.metrics = dict(metrics)
        self.artifact(TRAIN_STAGE, step, total)
        if self.bar is not None:
            self.bar(TRAIN_STAGE, step, total)


@task(name="train-descriptor", cache_policy=NO_CACHE)
def train(pairs: list[Any], conf: Any, bar: Any | None = None) -> Any:
    """``models.learned.train_descriptor`` on ``pairs``; the TrainResult. ``bar`` (a models
    progress callback) also shows the steps on the command line."""
    from models.learned import train_descriptor

    t0 = time.perf_counter()
    result = train_descriptor(pairs, conf, TrainingProgress(bar))
    final = result.history[-1] if result.history else {}
    get_run_logger().info(
        "trained %d steps in %.0f s on %d pairs: %s",
        conf.steps,
        time.perf_counter() - t0,
        len(result.split["train"]),
        ", ".join(f"{k} {v:.3f}" for k, v in final.items() if k != "step"),
    )
    return result


@task(name="register-descriptor", cache_policy=NO_CACHE)
def log_and_register(
    uri: str, result: Any, conf: Any, name: str, alias: str | None
) -> tuple[str, int]:
    """The MLflow training run and new registered version
    (:func:`tracking.descriptor.log_descriptor_training`): run id and version."""
    from tracking.descriptor import log_descriptor_training

    return log_descriptor_training(uri, result, conf, name, alias)
