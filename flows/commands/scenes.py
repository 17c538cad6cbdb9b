"""``coalign scenes``: list the optical and SAR scenes of catalogs/APIs over an AOI and time
window."""

from __future__ import annotations

import argparse
import json

from core.errors import InputError
from flows.options import add_search_options, option_time
from stac.aoi import parse_bbox


def add_discovery_options(p: argparse.ArgumentParser) -> None:
    """The scene options of ``coalign scenes`` and ``coalign pairs`` (AOI and window required),
    ``--json`` and ``--geojson``.

    Args:
        p: The command's parser.
    """
    add_search_options(p, required=True)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON array")
    out.add_argument(
        "--geojson",
        action="store_true",
        help="print a GeoJSON FeatureCollection (WGS84) for a GIS: save it as a .geojson file",
    )


def find(args: argparse.Namespace):
    """The scenes the discovery options select, and the AOI."""
    from stac.readers import discover

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
    """List the scenes (text, ``--json`` rows or a ``--geojson`` FeatureCollection)."""
    from stac.geojson import scenes_geojson

    scenes, _ = find(args)
    if args.json:
        print(json.dumps([s.to_json() for s in scenes], indent=1))
        return 0
    if args.geojson:
        print(json.dumps(scenes_geojson(scenes), indent=1))
        return 0
    for s in scenes:
        print(
            f"{s.datetime:%Y-%m-%d %H:%M} {s.sensor:<7} {s.platform or '-':<10} gsd "
            f"{s.gsd or 0:5.2f} {s.crs or '-':<11} {s.id}"
        )
    print(f"{len(scenes)} scenes")
    return 0
