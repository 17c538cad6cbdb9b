"""``coalign register OPTICAL SAR -o OUT.tif``: one pair → SN9 displacement map (+ confidence,
score)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from flows.progress import CliProgress
from models.cog import check_outputs
from models.methods import DEFAULT_METHOD, SET_GRAMMAR, check_methods, parse_set_options
from models.registration import run_pipeline
from models.scoring import read_tiepoints

log = logging.getLogger("coalign.register")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "register",
        help="register an optical GeoTIFF to a SAR GeoTIFF and write an SN9 displacement map",
        description="Register OPTICAL to SAR and write the SpaceNet 9 displacement map "
        "(2-band COG, optical grid).",
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
        metavar=SET_GRAMMAR,
        help="override a method setting, e.g. levels=4,2,1 (repeatable; see `coalign methods`)",
    )
    p.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the matchers run"
    )
    p.add_argument("--tiepoints", help="SN9 tiepoint CSV: score the result")
    p.add_argument("--confidence", help="also write the per-pixel confidence COG here")
    p.add_argument(
        "--residuals",
        help="with --tiepoints: write per-tiepoint residuals CSV here (and beside it the same "
        "residuals as GeoPackage points, .gpkg)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _warn(warning: str) -> None:
    log.warning(warning)
    print(f"warning: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = check_outputs(
        {"-o": args.output, "--confidence": args.confidence, "--residuals": args.residuals},
        {"OPTICAL": args.optical, "SAR": args.sar, "--tiepoints": args.tiepoints},
    )["-o"]
    settings = parse_set_options(args.settings, [args.method])
    check_methods([args.method], settings)
    tiepoints = read_tiepoints(args.tiepoints) if args.tiepoints else None
    progress = CliProgress(False if args.no_progress else None)
    try:
        done = run_pipeline(
            args.optical,
            args.sar,
            out,
            args.method,
            settings.get(args.method),
            args.device,
            confidence=args.confidence,
            tiepoints=tiepoints,
            progress=progress,
            on_warning=_warn,
        )
    finally:
        progress.close()
    result = done.result
    summary = {
        "method": result.method,
        "version": result.version,
        "device": done.pair.device,
        "runtime_s": round(time.perf_counter() - t0, 3),
        "matches": result.matches,
        "inliers": result.inliers,
        "output": str(out),
    }
    if done.score is not None:
        summary["score"] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in done.score.summary().items()
        }
        if args.residuals:
            done.score.write_residuals(
                args.residuals, tiepoints, done.pair.optical.grid, done.products.confidence
            )
    if result.warnings:
        summary["warnings"] = result.warnings
    print(json.dumps(summary))
    return 0
