"""``coalign bench``: accuracy, speed and memory of the registration methods on warped real pairs.

Cases come from the pre-aligned real optical/SAR pairs (:mod:`bench.cases`):
the optical image on a north-up UTM grid, the SAR on its own coarser, shifted and
sometimes rotated grid, moved by a known smooth SN9-like field; tiepoints in the
SN9 CSV format. Every case × method runs in its own process
(:mod:`bench.worker`) through the public API, so runtime and peak RSS
are those of one registration. Scores follow the SN9 rules
(:mod:`models.scoring`); each case also gets the zero-shift error and the
oracle-affine error (the best affine fitted to the reference tiepoints: the
limit of any global model), computed from the tiepoints alone.

The issue-3 targets are checked as stated: per case kind, mean ≤ 0.5 × oracle
affine and ≤ 10 % of zero shift; no warped case worse than zero shift; the CFOG
pair's real tiepoints (unwarped and warped) at ≤ 1.0 optical pixel.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.cases import (
    KINDS,
    Case,
    CaseSpec,
    build_case,
    case_agreement,
    case_references,
    load_pairs,
    plan_cases,
)
from bench.scale import FULL_SIDE
from core.errors import InputError

Log = Callable[[str], None]

# --quick: the first cases of each kind
QUICK_CASES = {"cfog": 2, "vsff": 1, "srif": 2, "bigearthnet": 2}
TARGET_ORACLE_RATIO = 0.5
TARGET_ZERO_RATIO = 0.10
TARGET_REAL_PX = 1.0
# a field fitted to a pair gains about 0.01 of template correlation even on unrelated images (as
# verify_min_gain)
REFERENCE_MARGIN = 0.03


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


def default_methods() -> list[str]:
    """zero, global-affine, and local when it is registered (read from the registry at run time)."""
    from models.methods import METHODS

    return [m for m in ("zero", "global-affine", "local") if m in METHODS]


def method_settings(
    methods: list[str], settings: tuple[tuple[str, str, str], ...]
) -> dict[str, dict[str, str]]:
    """Per-method overrides, checked against each method's config now (not minutes later in a
    worker)."""
    from models.methods import get_method
    from models.methods.base import make_config

    out: dict[str, dict[str, str]] = {m: {} for m in methods}
    for method, key, value in settings:
        if method not in out:
            raise InputError(
                f"--set {method}:{key}={value}: method {method!r} is not benchmarked (give --method {method})"
            )
        out[method][key] = value
    for m, s in out.items():
        make_config(get_method(m).Config, s, m)
    return out


def select_cases(specs: list[CaseSpec], filters: tuple[str, ...], quick: bool) -> list[CaseSpec]:
    """Cases matching any filter (a kind, a case name, or a glob such as ``srif-0*``); ``quick``
    keeps a few per kind."""
    chosen = specs
    if filters:
        chosen = [
            s for s in specs if any(f == s.kind or fnmatch.fnmatch(s.name, f) for f in filters)
        ]
        if not chosen:
            names = ", ".join(s.name for s in specs[:8])
            raise InputError(
                f"--cases {','.join(filters)} matches no case; kinds: {', '.join(KINDS)}; names like {names}"
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


def run_in_subprocess(job: dict[str, Any], run_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Run :mod:`bench.worker` on ``job``; adds wall time and the sampled peak RSS of its
    process tree."""
    run_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (
        run_dir / "job.json",
        run_dir / "result.json",
        run_dir / "worker.log",
    )
    job_path.write_text(json.dumps(job, indent=1))
    result_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    peak = 0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(job_path), str(result_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        timed_out = False
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            if time.perf_counter() - t0 > timeout_s:
                _kill_tree(proc.pid)
                timed_out = True
                proc.wait()
                break
            time.sleep(0.1)
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
    case: Case, method: str, settings: dict[str, str], conf: BenchConfig, agreement: bool = True
) -> dict[str, Any]:
    run_dir = conf.work / "runs" / case.name / method
    job = {
        "optical": str(case.optical.resolve()),
        "sar": str(case.sar.resolve()),
        "method": method,
        "settings": settings,
        "device": conf.device,
        "output": str((run_dir / "displacement.tif").resolve()),
        "tiepoints": {k: str(p.resolve()) for k, p in case.tiepoint_sets.items()},
        "agreement": agreement,
    }
    return run_in_subprocess(job, run_dir, conf.timeout_s)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _run_mean(run: dict[str, Any], tp_set: str) -> float:
    """A run's SN9 mean error (px) on a tiepoint set; inf when the run failed."""
    if not run.get("ok"):
        return float("inf")
    return float(run["scores"][tp_set]["sn9"]["mean_px"])


