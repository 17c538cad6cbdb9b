"""Leave-one-source-out benchmark of the learned descriptor: for each kind K, train on the other
sources, then run ``local`` with CFOG and with that model on K's cases.

``python -m bench.loso [--quick] [--steps N] [--cases cfog,vsff]`` prints one row per kind:
cases, CFOG mean px, learned mean px and their ratio (below 1: the learned descriptor is better),
and writes ``<work>/loso.json``. Each kind's weights are kept as ``<work>/loso/<K>/descriptor.pt``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.build import build_case
from bench.cases import Case, plan_cases
from bench.pairs import KINDS, load_pairs
from bench.run import BenchConfig, Log, run_case_method, select_cases
from bench.training_sets import bench_training_pairs

REPO = Path(__file__).resolve().parents[1]
QUICK_STEPS = 150  # --quick: training steps per kind


@dataclass(frozen=True)
class LosoRow:
    """One held-out kind: its cases and the mean SN9 error (px) of each descriptor over them."""

    kind: str
    cases: int
    cfog_px: float | None
    learned_px: float | None
    train_pairs: int

    @property
    def ratio(self) -> float | None:
        if self.cfog_px is None or self.learned_px is None or self.cfog_px == 0:
            return None
        return self.learned_px / self.cfog_px


def _train_without(kind: str, conf: BenchConfig, steps: int, log: Log) -> tuple[Path, int]:
    """A descriptor trained on every kind but ``kind``: its weights file and pair count."""
    from models.learned import TrainConfig, save_descriptor, train_descriptor

    others = tuple(k for k in KINDS if k != kind)
    pairs = bench_training_pairs(conf.data, others, conf.work)
    log(f"{kind}: training on {len(pairs)} pairs of {', '.join(others)} ({steps} steps)")
    result = train_descriptor(pairs, TrainConfig(steps=steps, seed=conf.seed))
    weights = conf.work / "loso" / kind / "descriptor.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_descriptor(result.net, weights)
    return weights, len(pairs)


def _mean_px(case: Case, run: dict[str, Any]) -> float | None:
    """The run's SN9 mean error (px) on the case's primary tiepoints; None when it failed."""
    if not run.get("ok"):
        return None
    return run["scores"]["field" if case.warped else "real"]["sn9"]["mean_px"]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.fmean(vals), 3) if vals else None


def loso_kind(kind: str, cases: list[Case], conf: BenchConfig, steps: int, log: Log) -> LosoRow:
    """Train without ``kind``, then local with CFOG and with the model on each of its cases.

    Args:
        kind: The held-out kind.
        cases: Its built cases.
        conf: The benchmark settings (data, work folder, seed, device, timeout).
        steps: Training steps.
        log: Progress messages.
    """
    weights, n_pairs = _train_without(kind, conf, steps, log)
    variants = {"cfog": {}, "learned": {"descriptor": "learned", "model": str(weights)}}
    errors: dict[str, list[float | None]] = {v: [] for v in variants}
    for case in cases:
        for name, settings in variants.items():
            work = replace(conf, work=conf.work / "loso" / kind / name)
            err = _mean_px(case, run_case_method(case, "local", settings, work))
            errors[name].append(err)
            shown = "FAILED" if err is None else f"{err:.2f} px"
            log(f"{case.name:<20} local {name:<8} {shown}")
    return LosoRow(kind, len(cases), _mean(errors["cfog"]), _mean(errors["learned"]), n_pairs)


def run_loso(conf: BenchConfig, steps: int, log: Log = print) -> list[LosoRow]:
    """:func:`loso_kind` for each kind of ``conf.cases`` (default every kind found).

    Args:
        conf: The benchmark settings; ``cases`` names the kinds, ``quick`` keeps a few cases.
        steps: Training steps per kind.
        log: Progress messages.
    """
    pairs, _ = load_pairs(conf.data, work=conf.work, log=log)
    kinds = [k for k in (conf.cases or KINDS) if pairs.get(k)]
    specs = plan_cases(pairs, conf.seed)
    rows = []
    for kind in kinds:
        chosen = select_cases(specs, (kind,), conf.quick)
        cases = [build_case(s, conf.work / "cases", conf.rebuild) for s in chosen]
        rows.append(loso_kind(kind, cases, conf, steps, log))
    return rows


def format_rows(rows: list[LosoRow]) -> str:
    """The table: kind, cases, CFOG mean px, learned mean px, ratio."""

    def f(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    lines = [f"{'kind':<14}{'cases':>6}{'cfog px':>10}{'learned px':>12}{'ratio':>8}"]
    for r in rows:
        lines.append(
            f"{r.kind:<14}{r.cases:>6}{f(r.cfog_px):>10}{f(r.learned_px):>12}{f(r.ratio):>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the leave-one-source-out benchmark from the command line."""
    p = argparse.ArgumentParser(prog="python -m bench.loso", description=__doc__)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "pairs")
    p.add_argument("--work", type=Path, default=Path("bench-out"), help="cases and runs")
    p.add_argument("--cases", help=f"comma-separated kinds to hold out (default {','.join(KINDS)})")
    p.add_argument("--quick", action="store_true", help=f"few cases, {QUICK_STEPS} steps")
    p.add_argument("--steps", type=int, help="training steps per kind (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    args = p.parse_args(argv)
    kinds = tuple(k.strip() for k in (args.cases or "").split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        p.error(f"--cases {','.join(unknown)}: choose from {', '.join(KINDS)}")
    steps = args.steps or (QUICK_STEPS if args.quick else 1000)
    conf = BenchConfig(
        data=args.data,
        work=args.work,
        methods=("local",),
        cases=kinds,
        quick=args.quick,
        seed=args.seed,
        timeout_s=args.timeout,
    )
    rows = run_loso(conf, steps)
    print()
    print(format_rows(rows))
    out = args.work / "loso.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = [{**r.__dict__, "ratio": r.ratio} for r in rows]
    out.write_text(json.dumps({"steps": steps, "seed": args.seed, "rows": data}, indent=1))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
