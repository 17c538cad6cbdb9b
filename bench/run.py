"""``coalign bench``: run every case × method in its own worker process, timing it and its RSS."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.build import build_case
from bench.cases import Case, CaseSpec, plan_cases
from bench.pairs import KINDS, load_pairs
from bench.records import BenchReport, CaseRecipe, CaseRecord, Run
from bench.references import case_agreement, case_references
from bench.summary import check_targets, summarise
from bench.urban import URBAN_CASES
from core.errors import InputError

Log = Callable[[str], None]

# --quick: the first cases of each kind
QUICK_CASES = {"cfog": 2, "vsff": 1, "srif": 2, "bigearthnet": 2, "urban": 2}
# kinds that run only when --cases names them (the kind, a case name or a glob)
OPT_IN_KINDS = ("urban",)


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark. ``settings``: (method, key, value) overrides; ``cases``: names, kinds or
    globs."""

    data: Path
    work: Path = Path("bench-out")
    methods: tuple[str, ...] = ()
    settings: tuple[tuple[str, str, str], ...] = ()
    cases: tuple[str, ...] = ()
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    timeout_s: float = 3600.0
    rebuild: bool = False
    height: bool = False  # give each case's dsm.tif/dtm.tif (urban cases have them) to the methods


@dataclass(frozen=True)
class WorkerJob:
    """What :mod:`bench.worker` runs: one method on one case, scored on its tiepoint sets."""

    optical: str
    sar: str
    method: str
    settings: dict[str, str]
    device: str
    output: str  # the displacement map
    tiepoints: dict[str, str]  # tiepoint set name → CSV
    agreement: bool  # measure the field's structural agreement too
    dsm: str | None = None  # the case's height model, given to the method
    dtm: str | None = None
    geometry: dict[str, Any] | None = None  # the SAR geometry record given with the heights


def default_methods() -> list[str]:
    """zero, global-affine, and local when it is registered (read from the registry at run time)."""
    from models.methods import METHODS

    return [m for m in ("zero", "global-affine", "local") if m in METHODS]


def method_settings(
    methods: list[str], settings: tuple[tuple[str, str, str], ...]
) -> dict[str, dict[str, str]]:
    """Per-method overrides, checked against each method's config before any case runs."""
    from models.methods import get_method
    from models.methods.base import make_config

    out: dict[str, dict[str, str]] = {m: {} for m in methods}
    for method, key, value in settings:
        if method not in out:
            raise InputError(
                f"--set {method}:{key}={value}: method {method!r} is not benchmarked "
                f"(give --method {method})"
            )
        out[method][key] = value
    for m, s in out.items():
        make_config(get_method(m).Config, s, m)
    return out


def select_cases(specs: list[CaseSpec], filters: tuple[str, ...], quick: bool) -> list[CaseSpec]:
    """Cases matching any filter (a kind, a case name, or a glob such as ``srif-0*``); ``quick``
    keeps a few per kind. Without filters, every case but those of :data:`OPT_IN_KINDS`."""
    chosen = [s for s in specs if s.kind not in OPT_IN_KINDS]
    if filters:
        chosen = [
            s for s in specs if any(f == s.kind or fnmatch.fnmatch(s.name, f) for f in filters)
        ]
        if not chosen:
            names = ", ".join(s.name for s in specs[:8])
            raise InputError(
                f"--cases {','.join(filters)} matches no case; kinds: "
                f"{', '.join((*KINDS, *OPT_IN_KINDS))}; "
                f"names like {names}"
            )
    if quick:
        seen: dict[str, int] = {}
        kept = []
        for s in chosen:
            seen[s.kind] = seen.get(s.kind, 0) + 1
            if seen[s.kind] <= QUICK_CASES.get(s.kind, 1):
                kept.append(s)
        chosen = kept
    return chosen


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
    except psutil.Error:
        pass


def _watch(proc: subprocess.Popen[bytes], timeout_s: float, t0: float) -> tuple[int, bool]:
    """Sample the process tree's RSS until it exits or runs out of time: (peak bytes, timed out)."""
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        if time.perf_counter() - t0 > timeout_s:
            _kill_tree(proc.pid)
            proc.wait()
            return peak, True
        time.sleep(0.1)
    return peak, False