def _agreement(run_or_case: dict[str, Any], key: str | None = None) -> float:
    a = run_or_case.get("agreement") or {}
    v = (a.get(key) or {}).get("ncc") if key else a.get("ncc")
    return float("nan") if v is None else float(v)


def _agrees_better_than_reference(run: dict[str, Any], case: dict[str, Any]) -> bool:
    """The run's field correlates the pair's structure clearly better than the reference field
    does."""
    return _agreement(run) > _agreement(case, "reference") + REFERENCE_MARGIN


def summarise(
    cases: list[dict[str, Any]], runs: list[dict[str, Any]], methods: list[str]
) -> dict[str, Any]:
    """Per method: per case kind and overall (warped cases, ``field`` tiepoints), and the real CFOG
    tiepoints."""
    by_case = {c["name"]: c for c in cases}
    out: dict[str, Any] = {}
    for m in methods:
        mruns = [r for r in runs if r["method"] == m]
        kinds: dict[str, Any] = {}
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in mruns:
            c = by_case[r["case"]]
            if c["warped"]:
                groups.setdefault(c["kind"], []).append(r)
                groups.setdefault("overall", []).append(r)
        for kind, rs in groups.items():
            errs = [_run_mean(r, "field") for r in rs]
            zero = [by_case[r["case"]]["references"]["field"]["zero"]["mean_px"] for r in rs]
            oracle = [
                by_case[r["case"]]["references"]["field"]["oracle_affine"]["mean_px"] for r in rs
            ]
            floor = [by_case[r["case"]]["references"]["field"]["exact"]["mean_px"] for r in rs]
            mean, zmean, omean = _mean(errs), _mean(zero), _mean(oracle)
            kinds[kind] = {
                "cases": len(rs),
                "failed": sum(1 for r in rs if not r.get("ok")),
                "mean_px": mean,
                "median_of_case_means_px": float(np.median(errs)) if errs else float("nan"),
                "zero_px": zmean,
                "oracle_affine_px": omean,
                "rounding_floor_px": _mean(floor),
                "ratio_to_oracle": mean / omean if omean > 0 else float("inf"),
                "ratio_to_zero": mean / zmean if zmean > 0 else float("inf"),
                "worse_than_zero": [
                    r["case"] for r, e, z in zip(rs, errs, zero, strict=False) if e > z
                ],
                # worse than zero against a reference that lines the images up less well than the
                # run's own field
                "worse_than_zero_weaker_reference": [
                    r["case"]
                    for r, e, z in zip(rs, errs, zero, strict=False)
                    if e > z and _agrees_better_than_reference(r, by_case[r["case"]])
                ],
                "wall_s": _mean([r.get("wall_s", float("nan")) for r in rs]),
                "peak_rss_mb_max": max((r.get("peak_rss_mb", 0.0) for r in rs), default=0.0),
            }
        real = {}
        for r in mruns:
            c = by_case[r["case"]]
            if "real" in c["references"]:
                real[r["case"]] = {
                    "mean_px": _run_mean(r, "real"),
                    "zero_px": c["references"]["real"]["zero"]["mean_px"],
                    "oracle_affine_px": c["references"]["real"]["oracle_affine"]["mean_px"],
                }
        stages: dict[str, list[float]] = {}
        for r in mruns:
            for k, v in (r.get("runtime_s") or {}).items():
                stages.setdefault(k, []).append(float(v))
        out[m] = {
            "kinds": kinds,
            "real_cfog": real,
            "mean_runtime_s": {k: round(_mean(v), 3) for k, v in stages.items()},
        }
    return out


