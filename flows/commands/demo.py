"""``coalign demo``: run coalign on an embedded synthetic pair (no network, no data needed)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from flows.commands import register as register_cmd
from models.synth import SceneSpec, ShiftModel, synthesize_pair


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run coalign end to end on an embedded synthetic optical/SAR pair")
    p.add_argument("--workdir", default=os.environ.get("COALIGN_WORKDIR", "coalign-work"), help="where outputs go")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    work = Path(args.workdir) / "demo"
    work.mkdir(parents=True, exist_ok=True)
    spec = SceneSpec(size_m=400.0, shift=ShiftModel(offset=(24.0, -18.0), nonrigid_m=3.0, centre=(377200.0, 4105800.0)))
    pair = synthesize_pair(work, spec, "demo")
    ns = argparse.Namespace(
        optical=str(pair.optical), sar=str(pair.sar), output=str(work / "displacement.tif"), method="local",
        settings=[], device="auto", tiepoints=str(pair.tiepoints), confidence=str(work / "confidence.tif"),
        residuals=str(work / "residuals.csv"), no_progress=False,
    )
    code = register_cmd.run(ns)
    print(json.dumps({"demo_outputs": str(work)}))
    return code