def run_in_subprocess(job: WorkerJob, run_dir: Path, timeout_s: float) -> Run:
    """Run :mod:`bench.worker` on ``job``; adds wall time and the sampled peak RSS of its
    process tree.

    Args:
        job: The registration to run.
        run_dir: Where the job, its result and the worker's log go.
        timeout_s: Wall time allowed before the process tree is killed.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (
        run_dir / "job.json",
        run_dir / "result.json",
        run_dir / "worker.log",
    )
    job_path.write_text(json.dumps(asdict(job), indent=1))
    result_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(job_path), str(result_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        peak, timed_out = _watch(proc, timeout_s, t0)
    wall = time.perf_counter() - t0
    if result_path.is_file():
        result = json.loads(result_path.read_text())
    else:
        tail = log_path.read_text()[-600:] if log_path.is_file() else ""
        reason = (
            f"timed out after {timeout_s:.0f} s"
            if timed_out
            else f"worker exited with {proc.returncode}"
        )
        result = {"ok": False, "error": f"{reason}; log tail: {tail.strip()}"}
    result["wall_s"] = round(wall, 3)
    result["peak_rss_tree_mb"] = round(peak / 2**20, 1)
    result["peak_rss_mb"] = round(
        max(peak / 2**20, result.get("maxrss_mb", 0.0), result.get("maxrss_children_mb", 0.0)), 1
    )
    result["log"] = str(log_path)
    return result


def run_case_method(
    case: Case,
    method: str,
    settings: dict[str, str],
    conf: BenchConfig,
    agreement: bool = True,
    geometry: dict[str, Any] | None = None,
) -> Run:
    """One method on one case in a worker process, under ``work/runs/<case>/<method>``; with
    ``conf.height`` the case's height model (and ``geometry``, a SAR geometry record, when
    given) goes to the method."""
    run_dir = conf.work / "runs" / case.name / method
    job = WorkerJob(
        optical=str(case.optical.resolve()),
        sar=str(case.sar.resolve()),
        method=method,
        settings=settings,
        device=conf.device,
        output=str((run_dir / "displacement.tif").resolve()),
        tiepoints={k: str(p.resolve()) for k, p in case.tiepoint_sets.items()},
        agreement=agreement,
        **(case_heights(case) if conf.height else {}),
        geometry=geometry if conf.height else None,
    )
    return run_in_subprocess(job, run_dir, conf.timeout_s)


def case_heights(case: Case) -> dict[str, str]:
    """The case's height model files (``dsm``, ``dtm``) that exist, as worker job fields.

    Args:
        case: A built case.
    """
    files = {name: case.folder / f"{name}.tif" for name in ("dsm", "dtm")}
    return {name: str(path.resolve()) for name, path in files.items() if path.is_file()}


def case_record(case: Case) -> CaseRecord:
    """A built case as reported, with its reference scores and structural agreement."""
    meta = case.meta
    recipe = None
    if case.warped and case.kind != "urban":
        r = meta["recipe"]
        recipe = CaseRecipe(
            sar_pixel_m=r["optical_m"] * r["sar_factor"],
            rotation_deg=r["rotation_deg"],
            offset_m=r["shift"]["offset"],
            linear=r["shift"]["linear"],
            nonrigid_m=r["shift"]["nonrigid_m"],
            wavelength_m=r["shift"]["wavelength_m"],
        )
    return CaseRecord(
        name=case.name,
        kind=case.kind,
        warped=case.warped,
        folder=str(case.folder),
        source=meta.get("source"),
        note=meta.get("note", ""),
        n_tiepoints=meta.get("n_tiepoints", {}),
        optical_size=[meta["optical_grid"]["width"], meta["optical_grid"]["height"]],
        optical_pixel_m=abs(meta["optical_grid"]["transform"][0]),
        sar_size=[meta["sar_grid"]["width"], meta["sar_grid"]["height"]],
        sar_valid_fraction=meta.get("sar_valid_fraction"),
        references=case_references(case),
        agreement=case_agreement(case),
        recipe=recipe,
    )


def _build_cases(
    specs: list[CaseSpec], conf: BenchConfig, log: Log
) -> tuple[list[Case], list[CaseRecord]]:
    """Build (or reuse) each case and its record; logs those that took a while."""
    cases, records = [], []
    for spec in specs:
        t0 = time.perf_counter()
        case = build_case(spec, conf.work / "cases", conf.rebuild)
        cases.append(case)
        records.append(case_record(case))
        took = time.perf_counter() - t0
        if took > 0.5:
            log(f"built {case.name} in {took:.1f} s")
    return cases, records


def _log_run(log: Log, case: Case, rec: CaseRecord, m: str, r: Run) -> None:
    if not r.get("ok"):
        log(f"{case.name:<20} {m:<14} FAILED: {r.get('error', '')[:300]}")
        return
    primary = "field" if case.warped else "real"
    ref = rec.references[primary]
    s = r["scores"][primary]["sn9"]
    log(
        f"{case.name:<20} {m:<14} mean {s['mean_px']:7.2f} px "
        f"(zero {ref['zero']['mean_px']:.2f}, "
        f"oracle-affine {ref['oracle_affine']['mean_px']:.2f})  "
        f"{r['wall_s']:6.1f} s  {r['peak_rss_mb']:7.0f} MB"
    )


def run_benchmark(conf: BenchConfig, log: Log = print) -> BenchReport:
    """Build (or reuse) the cases, run every case × method in a subprocess, summarise, check
    targets.

    Args:
        conf: What to benchmark.
        log: Progress messages.
    """
    methods = list(conf.methods) or default_methods()
    settings = method_settings(methods, conf.settings)
    is_urban = [f == "urban" or f.startswith("urban-") for f in conf.cases]
    urban_only = bool(conf.cases) and all(is_urban)
    pairs, skipped = ({}, []) if urban_only else load_pairs(conf.data, work=conf.work, log=log)
    if not any(pairs.values()) and not any(is_urban):
        raise InputError(
            f"no benchmark pairs found under {conf.data} "
            "(expected cfog/, vsff/, srif/, bigearthnet/)"
        )
    specs = select_cases(
        plan_cases(pairs, conf.seed, urban_cases=URBAN_CASES), conf.cases, conf.quick
    )
    for s in skipped:
        log(f"skipped {s.source}: {s.reason}")
    log(
        f"{len(specs)} cases × {len(methods)} methods ({', '.join(methods)}); "
        f"cases cached in {conf.work / 'cases'}"
    )
    cases, records = _build_cases(specs, conf, log)
    runs = []
    for case, rec in zip(cases, records, strict=False):
        for m in methods:
            r = run_case_method(case, m, settings[m], conf)
            r.update(case=case.name, kind=case.kind, method=m, settings=settings[m])
            runs.append(r)
            _log_run(log, case, rec, m, r)
    summary = summarise(records, runs, methods)
    return BenchReport(
        seed=conf.seed,
        data=str(conf.data),
        methods=methods,
        settings=settings,
        skipped=skipped,
        cases=records,
        runs=runs,
        summary=summary,
        targets=check_targets(summary, methods),
    )


__all__ = [
    "BenchConfig",
    "WorkerJob",
    "default_methods",
    "method_settings",
    "run_benchmark",
    "run_case_method",
    "select_cases",
]
