"""DEM discovery: the elevation item of a STAC collection that best covers a pair's footprint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from stac.readers import discover
from stac.scene import Scene

log = logging.getLogger(__name__)

# Copernicus DEM GLO-30 (30 m COG tiles of 1° × 1°): its collection id on public STAC APIs
# (Earth Search, Microsoft Planetary Computer); GLO-90 is ``cop-dem-glo-90``
DEFAULT_DEM_COLLECTION = "cop-dem-glo-30"


@dataclass(frozen=True)
class DemItem:
    """A DEM found in a catalog: the Item's id and collection, its GeoTIFF asset, and how much of
    the pair's footprint it covers."""

    id: str
    collection: str
    href: str
    checksum: str | None
    item_href: str | None
    coverage: float

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable record (flow parameters)."""
        return dict(self.__dict__)


def _share(dem: BaseGeometry, area: BaseGeometry) -> float:
    return float(dem.intersection(area).area / area.area) if area.area > 0 else 0.0


def pick_dem(scenes: list[Scene], footprint: BaseGeometry, collection: str) -> DemItem | None:
    """The Item of ``collection`` among ``scenes`` that covers the most of ``footprint`` (WGS84);
    None when none overlaps it. Ties go to the first by id.

    Args:
        scenes: Items as the discovery code normalises them (:func:`stac.readers.discover`).
        footprint: The pair's footprint, WGS84.
        collection: The DEM collection id.
    """
    best: DemItem | None = None
    for s in sorted(scenes, key=lambda s: s.id):
        if s.collection != collection:
            continue
        share = _share(s.footprint, footprint)
        if share > 0 and (best is None or share > best.coverage):
            best = DemItem(s.id, collection, s.href, s.checksum, s.item_href, round(share, 4))
    return best


def find_dem(
    footprint: BaseGeometry | dict[str, Any],
    collection: str = DEFAULT_DEM_COLLECTION,
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
) -> DemItem | None:
    """The DEM Item over ``footprint`` in the static catalogs and STAC APIs (the discovery code
    of the scenes: no time window, the STAC API search narrowed to ``collection``).

    Args:
        footprint: The pair's footprint, WGS84 (a geometry or GeoJSON).
        collection: The DEM collection id, e.g. ``cop-dem-glo-30``.
        catalogs: Static catalog roots (paths or URLs).
        stac_apis: STAC API roots.

    Raises:
        CatalogError: A catalog or STAC API cannot be read or searched.
    """
    area = shape(footprint) if isinstance(footprint, dict) else footprint
    scenes = discover(catalogs, stac_apis, area.bounds, None, None, [collection])
    dem = pick_dem(scenes, area, collection)
    if dem is None:
        bounds = tuple(round(v, 5) for v in area.bounds)
        log.warning(
            "no %s item over %s in %s", collection, bounds, (catalogs or []) + (stac_apis or [])
        )
    elif dem.coverage < 1.0:
        log.warning(
            "DEM %s covers %.0f%% of the pair (one item is used)", dem.id, 100 * dem.coverage
        )
    return dem
