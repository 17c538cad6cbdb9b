"""``coalign register OPTICAL SAR -o OUT.tif``: one pair → SN9 displacement map (+ confidence,
score)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from core.errors import InputError
from flows.progress import CliProgress
from models.cog import check_outputs
from models.methods import DEFAULT_METHOD
from models.methods.base import RegistrationInput
from models.registration import register, write_displacement
from models.scoring import read_tiepoints, score_displacement

log = logging.getLogger("coalign.register")


def parse_settings(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "register",
        help="register an optical GeoTIFF to a SAR GeoTIFF and write an SN9 displacement map",
        description="Register OPTICAL to SAR and write the SpaceNet 9 displacement map (2-band COG, optical grid).",
    )
    p.add_argument("optical", help="optical GeoTIFF (1 or 3+ bands)")
    p.add_argument("sar", help="SAR GeoTIFF (1 band; rotated grids are fine)")
    p.add_argument("-o", "--output", required=True, help="displacement COG to write")
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help=f"registration method (default {DEFAULT_METHOD}; see `coalign methods`)",
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        metavar="KEY=VALUE",
        help="override a method setting (repeatable)",
    )
    p.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the matchers run"
    )
    p.add_argument("--tiepoints", help="SN9 tiepoint CSV: score the result")
    p.add_argument("--confidence", help="also write the per-pixel confidence COG here")
    p.add_argument("--residuals", help="with --tiepoints: write per-tiepoint residuals CSV here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = check_outputs(
        {"-o": args.output, "--confidence": args.confidence, "--residuals": args.residuals},
        {"OPTICAL": args.optical, "SAR": args.sar, "--tiepoints": args.tiepoints},
    )["-o"]
    settings = parse_settings(args.settings)
    tiepoints = read_tiepoints(args.tiepoints) if args.tiepoints else None
    pair = RegistrationInput.open(args.optical, args.sar, args.device)
    if tiepoints is not None:
        tiepoints.check_bounds(pair.optical.grid, pair.sar.grid)
    progress = CliProgress(False if args.no_progress else None)
    try:
        result = register(pair, args.method, settings, progress)
        for w in result.warnings:
            log.warning(w)
            print(f"warning: {w}", file=sys.stderr)
        with result.timed("write"):
            write_displacement(result.field, pair.optical.grid, out, args.confidence, progress)
    finally:
        progress.close()
    summary = {
        "method": result.method,
        "version": result.version,
        "device": pair.device,
        "runtime_s": round(time.perf_counter() - t0, 3),
        "matches": result.matches,
        "inliers": result.inliers,
        "output": str(out),
    }
    if tiepoints is not None:
        score = score_displacement(out, tiepoints, pair.optical.grid, pair.sar.grid)
        summary["score"] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in score.summary().items()
        }
        if args.residuals:
            score.write_residuals(args.residuals, tiepoints)
    if result.warnings:
        summary["warnings"] = result.warnings
    print(json.dumps(summary))
    return 0
