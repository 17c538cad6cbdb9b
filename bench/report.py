"""The benchmark report as readable tables and as strict JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.records import BenchReport, CaseRecord, Run, Target
from bench.summary import case_agreement_ncc, run_agreement
from core.files import atomic_path

CASE_HEADER = [
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
]
KIND_HEADER = [
    "kind",
    "method",
    "cases",
    "mean px",
    "zero px",
    "oracle px",
    "floor px",
    "unr. mean",
    "unr. oracle",
    "/oracle",
    "/zero",
    "worse",
    "failed",
    "time s",
    "max RSS MB",
]
CASE_TITLE = (
    "Per case (SN9 rules; px = optical pixels; 'real' = CFOG's own tiepoints through the field; "
    "ncc = structural agreement, the mean CFOG template correlation of the pair through the "
    "run's field, the reference field and no shift: a reference no better than no shift does "
    "not line the images up)"
)


def fmt(v: float | None, nd: int = 2) -> str:
    """A number for a table cell: ``-`` for None or NaN, ``inf`` for infinity."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{nd}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first three columns left-aligned, the rest right-aligned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _score_cells(r: Run, primary: str) -> list[str]:
    if not r.get("ok"):
        return ["FAIL", "", "", "", ""]
    s = r["scores"][primary]["sn9"]
    real = r["scores"].get("real", {}).get("sn9", {}).get("mean_px") if primary == "field" else None
    return [
        fmt(s["mean_px"]),
        fmt(s["median_px"]),
        fmt(s["p90_px"]),
        fmt(s["mean_m"]),
        fmt(real) if real is not None else "",
    ]


def _case_row(r: Run, c: CaseRecord) -> list[str]:
    primary = "field" if c.warped else "real"
    ref = c.references[primary]
    return [
        r["case"],
        c.kind,
        r["method"],
        str(c.n_tiepoints.get(primary, "")),
        *_score_cells(r, primary),
        fmt(ref["zero"]["mean_px"]),
        fmt(ref["oracle_affine"]["mean_px"]),
        fmt(c.optical_pixel_m, 1),
        fmt(run_agreement(r), 3),
        fmt(case_agreement_ncc(c, "reference"), 3),
        fmt(case_agreement_ncc(c, "zero"), 3),
        fmt(r.get("wall_s"), 1),
        fmt(r.get("peak_rss_mb"), 0),
    ]


def _kind_rows(report: BenchReport) -> list[list[str]]:
    rows = []
    for m, s in report.summary.items():
        for kind, k in s.kinds.items():
            rows.append(
                [
                    kind,
                    m,
                    str(k.cases),
                    fmt(k.mean_px),
                    fmt(k.zero_px),
                    fmt(k.oracle_affine_px),
                    fmt(k.rounding_floor_px),
                    fmt(k.mean_unrounded_px, 3),
                    fmt(k.oracle_affine_unrounded_px, 3),
                    fmt(k.ratio_to_oracle),
                    fmt(k.ratio_to_zero, 3),
                    str(len(k.worse_than_zero)),
                    str(k.failed),
                    fmt(k.wall_s, 1),
                    fmt(k.peak_rss_mb_max, 0),
                ]
            )
    return rows


def _target_line(t: Target) -> str:
    extra = f" {t.cases}" if t.cases else ""
    if t.floor is not None:
        extra += f"; the exact field itself scores {fmt(float(t.floor), 3)} (SN9 rounding)"
    if t.weaker_reference:
        extra += (
            "; of these, the run's field lines the pair up better than the reference: "
            f"{t.weaker_reference}"
        )
    verdict = ("PASS" if t.passed else "FAIL") if t.gated else "info"
    return (
        f"  {verdict}  {t.method:<14} {t.target}: "
        f"{fmt(float(t.value), 3)} (limit {fmt(float(t.limit), 3)}){extra}"
    )


def format_report(report: BenchReport) -> str:
    """The readable tables: per case × method, per kind, stages, targets."""
    by_case = {c.name: c for c in report.cases}
    out = [
        CASE_TITLE,
        table(CASE_HEADER, [_case_row(r, by_case[r["case"]]) for r in report.runs]),
        "",
        "Per case kind (warped cases; mean of case means)",
        table(KIND_HEADER, _kind_rows(report)),
        "",
        "Mean runtime per stage (s, inside the worker)",
    ]
    for m, s in report.summary.items():
        stages = "  ".join(f"{k}={v:.2f}" for k, v in s.mean_runtime_s.items())
        out.append(f"  {m:<14} {stages}")
    if report.targets:
        out += [
            "",
            "Targets (PASS/FAIL: gates; info: reported, not gated; 'unrounded': the reference "
            "shift not rounded as SN9 does)",
            *(_target_line(t) for t in report.targets),
        ]
    if report.skipped:
        out += [
            "",
            "Skipped sources: " + "; ".join(f"{s.source} ({s.reason})" for s in report.skipped),
        ]
    return "\n".join(out)


def write_json(report: dict[str, Any], path: Path) -> Path:
    """A report's JSON form written atomically; non-finite floats become null."""
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


__all__ = ["fmt", "format_report", "table", "write_json"]
