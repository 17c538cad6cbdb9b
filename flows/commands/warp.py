"""``coalign warp OPTICAL DISP -o ALIGNED.tif``: the optical image moved into alignment with the
SAR."""

from __future__ import annotations

import argparse
import json

from flows.options import add_json_option, add_overwrite_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "warp",
        help="resample the optical image by a displacement map (aligned optical COG)",
        description="Resample OPTICAL by an SN9 displacement map so it lines up with the SAR; "
        "writes a COG on the optical grid.",
    )
    p.add_argument("optical", help="optical GeoTIFF")
    p.add_argument("displacement", help="SN9 displacement map made for this optical image")
    p.add_argument("-o", "--output", required=True, help="aligned optical COG to write")
    add_overwrite_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Warp the optical image, print where it went (text, or JSON with ``--json``)."""
    from flows.progress import CliProgress
    from models.cog import COG, check_outputs
    from models.warp import warp_optical

    check_outputs(
        {"-o": args.output},
        {"OPTICAL": args.optical, "DISPLACEMENT": args.displacement},
        overwrite=args.overwrite,
        formats={"-o": COG},
    )
    progress = CliProgress()
    out = warp_optical(args.optical, args.displacement, args.output, progress=progress)
    progress.close()
    print(json.dumps({"output": str(out)}) if args.json else f"aligned optical  {out}")
    return 0
