"""The ``coalign`` command line.

Each sub-command lives in ``flows/commands/<name>.py`` and exposes
``add_parser(subparsers)`` which registers itself with ``set_defaults(run=...)``;
``run(args) -> int`` returns the exit code. Errors derived from
:class:`models.errors.CoalignError` print one clear line and exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from flows import commands
from models.errors import CoalignError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalign",
        description="Align optical imagery to SAR: register, score, discover and publish.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"flows.commands.{info.name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except CoalignError as exc:
        print(f"coalign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
