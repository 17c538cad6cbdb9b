"""Typed pieces of the benchmark reports, each turned into its JSON form by ``to_json``."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.pairs import Skipped

# a run is the worker's result (bench.worker) plus wall time, peak RSS, case and method
Run = dict[str, Any]
References = dict[str, dict[str, dict[str, float]]]


@dataclass(frozen=True)
class Machine:
    """Where the benchmark ran."""

    cpus: int | None
    platform: str
    python: str

    @classmethod
    def here(cls) -> Machine:
        return cls(os.cpu_count(), platform.platform(), platform.python_version())


def now_stamp() -> str:
    """The local time as the reports give it (ISO 8601 with UTC offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class CaseRecipe:
    """A warped case's grids and field as reported (metres)."""

    sar_pixel_m: float
    rotation_deg: float
    offset_m: list[float]
    linear: list[float]
    nonrigid_m: float
    wavelength_m: float


@dataclass(frozen=True)
class CaseRecord:
    """One case as reported: grids, tiepoints, reference scores and structural agreement."""

    name: str
    kind: str
    warped: bool
    folder: str
    source: str | None
    note: str
    n_tiepoints: dict[str, int]
    optical_size: list[int]
    optical_pixel_m: float
    sar_size: list[int]
    sar_valid_fraction: float | None
    references: References
    agreement: dict[str, dict[str, float]]
    recipe: CaseRecipe | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.recipe is None:
            del out["recipe"]
        return out


@dataclass(frozen=True)
class KindSummary:
    """A method's errors over the warped cases of one kind (or ``overall``), ``field`` tiepoints."""

    cases: int
    failed: int
    mean_px: float
    median_of_case_means_px: float
    zero_px: float
    oracle_affine_px: float
    rounding_floor_px: float
    ratio_to_oracle: float
    ratio_to_zero: float
    worse_than_zero: list[str]
    # worse than zero against a reference that lines the images up less well than the run's field
    worse_than_zero_weaker_reference: list[str]
    wall_s: float
    peak_rss_mb_max: float
    # the same means without SN9's rounding of the reference (what the gates compare)
    mean_unrounded_px: float = float("nan")
    oracle_affine_unrounded_px: float = float("nan")


@dataclass(frozen=True)
class RealScore:
    """A method's error on a case's real CFOG tiepoints, beside the references'."""

    mean_px: float
    zero_px: float
    oracle_affine_px: float


@dataclass(frozen=True)
class MethodSummary:
    """One method over all cases: per kind, on the real CFOG tiepoints, mean stage runtimes."""

    kinds: dict[str, KindSummary]
    real_cfog: dict[str, RealScore]
    mean_runtime_s: dict[str, float]


@dataclass(frozen=True)
class Target:
    """One accuracy, time or memory target of one method, and whether it is met.

    ``floor``: what the exact field itself scores; ``cases`` and ``weaker_reference``: the
    cases behind a count. Each is left out of the JSON when None. ``gated``: whether the
    target can fail the bench; an ungated one is reported beside the gates.
    """

    method: str
    target: str
    value: float
    limit: float
    passed: bool
    floor: float | None = None
    cases: list[str] | None = None
    weaker_reference: list[str] | None = None
    gated: bool = True  # False: reported without PASS/FAIL, never fails a run

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class BenchReport:
    """The ``coalign bench`` report."""

    seed: int
    data: str
    methods: list[str]
    settings: dict[str, dict[str, str]]
    skipped: list[Skipped]
    cases: list[CaseRecord]
    runs: list[Run]
    summary: dict[str, MethodSummary]
    targets: list[Target]
    created: str = field(default_factory=now_stamp)
    machine: Machine = field(default_factory=Machine.here)

    def to_json(self) -> dict[str, Any]:
        return {
            "coalign_bench": 1,
            "created": self.created,
            "seed": self.seed,
            "data": self.data,
            "machine": asdict(self.machine),
            "methods": self.methods,
            "settings": self.settings,
            "skipped": [asdict(s) for s in self.skipped],
            "cases": [c.to_json() for c in self.cases],
            "runs": self.runs,
            "summary": {m: asdict(s) for m, s in self.summary.items()},
            "targets": [t.to_json() for t in self.targets],
        }


@dataclass(frozen=True)
class ScaleCaseRecord:
    """One scale case as reported."""

    name: str
    side: int
    folder: str
    n_tiepoints: dict[str, int]
    sar_size: list[int]
    references: References


@dataclass(frozen=True)
class Growth:
    """Least-squares exponents b of time ∝ area^b over the scene sizes a method ran."""

    wall: float
    pipeline: float
    sides: list[int]


@dataclass(frozen=True)
class ScaleReport:
    """The ``coalign bench --scale`` report; ``recipe``: the shared grids and field (metres)."""

    seed: int
    recipe: dict[str, Any]
    methods: list[str]
    settings: dict[str, dict[str, str]]
    cases: list[ScaleCaseRecord]
    runs: list[Run]
    growth_exponent: dict[str, Growth]
    targets: list[Target]
    targets_note: str
    created: str = field(default_factory=now_stamp)
    machine: Machine = field(default_factory=Machine.here)

    def to_json(self) -> dict[str, Any]:
        return {
            "coalign_bench_scale": 1,
            "created": self.created,
            "seed": self.seed,
            "machine": asdict(self.machine),
            "recipe": self.recipe,
            "methods": self.methods,
            "settings": self.settings,
            "cases": [asdict(c) for c in self.cases],
            "runs": self.runs,
            "growth_exponent": {m: asdict(g) for m, g in self.growth_exponent.items()},
            "targets": [t.to_json() for t in self.targets],
            "targets_note": self.targets_note,
        }


__all__ = [
    "BenchReport",
    "CaseRecipe",
    "CaseRecord",
    "Growth",
    "KindSummary",
    "Machine",
    "MethodSummary",
    "RealScore",
    "Run",
    "ScaleCaseRecord",
    "ScaleReport",
    "Target",
]
