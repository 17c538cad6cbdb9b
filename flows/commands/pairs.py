"""``coalign pairs``: ranked optical/SAR pairs by footprint overlap and acquisition time."""

from __future__ import annotations

import argparse
import json

from flows.commands.scenes import add_discovery_options, find
from flows.options import add_pairing_options, option_time


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pairs", help="rank optical/SAR pairs by overlap and time")
    add_discovery_options(p)
    add_pairing_options(p, defaults=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stac.geojson import pairs_geojson
    from stac.pairing import PairingRules, pair_scenes

    rules = PairingRules(  # bad options fail before any catalog is read
        min_overlap_fraction=args.min_overlap,
        max_gap_days=args.max_gap_days,
        event_date=option_time(args.event_date, "--event-date"),
    )
    scenes, bbox = find(args)
    pairs = pair_scenes(scenes, rules, bbox)
    if args.json:
        print(json.dumps([p.to_json() for p in pairs], indent=1))
        return 0
    if args.geojson:
        print(json.dumps(pairs_geojson(pairs), indent=1))
        return 0
    for p in pairs:
        print(
            f"overlap {p.overlap_fraction:5.1%}  gap {p.gap_days:6.1f} d  {p.optical.id}  ×  "
            f"{p.sar.id}"
        )
    print(f"{len(pairs)} pairs")
    return 0