def check_targets(summary: dict[str, Any], methods: list[str]) -> list[dict[str, Any]]:
    """The issue-3 accuracy targets for every method but ``zero`` (the reference itself)."""
    targets = []
    for m in methods:
        if m == "zero":
            continue
        s = summary[m]
        for kind in KINDS:
            k = s["kinds"].get(kind)
            if not k:
                continue
            targets.append(
                {
                    "method": m,
                    "target": f"{kind}: mean ≤ {TARGET_ORACLE_RATIO} × oracle-affine",
                    "value": k["mean_px"],
                    "limit": TARGET_ORACLE_RATIO * k["oracle_affine_px"],
                    "passed": k["mean_px"] <= TARGET_ORACLE_RATIO * k["oracle_affine_px"],
                    "floor": k["rounding_floor_px"],
                }
            )
            targets.append(
                {
                    "method": m,
                    "target": f"{kind}: mean ≤ {TARGET_ZERO_RATIO:.0%} of zero shift",
                    "value": k["mean_px"],
                    "limit": TARGET_ZERO_RATIO * k["zero_px"],
                    "passed": k["mean_px"] <= TARGET_ZERO_RATIO * k["zero_px"],
                }
            )
        if "overall" in s["kinds"]:
            worse = s["kinds"]["overall"]["worse_than_zero"]
            targets.append(
                {
                    "method": m,
                    "target": "no warped case worse than zero shift",
                    "value": len(worse),
                    "limit": 0,
                    "passed": not worse,
                    "cases": worse,
                    "weaker_reference": s["kinds"]["overall"]["worse_than_zero_weaker_reference"],
                }
            )
        for case, r in s["real_cfog"].items():
            targets.append(
                {
                    "method": m,
                    "target": f"CFOG real tiepoints ({case}): mean ≤ {TARGET_REAL_PX} px",
                    "value": r["mean_px"],
                    "limit": TARGET_REAL_PX,
                    "passed": r["mean_px"] <= TARGET_REAL_PX,
                }
            )
    return targets


def _case_record(case: Case) -> dict[str, Any]:
    meta = case.meta
    rec = {
        "name": case.name,
        "kind": case.kind,
        "warped": case.warped,
        "folder": str(case.folder),
        "source": meta.get("source"),
        "note": meta.get("note", ""),
        "n_tiepoints": meta.get("n_tiepoints", {}),
        "optical_size": [meta["optical_grid"]["width"], meta["optical_grid"]["height"]],
        "optical_pixel_m": abs(meta["optical_grid"]["transform"][0]),
        "sar_size": [meta["sar_grid"]["width"], meta["sar_grid"]["height"]],
        "sar_valid_fraction": meta.get("sar_valid_fraction"),
        "references": case_references(case),
        "agreement": case_agreement(case),
    }
    if case.warped:
        r = meta["recipe"]
        rec["recipe"] = {
            "sar_pixel_m": r["optical_m"] * r["sar_factor"],
            "rotation_deg": r["rotation_deg"],
            "offset_m": r["shift"]["offset"],
            "linear": r["shift"]["linear"],
            "nonrigid_m": r["shift"]["nonrigid_m"],
            "wavelength_m": r["shift"]["wavelength_m"],
        }
    return rec


