"""``coalign score DISP OPTICAL SAR TIEPOINTS``: the SpaceNet 9 metric of a displacement map."""

from __future__ import annotations

import argparse
import json

from core.errors import InputError
from flows.options import add_json_option, add_overwrite_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a displacement map against SN9 tiepoints",
        description="Mean/median/p90 error (optical pixels and metres) of an SN9 displacement "
        "map at tiepoints.",
    )
    p.add_argument("displacement", help="2-band SN9 displacement GeoTIFF (optical grid)")
    p.add_argument("optical", help="the optical GeoTIFF the map was made for")
    p.add_argument("sar", help="the SAR GeoTIFF")
    p.add_argument("tiepoints", help="CSV with header sar_row,sar_col,optical_row,optical_col")
    p.add_argument(
        "--no-rounding",
        action="store_true",
        help="do not round the reference shift (SN9 rounds with rint)",
    )
    p.add_argument(
        "--residuals",
        help="write per-tiepoint residuals CSV here (and beside it the same residuals as "
        "GeoPackage points, .gpkg)",
    )
    p.add_argument(
        "--confidence",
        help="with --residuals: the map's confidence COG (optical grid), sampled at each "
        "tiepoint into the GeoPackage",
    )
    add_overwrite_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score the map at the tiepoints, print the errors (text, or JSON with ``--json``)."""
    from models.cog import CSV, check_outputs
    from models.raster import open_raster
    from models.residuals_gpkg import RESIDUAL_POINTS, gpkg_path
    from models.scoring import read_tiepoints, score_displacement

    check_outputs(
        {
            "--residuals": args.residuals,
            RESIDUAL_POINTS: gpkg_path(args.residuals) if args.residuals else None,
        },
        {
            "DISPLACEMENT": args.displacement,
            "OPTICAL": args.optical,
            "SAR": args.sar,
            "TIEPOINTS": args.tiepoints,
            "--confidence": args.confidence,
        },
        overwrite=args.overwrite,
        formats={"--residuals": CSV},
    )
    if args.confidence and not args.residuals:
        raise InputError(
            f"--confidence {args.confidence}: the confidence is sampled into the residual "
            "GeoPackage; give --residuals CSV too, or drop --confidence"
        )
    tiepoints = read_tiepoints(args.tiepoints)
    optical = open_raster(args.optical, "optical")
    sar = open_raster(args.sar, "sar")
    score = score_displacement(
        args.displacement, tiepoints, optical.grid, sar.grid, rounding=not args.no_rounding
    )
    summary = score.summary()
    if args.residuals:
        score.write_residuals(args.residuals, tiepoints, optical.grid, args.confidence)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"tiepoints {summary['tiepoints']}")
        for k in ("mean", "median", "p90"):
            print(f"{k:<7} {summary[k + '_px']:8.3f} px  {summary[k + '_m']:8.3f} m")
    return 0
