"""One benchmark run in its own process: open, register, write the SN9 map, score; report times and
memory.

``python -m bench.worker JOB.json RESULT.json``. Running each case ×
method in a fresh process makes its peak RSS measurable on its own (the
worker reports ``ru_maxrss`` of itself and of its children, e.g. tile pools).
The pair goes through :func:`models.registration.run_pipeline`, as in ``coalign register``;
each tiepoint set is then scored with :func:`models.scoring.score_displacement`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.methods.base import RegistrationInput


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one registration job (see :func:`bench.run.run_case_method` for the keys)."""
    t_start = time.perf_counter()
    from models.registration import run_pipeline
    from models.sar_geometry import SarGeometry

    stages: dict[str, float] = {"import": time.perf_counter() - t_start}
    out = Path(job["output"])
    done = run_pipeline(
        job["optical"],
        job["sar"],
        out,
        job["method"],
        job.get("settings") or {},
        job.get("device", "cpu"),
        dsm=job.get("dsm"),
        dtm=job.get("dtm"),
        sar_geometry=SarGeometry.from_record(job.get("geometry")),
    )
    pair, result = done.pair, done.result
    stages["open"] = done.open_s
    stages.update((k, v) for k, v in result.runtime_s.items() if k != "write")
    stages["write_cog"] = result.runtime_s["write"]
    stages["pipeline"] = stages["open"] + stages["register_total"] + stages["write_cog"]
    t0 = time.perf_counter()
    scores = _scores(out, job.get("tiepoints") or {}, pair)
    stages["score"] = time.perf_counter() - t0
    agreement: dict[str, Any] = {}
    if job.get("agreement", True):  # not in scale runs: their wall time and RSS are the measurement
        from models.methods.local import structural_agreement

        ncc, n_templates = structural_agreement(pair, result.field)
        agreement = {"ncc": ncc, "templates": n_templates}
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    details = {
        k: v
        for k, v in result.details.items()
        if isinstance(v, (str, int, float, bool, list, dict))
    }
    return {
        "ok": True,
        "method": result.method,
        "version": result.version,
        "device": pair.device,
        "matches": int(result.matches),
        "inliers": int(result.inliers),
        "warnings": list(result.warnings),
        "details": details,
        "runtime_s": {k: round(float(v), 4) for k, v in stages.items()},
        "maxrss_mb": round(own, 1),
        "maxrss_children_mb": round(children, 1),
        "scores": scores,
        "agreement": agreement,
    }


def _scores(out: Path, tiepoints: dict[str, str], pair: RegistrationInput) -> dict[str, Any]:
    """The written map's SN9 and exact (unrounded) scores at each named tiepoint file.

    Args:
        out: The displacement map.
        tiepoints: Tiepoint CSV by name.
        pair: The registered pair (its optical and SAR grids).
    """
    from models.scoring import read_tiepoints, score_displacement, score_shifts

    scores: dict[str, Any] = {}
    for name, path in tiepoints.items():
        tp = read_tiepoints(path)
        s = score_displacement(out, tp, pair.optical.grid, pair.sar.grid)
        exact = score_shifts(
            s.pred_dx, s.pred_dy, tp, pair.optical.grid, pair.sar.grid, rounding=False
        )
        scores[name] = {"sn9": s.summary(), "exact": exact.summary()}
    return scores


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        result = run_job(job)
        code = 0
    except Exception as exc:  # reported to the parent, which prints it per run
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        code = 1
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=float))
    os.replace(tmp, result_path)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