def run_benchmark(conf: BenchConfig, log: Log = print) -> dict[str, Any]:
    """Build (or reuse) the cases, run every case × method in a subprocess, summarise, check
    targets."""
    methods = list(conf.methods) or default_methods()
    settings = method_settings(methods, conf.settings)
    pairs, skipped = load_pairs(conf.data, work=conf.work, log=log)
    if not any(pairs.values()):
        raise InputError(
            f"no benchmark pairs found under {conf.data} (expected cfog/, vsff/, srif/, bigearthnet/)"
        )
    specs = select_cases(plan_cases(pairs, conf.seed), conf.cases, conf.quick)
    for s in skipped:
        log(f"skipped {s['source']}: {s['reason']}")
    log(
        f"{len(specs)} cases × {len(methods)} methods ({', '.join(methods)}); cases cached in {conf.work / 'cases'}"
    )
    cases, records = [], []
    for spec in specs:
        t0 = time.perf_counter()
        case = build_case(spec, conf.work / "cases", conf.rebuild)
        cases.append(case)
        records.append(_case_record(case))
        took = time.perf_counter() - t0
        if took > 0.5:
            log(f"built {case.name} in {took:.1f} s")
    runs = []
    for case, rec in zip(cases, records, strict=False):
        primary = "field" if case.warped else "real"
        ref = rec["references"][primary]
        for m in methods:
            r = run_case_method(case, m, settings[m], conf)
            r.update(case=case.name, kind=case.kind, method=m, settings=settings[m])
            runs.append(r)
            if r.get("ok"):
                s = r["scores"][primary]["sn9"]
                log(
                    f"{case.name:<20} {m:<14} mean {s['mean_px']:7.2f} px (zero {ref['zero']['mean_px']:.2f}, "
                    f"oracle-affine {ref['oracle_affine']['mean_px']:.2f})  {r['wall_s']:6.1f} s  {r['peak_rss_mb']:7.0f} MB"
                )
            else:
                log(f"{case.name:<20} {m:<14} FAILED: {r.get('error', '')[:300]}")
    summary = summarise(records, runs, methods)
    targets = check_targets(summary, methods)
    return {
        "coalign_bench": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": conf.seed,
        "data": str(conf.data),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "methods": methods,
        "settings": settings,
        "skipped": skipped,
        "cases": records,
        "runs": runs,
        "summary": summary,
        "targets": targets,
    }


# ---------------------------------------------------------------- scale

SCALE_TIME_S = 240.0
SCALE_RSS_MB = 4096.0
LINEAR_EXPONENT_MAX = 1.1


def scale_methods() -> list[str]:
    """global-affine, and local when registered."""
    from models.methods import METHODS

    return [m for m in ("global-affine", "local") if m in METHODS]


def growth_exponent(sides: list[int], times: list[float]) -> float:
    """Least-squares exponent b of time ∝ area^b (1: linear in area)."""
    a = np.log(np.asarray(sides, float) ** 2)
    t = np.log(np.asarray(times, float))
    return float(np.polyfit(a, t, 1)[0])


