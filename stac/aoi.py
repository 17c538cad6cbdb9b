"""The area of interest: one parser for the WGS84 bounding boxes of the command line and flows."""

from __future__ import annotations

import json
import math
from typing import Any

from core.errors import InputError

BBox = tuple[float, float, float, float]

FORMAT = (
    "the AOI as minx,miny,maxx,maxy in WGS84 degrees (e.g. -118.7,34.0,-118.5,34.2) "
    "or a GeoJSON geometry"
)


def _numbers(aoi: str | list[Any] | tuple[Any, ...] | dict[str, Any]) -> list[float]:
    """The four numbers an AOI gives, before range checks."""
    if isinstance(aoi, str):
        text = aoi.strip()
        aoi = json.loads(text) if text.startswith(("{", "[")) else text.split(",")
    if isinstance(aoi, dict):
        from shapely.geometry import shape

        geometry = shape(aoi.get("geometry", aoi))
        if geometry.is_empty:
            raise ValueError("the geometry is empty")
        return list(geometry.bounds)
    if not isinstance(aoi, (list, tuple)):
        raise TypeError(f"expected text, a list or a GeoJSON object, not {type(aoi).__name__}")
    values = [float(v) for v in aoi]
    if len(values) != 4:
        raise ValueError(f"{len(values)} numbers instead of 4")
    return values


def parse_bbox(
    aoi: str | list[Any] | tuple[Any, ...] | dict[str, Any] | None, what: str = "--bbox"
) -> BBox | None:
    """A range-checked WGS84 bbox ``(minx, miny, maxx, maxy)``; ``None`` when no AOI is given.

    Accepts ``"minx,miny,maxx,maxy"``, a list of four numbers, or a GeoJSON geometry or Feature
    (as a dict or JSON text; its bounds). Longitudes must lie within -180..180, latitudes within
    -90..90, with ``minx < maxx`` and ``miny < maxy``; an AOI across the antimeridian is not
    supported (split it into one AOI each side).

    Args:
        aoi: The AOI as given.
        what: Where it came from, for the error message (``--bbox``, ``AOI``).

    Raises:
        InputError: The AOI is not four finite numbers in range, in that order.
    """
    if aoi is None or (isinstance(aoi, (str, list, tuple, dict)) and not aoi):
        return None
    try:
        minx, miny, maxx, maxy = _numbers(aoi)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"{what} {str(aoi)[:200]!r}: give {FORMAT} ({exc})") from None
    shown = f"{what} {minx:g},{miny:g},{maxx:g},{maxy:g}"
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise InputError(f"{shown}: every value must be a finite number")
    limits = (("minx", minx, 180), ("miny", miny, 90), ("maxx", maxx, 180), ("maxy", maxy, 90))
    for name, v, limit in limits:
        if not -limit <= v <= limit:
            kind = "longitude" if name.endswith("x") else "latitude"
            raise InputError(
                f"{shown}: {name} {v:g} is not a {kind} (-{limit}..{limit}); the order is "
                "minx,miny,maxx,maxy (lon,lat,lon,lat)"
            )
    if minx >= maxx:
        raise InputError(
            f"{shown}: expected minx < maxx (west edge first; an AOI across the antimeridian "
            "is not supported: split it into one AOI each side)"
        )
    if miny >= maxy:
        raise InputError(f"{shown}: expected miny < maxy (south edge first)")
    return minx, miny, maxx, maxy
