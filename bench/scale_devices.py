"""The runs ``bench --scale`` makes per size: each method once; with ``--device cuda`` and a GPU,
``local`` on the CPU and on the GPU (row ``local@cuda``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.run import BenchConfig, Log

# methods whose dense kernels have a GPU path (models.gpu)
GPU_KERNEL_METHODS = ("local",)


@dataclass(frozen=True)
class ScaleRun:
    """One row per size: its label, the method that runs and the configuration it runs with."""

    label: str  # the row's method name: "local", "local@cuda"
    method: str
    conf: BenchConfig


def cuda_visible() -> bool:
    """Whether torch sees a CUDA GPU in this process."""
    import torch

    return torch.cuda.is_available()


def scale_runs(
    conf: BenchConfig, methods: list[str], log: Log, cuda: bool | None = None
) -> list[ScaleRun]:
    """The runs per size for ``methods``.

    With ``conf.device == "cuda"`` and a GPU, each method of :data:`GPU_KERNEL_METHODS`
    runs twice, on the CPU (its usual row) and on the GPU (``<method>@cuda``, in its own
    run folders under ``<work>/cuda``); the others run on the GPU once. Without a GPU,
    one line says so and every method runs on the CPU.

    Args:
        conf: The benchmark's configuration (``device`` as given on the command line).
        methods: The methods to run.
        log: Where the line about a missing GPU goes.
        cuda: Whether a GPU is visible (None: ask torch).
    """
    if conf.device != "cuda":
        return [ScaleRun(m, m, conf) for m in methods]
    cpu = replace(conf, device="cpu")
    if not (cuda_visible() if cuda is None else cuda):
        log("--device cuda: no CUDA GPU is visible here, so only the CPU rows run")
        return [ScaleRun(m, m, cpu) for m in methods]
    gpu = replace(conf, work=conf.work / "cuda")
    runs = []
    for m in methods:
        if m in GPU_KERNEL_METHODS:
            runs += [ScaleRun(m, m, cpu), ScaleRun(f"{m}@cuda", m, gpu)]
        else:
            runs.append(ScaleRun(m, m, conf))
    return runs
