"""``bench --scale --device cuda``: local on the CPU and on the GPU, or the CPU rows only."""

from __future__ import annotations

from pathlib import Path

from bench.run import BenchConfig
from bench.scale_devices import scale_runs


def _conf(tmp_path: Path, device: str) -> BenchConfig:
    return BenchConfig(data=tmp_path, work=tmp_path / "work", device=device)


def test_cuda_without_a_gpu_runs_the_cpu_rows_and_says_so(tmp_path: Path) -> None:
    lines: list[str] = []
    runs = scale_runs(_conf(tmp_path, "cuda"), ["local", "global"], lines.append, cuda=False)
    assert [(r.label, r.method, r.conf.device) for r in runs] == [
        ("local", "local", "cpu"),
        ("global", "global", "cpu"),
    ]
    assert len(lines) == 1 and "no CUDA GPU" in lines[0]


def test_cuda_with_a_gpu_adds_local_at_cuda_rows(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "cuda")
    lines: list[str] = []
    runs = scale_runs(conf, ["local", "global"], lines.append, cuda=True)
    assert [(r.label, r.method, r.conf.device) for r in runs] == [
        ("local", "local", "cpu"),
        ("local@cuda", "local", "cuda"),
        ("global", "global", "cuda"),
    ]
    # the GPU rows write their runs apart from the CPU rows of the same method
    assert runs[1].conf.work != runs[0].conf.work and not lines


def test_cpu_runs_each_method_once(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "cpu")
    runs = scale_runs(conf, ["local"], print)
    assert [(r.label, r.conf) for r in runs] == [("local", conf)]