def run_scale(conf: BenchConfig, sides: tuple[int, ...], log: Log = print) -> dict[str, Any]:
    """End to end (open, read/reproject, register, write COG) per scene size, each run in its own
    process."""
    from bench.cases import load_cfog, load_vsff
    from bench.scale import build_scale_case, draw_scale_recipe

    methods = list(conf.methods) or scale_methods()
    settings = method_settings(methods, conf.settings)
    if not conf.data.is_dir():
        raise InputError(
            f"benchmark data folder {conf.data} not found; give --data (the ../shared/data/pairs folder)"
        )
    sources = [
        load(conf.data / name)
        for name, load in (("vsff", load_vsff), ("cfog", load_cfog))
        if (conf.data / name).is_dir()
    ]
    if not sources:
        raise InputError(
            f"--scale needs the VSFF or CFOG pair under {conf.data} to tile the scene from"
        )
    recipe = draw_scale_recipe(conf.seed)
    runs, cases = [], []
    for side in sorted(sides):
        t0 = time.perf_counter()
        case = build_scale_case(sources, conf.seed, side, conf.work / "cases", conf.rebuild)
        took = time.perf_counter() - t0
        if took > 1:
            log(f"built {case.name} in {took:.0f} s")
        rec = {
            "name": case.name,
            "side": side,
            "folder": str(case.folder),
            "n_tiepoints": case.meta["n_tiepoints"],
            "sar_size": [case.meta["sar_grid"]["width"], case.meta["sar_grid"]["height"]],
            "references": case_references(case),
        }
        cases.append(rec)
        for m in methods:
            r = run_case_method(case, m, settings[m], conf, agreement=False)
            r.update(case=case.name, side=side, method=m, settings=settings[m])
            runs.append(r)
            if r.get("ok"):
                st = r["runtime_s"]
                log(
                    f"{case.name:<12} {m:<14} wall {r['wall_s']:7.1f} s  pipeline {st['pipeline']:7.1f} s  "
                    f"peak RSS {r['peak_rss_mb']:7.0f} MB  mean {r['scores']['field']['sn9']['mean_px']:.2f} px "
                    f"(zero {rec['references']['field']['zero']['mean_px']:.2f}, "
                    f"oracle-affine {rec['references']['field']['oracle_affine']['mean_px']:.2f})"
                )
            else:
                log(f"{case.name:<12} {m:<14} FAILED: {r.get('error', '')[:300]}")
    targets = []
    growth: dict[str, Any] = {}
    for m in methods:
        ok = [r for r in runs if r["method"] == m and r.get("ok")]
        if len(ok) >= 2:
            sides_ok = [r["side"] for r in ok]
            growth[m] = {
                "wall": growth_exponent(sides_ok, [r["wall_s"] for r in ok]),
                "pipeline": growth_exponent(sides_ok, [r["runtime_s"]["pipeline"] for r in ok]),
                "sides": sides_ok,
            }
            targets.append(
                {
                    "method": m,
                    "target": f"time linear in area (exponent of wall time vs area ≤ {LINEAR_EXPONENT_MAX}, sizes {sides_ok})",
                    "value": growth[m]["wall"],
                    "limit": LINEAR_EXPONENT_MAX,
                    "passed": growth[m]["wall"] <= LINEAR_EXPONENT_MAX,
                }
            )
        big = [r for r in runs if r["method"] == m and r["side"] == FULL_SIDE]
        for r in big:
            wall = r["wall_s"] if r.get("ok") else float("inf")
            targets.append(
                {
                    "method": m,
                    "target": f"{FULL_SIDE}² end to end ≤ {SCALE_TIME_S:.0f} s",
                    "value": wall,
                    "limit": SCALE_TIME_S,
                    "passed": wall <= SCALE_TIME_S,
                }
            )
            targets.append(
                {
                    "method": m,
                    "target": f"{FULL_SIDE}² peak RSS ≤ {SCALE_RSS_MB:.0f} MB",
                    "value": r["peak_rss_mb"],
                    "limit": SCALE_RSS_MB,
                    "passed": bool(r.get("ok")) and r["peak_rss_mb"] <= SCALE_RSS_MB,
                }
            )
    return {
        "coalign_bench_scale": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": conf.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "recipe": {
            "optical_m": recipe.optical_m,
            "sar_m": recipe.sar_m,
            "rotation_deg": recipe.rotation_deg,
            "offset_m": list(recipe.shift.offset),
            "nonrigid_m": recipe.shift.nonrigid_m,
            "wavelength_m": recipe.shift.wavelength_m,
            "tile_px": recipe.tile_px,
        },
        "methods": methods,
        "settings": settings,
        "cases": cases,
        "runs": runs,
        "growth_exponent": growth,
        "targets": targets,
        "targets_note": ""
        if any(r["side"] == FULL_SIDE for r in runs)
        else f"{FULL_SIDE}² not run: its time and memory targets are not measured",
    }


# ---------------------------------------------------------------- printing


