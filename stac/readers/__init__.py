"""Scene discovery: static STAC catalogs (Maxar Open Data, Umbra Open Data) and STAC APIs.

Everything is normalised into :class:`stac.scene.Scene` (STAC Item spec 1.x fields plus the
``view``, ``proj`` and ``sar`` extensions): static catalogs are crawled lazily
(:mod:`stac.readers.crawl`), STAC APIs searched (:mod:`stac.readers.search`), and each Item
becomes a scene (:mod:`stac.readers.items`). Umbra's per-product ``*.stac.v2.json`` sidecars
name files of a private bucket; their hrefs are rewritten to the public ``sar-data/tasks/...``
copies.
"""

from __future__ import annotations

import datetime as dt

from core.errors import InputError
from stac.aoi import BBox
from stac.readers.crawl import CrawlStats, crawl_static
from stac.readers.documents import load_json
from stac.readers.items import scene_from_item
from stac.readers.search import search_api
from stac.scene import Scene

__all__ = [
    "CrawlStats",
    "crawl_static",
    "discover",
    "load_json",
    "scene_from_item",
    "search_api",
]


def discover(
    catalogs: list[str] | None = None,
    stac_apis: list[str] | None = None,
    bbox: BBox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
    stats: CrawlStats | None = None,
) -> list[Scene]:
    """Scenes from every static catalog root and STAC API, de-duplicated by id, sorted by time.

    Args:
        catalogs: Static catalog roots (catalog, collection or item JSON).
        stac_apis: STAC API roots.
        bbox: The AOI (WGS84).
        start: The start of the time window.
        end: The end of the time window.
        collections: Narrows STAC API searches (static catalogs: point at the collection).
        stats: Records what the static crawls opened, pruned and could not read.
    """
    if start and end and start > end:
        raise InputError(
            f"the time window starts ({start.isoformat()}) after it ends ({end.isoformat()})"
        )
    found: dict[str, Scene] = {}
    for root in catalogs or []:
        for s in crawl_static(root, bbox, start, end, stats=stats):
            found.setdefault(s.id, s)
    for url in stac_apis or []:
        for s in search_api(url, bbox, start, end, collections):
            found.setdefault(s.id, s)
    return sorted(found.values(), key=lambda s: (s.datetime, s.id))
