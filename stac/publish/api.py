"""The STAC API sink: Items created or updated through the Transaction extension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pystac

from core.errors import InputError
from stac import schemas
from stac.publish.items import as_item, build_collection
from stac.transaction import TransactionClient

HIERARCHICAL = {"self", "root", "parent", "child", "item", "collection"}


def api_document(item: pystac.Item | Mapping[str, Any], api_url: str) -> dict[str, Any]:
    """The Item as sent to a STAC API at ``api_url``.

    Asset hrefs are absolute; hierarchical links are left to the API except ``collection``
    (required by STAC 1.1 with the ``collection`` field), which points at the API's collection.
    """
    it = as_item(item)
    for asset in it.assets.values():
        asset.href = asset.get_absolute_href() or asset.href
    doc = it.to_dict(include_self_link=False, transform_hrefs=False)
    if not doc.get("collection"):
        raise InputError(
            f"STAC Item {doc.get('id')!r} has no collection (activation); a STAC API stores "
            "items in collections"
        )
    doc["links"] = [
        link for link in doc.get("links", []) if link.get("rel") not in HIERARCHICAL
    ] + [
        {
            "rel": "collection",
            "href": f"{api_url.rstrip('/')}/collections/{doc['collection']}",
            "type": "application/json",
        }
    ]
    return doc


def publish_api(
    item: pystac.Item | Mapping[str, Any],
    url: str,
    *,
    description: str | None = None,
    license: str | None = None,
    client: TransactionClient | None = None,
) -> str:
    """Create or update ``item`` through a STAC API Transaction endpoint; ``"created"`` or
    ``"updated"``.

    The activation's collection is created when missing and its extent widened to cover the item.

    Args:
        item: The Item (as :func:`stac.publish.build_item` makes it).
        url: The STAC API root.
        description: The description of a new collection.
        license: The license of a new collection (default: that of the item's sources).
        client: The Transaction client (default: one for ``url``).
    """
    doc = api_document(item, url)
    schemas.validate(doc, what=f"STAC Item {doc.get('id')!r}")
    collection = build_collection(
        doc["collection"], [pystac.Item.from_dict(doc)], description, license
    )
    col_doc = collection.to_dict(include_self_link=False, transform_hrefs=False)
    col_doc["links"] = []
    schemas.validate(col_doc, what=f"STAC Collection {collection.id!r}")
    api = client or TransactionClient(url)
    api.ensure_collection(col_doc)
    return api.upsert_item(doc)
