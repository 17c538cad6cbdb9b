"""``coalign register OPTICAL SAR -o OUT.tif``: one pair → SN9 displacement map (+ confidence,
score)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError
from flows.options import add_json_option, add_overwrite_option
from models.method_names import DEFAULT_METHOD, SET_GRAMMAR

if TYPE_CHECKING:
    from models.registration import PipelineRun

log = logging.getLogger("coalign.register")
STATS = ("mean", "median", "p90")  # the error statistics the text summary shows


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
    p.add_argument(
        "--dsm",
        metavar="PATH_OR_URL",
        help="surface height model (DSM, or a terrain DEM) GeoTIFF/COG, 1 band in metres, any CRS; "
        "read by windows over the pair and recorded in the result",
    )
    p.add_argument(
        "--dtm",
        metavar="PATH_OR_URL",
        help="with --dsm: bare-terrain height model (DTM) GeoTIFF/COG, 1 band in metres",
    )
    add_sar_geometry_options(p)
    p.add_argument("--tiepoints", help="SN9 tiepoint CSV: score the result")
    p.add_argument("--confidence", help="also write the per-pixel confidence COG here")
    p.add_argument(
        "--residuals",
        help="with --tiepoints: write per-tiepoint residuals CSV here (and beside it the same "
        "residuals as GeoPackage points, .gpkg)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_overwrite_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def add_sar_geometry_options(p: argparse.ArgumentParser) -> None:
    """``--sar-incidence``, ``--sar-look-azimuth`` and ``--sar-ground-projected/--sar-slant``.

    Args:
        p: The command's parser.
    """
    p.add_argument(
        "--sar-incidence",
        type=float,
        metavar="DEG",
        help="SAR incidence angle at the scene centre, degrees from the vertical (0-90); with "
        "--sar-look-azimuth, overrides the SAR file's SAR_INCIDENCE_ANGLE tag",
    )
    p.add_argument(
        "--sar-look-azimuth",
        type=float,
        metavar="DEG",
        help="ground azimuth of the SAR range direction (sensor towards scene), degrees "
        "clockwise from north (0-360); with --sar-incidence",
    )
    side = p.add_mutually_exclusive_group()
    side.add_argument(
        "--sar-ground-projected",
        dest="sar_ground_projected",
        action="store_const",
        const=True,
        help="with the angles: the SAR is a ground-projected product (GEC, GRD; the default)",
    )
    side.add_argument(
        "--sar-slant",
        dest="sar_ground_projected",
        action="store_const",
        const=False,
        help="with the angles: the SAR is in slant-range geometry",
    )


def _warn(warning: str) -> None:
    log.warning(warning)
    print(f"warning: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Register the pair, write the outputs, print the summary (text, or JSON with ``--json``)."""
    from flows.descriptor_options import resolve_model_option
    from flows.progress import CliProgress
    from models.methods import check_methods, parse_set_options
    from models.registration import run_pipeline
    from models.sar_geometry import geometry_from_options
    from models.scoring import read_tiepoints

    t0 = time.perf_counter()
    out = _checked_output(args)
    settings = parse_set_options(args.settings, [args.method])
    check_methods([args.method], settings)
    method_settings = resolve_model_option(settings.get(args.method))
    tiepoints = read_tiepoints(args.tiepoints) if args.tiepoints else None
    geometry = geometry_from_options(
        args.sar_incidence, args.sar_look_azimuth, args.sar_ground_projected
    )
    progress = CliProgress(False if args.no_progress else None)
    try:
        done = run_pipeline(
            args.optical,
            args.sar,
            out,
            args.method,
            method_settings,
            args.device,
            confidence=args.confidence,
            tiepoints=tiepoints,
            progress=progress,
            on_warning=_warn,
            dsm=args.dsm,
            dtm=args.dtm,
            sar_geometry=geometry,
        )
    finally:
        progress.close()
    if done.score is not None and args.residuals:
        done.score.write_residuals(
            args.residuals, tiepoints, done.pair.optical.grid, done.products.confidence
        )
    summary = make_summary(done, out, time.perf_counter() - t0)
    print(json.dumps(summary) if args.json else format_summary(summary, args))
    return 0


