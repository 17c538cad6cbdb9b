"""Command-line options shared by several commands, declared once: scene search, pairing,
working directory, and the checks of their values."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from core.errors import InputError
from core.times import parse_time
from stac.pairing_defaults import MAX_GAP_DAYS, MIN_OVERLAP

WORKDIR_HELP = "working directory of all outputs (default $COALIGN_WORKDIR or ./coalign-work)"

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


def add_search_options(p: argparse.ArgumentParser, required: bool) -> None:
    """The options that choose scenes: catalogs, STAC APIs, collections, AOI, time window.

    Args:
        p: The command's parser.
        required: Whether ``--bbox``, ``--start`` and ``--end`` must be given.
    """
    p.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="URL_OR_PATH",
        help="static STAC catalog root (repeatable)",
    )
    p.add_argument(
        "--stac-api",
        action="append",
        default=[],
        metavar="URL",
        help="STAC API to search (repeatable)",
    )
    p.add_argument(
        "--collection",
        action="append",
        default=[],
        help="STAC API collection to search (repeatable)",
    )
    p.add_argument(
        "--bbox",
        required=required,
        help="AOI: minx,miny,maxx,maxy in WGS84 degrees (e.g. -118.7,34.0,-118.5,34.2), "
        "or a GeoJSON geometry",
    )
    p.add_argument(
        "--start", required=required, help=f"acquisition window start (ISO 8601: {TIME_FORMATS})"
    )
    p.add_argument(
        "--end", required=required, help=f"acquisition window end (ISO 8601: {TIME_FORMATS})"
    )
    allow_negative_values(p)


def add_pairing_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """The options that pair scenes: event date, longest time gap, smallest overlap.

    Args:
        p: The command's parser.
        defaults: Whether an option not given takes the pairing default
            (``stac.pairing_defaults.MAX_GAP_DAYS``, ``MIN_OVERLAP``) or stays None (the activation
            flow's or a deployment's default then applies).
    """
    p.add_argument(
        "--event-date",
        help=f"when the disaster struck: pre-event optical, post-event SAR (ISO 8601: "
        f"{TIME_FORMATS})",
    )
    p.add_argument(
        "--max-gap-days",
        type=float,
        default=MAX_GAP_DAYS if defaults else None,
        help=f"longest optical-to-SAR time gap of a pair (days; default {MAX_GAP_DAYS:g})",
    )
    p.add_argument(
        "--min-overlap",
        type=float,
        default=MIN_OVERLAP if defaults else None,
        help="smallest footprint overlap of a pair (fraction of the smaller footprint; "
        f"default {MIN_OVERLAP:g})",
    )


def add_overwrite_option(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: replace outputs that exist (without it a command refuses them).

    Args:
        p: The command's parser.
    """
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files that exist (without it the command refuses them)",
    )


def add_json_option(p: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON line for machines instead of the text summary.

    Args:
        p: The command's parser.
    """
    p.add_argument(
        "--json", action="store_true", help="print one JSON line instead of the text summary"
    )