def _f(v: float, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{nd}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_report(report: dict[str, Any]) -> str:
    """The readable tables: per case × method, per kind, stages, targets."""
    by_case = {c["name"]: c for c in report["cases"]}
    rows = []
    for r in report["runs"]:
        c = by_case[r["case"]]
        primary = "field" if c["warped"] else "real"
        ref = c["references"][primary]
        px = c["optical_pixel_m"]
        if r.get("ok"):
            s = r["scores"][primary]["sn9"]
            real = (
                r["scores"].get("real", {}).get("sn9", {}).get("mean_px")
                if primary == "field"
                else None
            )
            cells = [
                _f(s["mean_px"]),
                _f(s["median_px"]),
                _f(s["p90_px"]),
                _f(s["mean_m"]),
                _f(real) if real is not None else "",
            ]
        else:
            cells = ["FAIL", "", "", "", ""]
        rows.append(
            [
                r["case"],
                c["kind"],
                r["method"],
                str(c["n_tiepoints"].get(primary, "")),
                *cells,
                _f(ref["zero"]["mean_px"]),
                _f(ref["oracle_affine"]["mean_px"]),
                _f(px, 1),
                _f(_agreement(r), 3),
                _f(_agreement(c, "reference"), 3),
                _f(_agreement(c, "zero"), 3),
                _f(r.get("wall_s"), 1),
                _f(r.get("peak_rss_mb"), 0),
            ]
        )
    out = [
        "Per case (SN9 rules; px = optical pixels; 'real' = CFOG's own tiepoints through the field; ncc = structural "
        "agreement, the mean CFOG template correlation of the pair through the run's field, the reference field and "
        "no shift: a reference no better than no shift does not line the images up)",
        _table(
            [
                "case",
                "kind",
                "method",
                "tp",
                "mean px",
                "med px",
                "p90 px",
                "mean m",
                "real px",
                "zero px",
                "oracle px",
                "px m",
                "ncc run",
                "ncc ref",
                "ncc zero",
                "time s",
                "RSS MB",
            ],
            rows,
        ),
    ]
    rows = []
    for m, s in report["summary"].items():
        for kind, k in s["kinds"].items():
            rows.append(
                [
                    kind,
                    m,
                    str(k["cases"]),
                    _f(k["mean_px"]),
                    _f(k["zero_px"]),
                    _f(k["oracle_affine_px"]),
                    _f(k["rounding_floor_px"]),
                    _f(k["ratio_to_oracle"]),
                    _f(k["ratio_to_zero"], 3),
                    str(len(k["worse_than_zero"])),
                    str(k["failed"]),
                    _f(k["wall_s"], 1),
                    _f(k["peak_rss_mb_max"], 0),
                ]
            )
    out += [
        "",
        "Per case kind (warped cases; mean of case means)",
        _table(
            [
                "kind",
                "method",
                "cases",
                "mean px",
                "zero px",
                "oracle px",
                "floor px",
                "/oracle",
                "/zero",
                "worse",
                "failed",
                "time s",
                "max RSS MB",
            ],
            rows,
        ),
    ]
    rows = []
    for m, s in report["summary"].items():
        stages = s["mean_runtime_s"]
        rows.append([m, "  ".join(f"{k}={v:.2f}" for k, v in stages.items())])
    out += [
        "",
        "Mean runtime per stage (s, inside the worker)",
        *(f"  {m:<14} {st}" for m, st in rows),
    ]
    if report["targets"]:
        out += ["", "Targets (issue 3)"]
        for t in report["targets"]:
            extra = f" {t['cases']}" if t.get("cases") else ""
            if "floor" in t:
                extra += (
                    f"; the exact field itself scores {_f(float(t['floor']), 3)} (SN9 rounding)"
                )
            if t.get("weaker_reference"):
                extra += f"; of these, the run's field lines the pair up better than the reference: {t['weaker_reference']}"
            out.append(
                f"  {'PASS' if t['passed'] else 'FAIL'}  {t['method']:<14} {t['target']}: {_f(float(t['value']), 3)} "
                f"(limit {_f(float(t['limit']), 3)}){extra}"
            )
    if report.get("skipped"):
        out += [
            "",
            "Skipped sources: "
            + "; ".join(f"{s['source']} ({s['reason']})" for s in report["skipped"]),
        ]
    return "\n".join(out)


def format_scale_report(report: dict[str, Any]) -> str:
    """The scale table: per size × method, wall time, stages, peak RSS, accuracy; growth with area;
    targets."""
    rows = []
    stage_lines = []
    by_case = {c["name"]: c for c in report["cases"]}
    for r in report["runs"]:
        ref = by_case[r["case"]]["references"]["field"]
        mpx = r["side"] ** 2 / 1e6
        if r.get("ok"):
            st = r["runtime_s"]
            s = r["scores"]["field"]["sn9"]
            rows.append(
                [
                    f"{r['side']}²",
                    r["method"],
                    "",
                    _f(r["wall_s"], 1),
                    _f(st["pipeline"], 1),
                    _f(st.get("open", 0.0), 1),
                    _f(st.get("register_total", 0.0), 1),
                    _f(st.get("write_cog", 0.0), 1),
                    _f(r["wall_s"] / mpx, 2),
                    _f(r["peak_rss_mb"], 0),
                    _f(s["mean_px"]),
                    _f(ref["zero"]["mean_px"]),
                    _f(ref["oracle_affine"]["mean_px"]),
                ]
            )
            inner = {
                k: v
                for k, v in st.items()
                if k not in ("pipeline", "register_total", "open", "write_cog", "import", "score")
            }
            stage_lines.append(
                f"  {r['side']}² {r['method']:<14} "
                + "  ".join(f"{k}={v:.1f}" for k, v in inner.items())
            )
        else:
            rows.append(
                [
                    f"{r['side']}²",
                    r["method"],
                    "",
                    "FAIL",
                    "",
                    "",
                    "",
                    "",
                    "",
                    _f(r.get("peak_rss_mb"), 0),
                    "",
                    "",
                    "",
                ]
            )
            stage_lines.append(
                f"  {r['side']}² {r['method']:<14} FAILED: {r.get('error', '')[:200]}"
            )
    out = [
        "Scale (end to end in one process: open, read/reproject, register, write the displacement COG)",
        _table(
            [
                "size",
                "method",
                "",
                "wall s",
                "pipeline s",
                "open s",
                "register s",
                "write s",
                "s/Mpx",
                "peak RSS MB",
                "mean px",
                "zero px",
                "oracle px",
            ],
            rows,
        ),
        "",
        "Register stages (s)",
        *stage_lines,
    ]
    if report["growth_exponent"]:
        out += ["", "Growth with area (time ∝ area^b; b = 1 is linear)"]
        for m, g in report["growth_exponent"].items():
            out.append(
                f"  {m:<14} b(wall) = {g['wall']:.2f}  b(pipeline) = {g['pipeline']:.2f}  sizes {g['sides']}"
            )
    out += ["", "Targets (issue 3)"]
    for t in report["targets"]:
        out.append(
            f"  {'PASS' if t['passed'] else 'FAIL'}  {t['method']:<14} {t['target']}: {_f(float(t['value']), 2)} (limit {_f(float(t['limit']), 2)})"
        )
    if report.get("targets_note"):
        out.append(f"  (not measured) {report['targets_note']}")
    return "\n".join(out)


def write_json(report: dict[str, Any], path: Path) -> Path:
    """The report as JSON, written atomically."""
    from core.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(report), indent=1, default=float))
    return path


def _finite(obj: Any) -> Any:
    """Strict JSON: non-finite floats (a failed run's error) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


__all__ = [
    "BenchConfig",
    "check_targets",
    "default_methods",
    "format_report",
    "format_scale_report",
    "growth_exponent",
    "run_benchmark",
    "run_scale",
    "select_cases",
    "summarise",
    "write_json",
]
