"""``coalign scenes``: list the optical and SAR scenes of catalogs/APIs over an AOI and time
window."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re

from core.errors import InputError
from flows.activation import parse_time
from stac.aoi import parse_bbox
from stac.readers import discover

TIME_FORMATS = "YYYY-MM-DD, or a full date and time such as 2023-02-06T01:17:00Z"


def allow_negative_values(p: argparse.ArgumentParser) -> None:
    """Let option values start with ``-`` and a digit (``--bbox -118.7,34.0,-118.5,34.2``).

    argparse takes such a token for an unknown option unless it is a plain number; this parser
    reads any ``-<digit>`` or ``-.<digit>`` token as a value. The parser must not define options
    that look like negative numbers (``-1``). ``--bbox=-118.7,...`` works with any parser.
    """
    p._negative_number_matcher = re.compile(r"^-\.?\d")


def option_time(value: str | None, option: str) -> dt.datetime | None:
    """An aware datetime from a command-line option (UTC when no zone is given); ``None`` when
    the option is not given.

    Args:
        value: The option's text.
        option: The option's name, for the error message.

    Raises:
        InputError: ``value`` is not an ISO 8601 date or date and time.
    """
    try:
        return parse_time(value)
    except ValueError:
        raise InputError(
            f"{option} {value!r}: not an ISO 8601 date/time; give {TIME_FORMATS}"
        ) from None


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
    p.add_argument(
        "--bbox",
        required=True,
        help="AOI minx,miny,maxx,maxy in WGS84 degrees, e.g. -118.7,34.0,-118.5,34.2",
    )
    p.add_argument("--start", required=True, help=f"window start (ISO 8601: {TIME_FORMATS})")
    p.add_argument("--end", required=True, help=f"window end (ISO 8601: {TIME_FORMATS})")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    allow_negative_values(p)


def find(args: argparse.Namespace):
    """The scenes the discovery options select, and the AOI."""
    if not args.catalog and not args.stac_api:
        raise InputError("give at least one --catalog or --stac-api")
    bbox = parse_bbox(args.bbox)
    start, end = option_time(args.start, "--start"), option_time(args.end, "--end")
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
