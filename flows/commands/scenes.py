"""``coalign scenes``: list the optical and SAR scenes of catalogs/APIs over an AOI and time
window."""

from __future__ import annotations

import argparse
import json

from flows.activation import _time, parse_aoi
from stac.readers import discover


def add_discovery_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalog",
        action="append",
        default=[],
        help="static STAC catalog root, path or URL (repeatable)",
    )
    p.add_argument("--stac-api", action="append", default=[], help="STAC API URL (repeatable)")
    p.add_argument(
        "--collection", action="append", default=[], help="STAC API collection id (repeatable)"
    )
    p.add_argument("--bbox", required=True, help="AOI minx,miny,maxx,maxy in WGS84 degrees")
    p.add_argument("--start", required=True, help="window start, ISO 8601")
    p.add_argument("--end", required=True, help="window end, ISO 8601")
    p.add_argument("--json", action="store_true", help="print a JSON array")


def find(args: argparse.Namespace):
    from models.errors import InputError

    if not args.catalog and not args.stac_api:
        raise InputError("give at least one --catalog or --stac-api")
    try:
        bbox = parse_aoi(args.bbox)
        start, end = _time(args.start), _time(args.end)
    except ValueError as exc:
        raise InputError(f"bad --bbox/--start/--end: {exc}") from None
    return discover(args.catalog, args.stac_api, bbox, start, end, args.collection or None), bbox


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenes", help="list optical and SAR scenes from STAC catalogs and APIs")
    add_discovery_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    scenes, _ = find(args)
    if args.json:
        print(json.dumps([s.to_json() for s in scenes], indent=1))
        return 0
    for s in scenes:
        print(
            f"{s.datetime:%Y-%m-%d %H:%M} {s.sensor:<7} {s.platform or '-':<10} gsd {s.gsd or 0:5.2f} {s.crs or '-':<11} {s.id}"
        )
    print(f"{len(scenes)} scenes")
    return 0
