"""Scenes from a STAC API item search (pystac-client), page by page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import requests

from core.errors import CatalogError
from stac.aoi import BBox
from stac.links import trusted_link
from stac.readers.items import scene_from_item
from stac.scene import Scene


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _self_href(item: Any, api: str) -> str:
    """An API Item's ``self`` link, checked against the API's origin; empty without one."""
    links = item.get("links") if isinstance(item, dict) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "self" and link.get("href"):
            return trusted_link(api, link["href"], "self link")
    return ""


def _api_error(exc: Exception) -> str:
    """One line for a pystac-client ``APIError``: its HTTP status, or the first line of its text.

    ``APIError`` carries the response body (often a whole HTML page) as its message.
    """
    from http import HTTPStatus

    status = getattr(exc, "status_code", None)
    if status:
        try:
            return f"HTTP {status} {HTTPStatus(status).phrase}"
        except ValueError:
            return f"HTTP {status}"
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return (lines[0][:200] if lines else type(exc).__name__) + (" …" if len(lines) > 1 else "")


def search_api(
    url: str,
    bbox: BBox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collections: list[str] | None = None,
    limit: int = 100,
    max_items: int | None = None,
) -> Iterator[Scene]:
    """Scenes from a STAC API ``/search`` (STAC API Item Search 1.0: bbox, datetime,
    collections), following ``next`` links page by page (pystac-client).

    Args:
        url: The STAC API root.
        bbox: The AOI (WGS84).
        start: The start of the time window.
        end: The end of the time window.
        collections: Only these collections.
        limit: Items per page.
        max_items: Items in all (None: every match).

    Raises:
        CatalogError: ``url`` is no STAC API with item search, or the search failed.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.warnings import DoesNotConformTo

    datetime = (
        f"{_rfc3339(start) if start else '..'}/{_rfc3339(end) if end else '..'}"
        if (start or end)
        else None
    )
    try:
        client = Client.open(url)
        search = client.search(
            bbox=list(bbox) if bbox else None,
            datetime=datetime,
            collections=collections or None,
            limit=limit,
            max_items=max_items,
        )
        for item in search.items_as_dicts():
            scene = scene_from_item(item, _self_href(item, url), source=url)
            if scene:
                yield scene
    except DoesNotConformTo as exc:
        raise CatalogError(
            f"{url} is not a STAC API with item search ({exc}); give it with --catalog if it is "
            "a static catalog"
        ) from None
    except APIError as exc:
        raise CatalogError(f"STAC API {url} search failed: {_api_error(exc)}") from None
    except requests.RequestException as exc:
        raise CatalogError(f"STAC API {url} search failed: {str(exc)[:300]}") from None