def _checked_output(args: argparse.Namespace) -> Path:
    """The displacement map path, once every output path and option pairing is checked.

    Args:
        args: The parsed ``register`` options.
    """
    from models.cog import COG, CSV, check_outputs
    from models.residuals_gpkg import RESIDUAL_POINTS, gpkg_path

    out = check_outputs(
        {
            "-o": args.output,
            "--confidence": args.confidence,
            "--residuals": args.residuals,
            RESIDUAL_POINTS: gpkg_path(args.residuals) if args.residuals else None,
        },
        {
            "OPTICAL": args.optical,
            "SAR": args.sar,
            "--tiepoints": args.tiepoints,
            "--dsm": args.dsm,
            "--dtm": args.dtm,
        },
        overwrite=args.overwrite,
        formats={"-o": COG, "--confidence": COG, "--residuals": CSV},
    )["-o"]
    if args.residuals and not args.tiepoints:
        raise InputError(
            f"--residuals {args.residuals}: residuals are measured at tiepoints; give --tiepoints "
            "CSV too, or drop --residuals"
        )
    return out


def make_summary(done: PipelineRun, out: Path, runtime_s: float) -> dict[str, Any]:
    """What ``--json`` prints: method, version, device, time, matches, output, height sources (with
    ``--dsm``), SAR geometry (null when unknown), score, warnings.

    Args:
        done: The finished pipeline.
        out: The displacement map written.
        runtime_s: Seconds the command took.
    """
    result = done.result
    summary: dict[str, Any] = {
        "method": result.method,
        "version": result.version,
        "device": done.pair.device,
        "runtime_s": round(runtime_s, 3),
        "matches": result.matches,
        "inliers": result.inliers,
        "output": str(out),
    }
    if done.score is not None:
        summary["score"] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in done.score.summary().items()
        }
    if "height" in result.details:
        summary["height"] = result.details["height"]
    summary["sar_geometry"] = result.details.get("sar_geometry")
    if result.warnings:
        summary["warnings"] = result.warnings
    return summary


def format_summary(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """The text summary of a registration: method, matches, time, outputs, score.

    Args:
        summary: The summary ``--json`` prints.
        args: The command's options (the outputs they name).
    """
    lines = [
        f"{summary['method']} {summary['version']} on {summary['device']}: "
        f"{summary['matches']} matches, {summary['inliers']} inliers, {summary['runtime_s']:.1f} s",
        f"  displacement  {summary['output']}",
    ]
    if args.confidence:
        lines.append(f"  confidence    {args.confidence}")
    if args.residuals and "score" in summary:
        lines.append(f"  residuals     {args.residuals}")
    for role in ("dsm", "dtm"):
        if role in summary.get("height", {}):
            lines.append(f"  {role}           {height_line(summary['height'][role])}")
    if summary.get("sar_geometry"):
        lines.append(f"  sar geometry  {geometry_line(summary['sar_geometry'])}")
    if "score" in summary:
        lines.append(f"  score         {score_line(summary['score'])}")
    if summary.get("warnings"):
        lines.append(f"  warnings      {len(summary['warnings'])} (printed above)")
    return "\n".join(lines)


def height_line(source: dict[str, Any]) -> str:
    """``PATH (CRS, covers N% of the optical image)`` from a height source record.

    Args:
        source: ``HeightSource.record()`` (keys ``path``, ``crs``, ``coverage``).
    """
    share = f"covers {source['coverage']:.0%} of the optical image"
    return f"{source['path']} ({source['crs']}, {share})"


def geometry_line(geometry: dict[str, Any]) -> str:
    """``incidence 38.5 deg, look azimuth 277.0 deg, ground-projected (option)`` from a geometry
    record.

    Args:
        geometry: ``SarGeometry.to_record()``.
    """
    projection = "ground-projected" if geometry["ground_projected"] else "slant range"
    return (
        f"incidence {geometry['incidence_deg']:.1f} deg, look azimuth "
        f"{geometry['look_azimuth_deg']:.1f} deg, {projection} ({geometry['source']})"
    )


def score_line(score: dict[str, Any]) -> str:
    """``N tiepoints: mean … px (… m), median …, p90 …`` from a score summary.

    Args:
        score: ``TiepointScore.summary()`` (keys ``tiepoints``, ``mean_px``, ``mean_m``, …).
    """
    parts = [f"{k} {score[k + '_px']:.2f} px ({score[k + '_m']:.2f} m)" for k in STATS]
    return f"{score['tiepoints']} tiepoints: " + ", ".join(parts)
