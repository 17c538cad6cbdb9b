"""Per-stage time of the scale runs: where a scene's seconds go, and how each stage grows."""

from __future__ import annotations

import re

import numpy as np

from bench.records import Run
from bench.report import fmt, table

# the stages that choose the start of the field (their sum is the ``priors`` row)
PRIOR_STAGES = (
    "global_match",
    "global_fit",
    "coarse_translation",
    "terrain_shift",
    "structures",
    "prior_correlation",
)
# stages measured around the registration, not inside it
OUTSIDE = ("import", "open", "register_total", "write_cog", "pipeline", "score")
LEVEL_KEY = re.compile(r"level(\d+)_(repeat_)?(match|dense)$")


def _level_rows(st: dict[str, float]) -> list[tuple[str, float]]:
    """Each level's match and dense time, then its repeat passes' (when it ran again)."""
    parts: dict[tuple[int, bool, str], float] = {}
    for k, v in st.items():
        m = LEVEL_KEY.match(k)
        if m:
            parts[(int(m[1]), bool(m[2]), m[3])] = v
    rows = []
    for n in sorted({key[0] for key in parts}):
        for repeat in (False, True):
            for part in ("match", "dense"):
                if (n, repeat, part) in parts:
                    label = f"level{n} {'repeat ' if repeat else ''}{part}"
                    rows.append((label, parts[(n, repeat, part)]))
    return rows


def stage_rows(st: dict[str, float]) -> list[tuple[str, float]]:
    """A run's ``runtime_s`` as ordered (stage, seconds) rows: open, priors (and their parts),
    each level, verify, the rest of the registration, write, pipeline.

    Args:
        st: The run's ``runtime_s`` (the worker's stage keys).
    """
    priors = [(f"  {k}", st[k]) for k in PRIOR_STAGES if k in st]
    known = {*PRIOR_STAGES, *OUTSIDE, "verify"}
    rest = [(k, v) for k, v in st.items() if k not in known and not LEVEL_KEY.match(k)]
    inner = [
        *_level_rows(st),
        *([("verify", st["verify"])] if "verify" in st else []),
        *rest,
    ]
    rows = [("open", st.get("open", 0.0))]
    if priors:
        rows += [("priors", sum(v for _, v in priors)), *priors]
    rows += inner
    counted = sum(v for _, v in priors + inner)
    rows.append(("other register", max(st.get("register_total", 0.0) - counted, 0.0)))
    rows += [("write", st.get("write_cog", 0.0)), ("pipeline", st.get("pipeline", 0.0))]
    return rows


def _stage_growth(sides: list[int], times: list[float | None]) -> float | None:
    """Exponent b of a stage's time ∝ area^b, when it ran (over 0.05 s) at two sizes or more."""
    pts = [(s, t) for s, t in zip(sides, times, strict=True) if t is not None and t > 0.05]
    if len(pts) < 2 or len({s for s, _ in pts}) < 2:
        return None
    a = np.log(np.asarray([s for s, _ in pts], float) ** 2)
    return float(np.polyfit(a, np.log([t for _, t in pts]), 1)[0])


def format_stage_profile(runs: list[Run]) -> str:
    """Per method, every stage's seconds and share of the pipeline at each size, and its growth
    exponent over the sizes.

    Args:
        runs: The scale runs (failed ones are left out).
    """
    ok = [r for r in runs if r.get("ok")]
    sides = sorted({r["side"] for r in ok})
    header = ["method", "stage", ""]
    for s in sides:
        header += [f"{s}² s", "%"]
    header.append("b")
    rows = []
    for m in dict.fromkeys(r["method"] for r in ok):
        mine = [r for r in ok if r["method"] == m]
        by_side = {r["side"]: dict(stage_rows(r["runtime_s"])) for r in mine}
        # every stage any size ran, in the order of the stage table
        labels = [k for k, _ in stage_rows({k: 0.0 for r in mine for k in r["runtime_s"]})]
        for i, label in enumerate(labels):
            cells = [m if i == 0 else "", label, ""]
            times = [by_side.get(s, {}).get(label) for s in sides]
            for s, t in zip(sides, times, strict=True):
                total = by_side.get(s, {}).get("pipeline") or 0.0
                share = 100 * t / total if t is not None and total > 0 else None
                cells += [fmt(t, 1), fmt(share, 0)]
            cells.append(fmt(_stage_growth(sides, times)))
            rows.append(cells)
    return table(header, rows)


__all__ = ["PRIOR_STAGES", "format_stage_profile", "stage_rows"]
