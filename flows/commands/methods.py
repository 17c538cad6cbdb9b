"""``coalign methods``: the registration methods, their versions, default settings and the
valid values of each setting."""

from __future__ import annotations

import argparse
import json

from models.method_names import DEFAULT_METHOD


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list registration methods and their settings")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the methods with their versions and settings (text, or JSON with ``--json``)."""
    from models.methods import list_methods

    infos = list_methods()
    if args.json:
        print(json.dumps([i.__dict__ for i in infos], indent=2))
        return 0
    for info in infos:
        default = " (default)" if info.name == DEFAULT_METHOD else ""
        print(f"{info.name} {info.version}{default}\n  {info.description}")
        for k, v in info.defaults.items():
            print(f"    {k} = {v}    ({info.valid[k]})")
    return 0
