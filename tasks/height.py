"""Prefect task over ``stac.dem``: find the DEM item over a pair in the activation's catalogs."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from shapely.geometry import mapping

from stac.pairing import Pair
from tasks.catalog import NETWORK_RETRIES, _transient


@task(name="find-dem", **NETWORK_RETRIES, retry_condition_fn=_transient)
def find_dem(
    footprint: dict[str, Any],
    collection: str,
    catalogs: list[str],
    stac_apis: list[str],
) -> dict[str, Any] | None:
    """The record (``stac.dem.DemItem.to_record``) of the ``collection`` item covering most of
    ``footprint`` (GeoJSON, WGS84) in the static catalogs and STAC APIs; None when none overlaps.

    Args:
        footprint: The pair's optical footprint, GeoJSON in WGS84.
        collection: The DEM collection, e.g. ``cop-dem-glo-30``.
        catalogs: Static catalog roots.
        stac_apis: STAC API roots.
    """
    from stac.dem import find_dem as find

    dem = find(footprint, collection, catalogs, stac_apis)
    log = get_run_logger()
    if dem is None:
        log.warning("no %s item over the pair: it is registered without height", collection)
        return None
    log.info("DEM %s (%s) covers %.0f%% of the pair", dem.id, dem.href, 100 * dem.coverage)
    return dem.to_record()


def pair_dems(
    pairs: list[Pair],
    dem: str | None,
    collection: str | None,
    catalogs: list[str],
    stac_apis: list[str],
) -> dict[str, dict[str, Any]]:
    """The register-pair DEM parameters (``dem``, ``dem_checksum``) of each pair by pair id:
    ``dem`` for every pair, else the ``collection`` item :func:`find_dem` finds over each pair's
    optical footprint (pairs without one are left out); empty without either.

    Args:
        pairs: The activation's pairs.
        dem: One DSM/DEM path or URL for every pair.
        collection: The DEM collection to search when ``dem`` is not given.
        catalogs: Static catalog roots to search.
        stac_apis: STAC API roots to search.
    """
    if dem:
        return {p.id: {"dem": dem} for p in pairs}
    if not collection:
        return {}
    found = {}
    for p in pairs:
        item = find_dem(mapping(p.optical.footprint), collection, catalogs, stac_apis)
        if item:
            found[p.id] = {"dem": item["href"], "dem_checksum": item["checksum"]}
    return found
