"""The STAC API sink: Items created or updated through the Transaction extension."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pystac

from core.errors import InputError
from stac import schemas
from stac.publish.items import as_item, build_collection
from stac.transaction import TransactionClient

HIERARCHICAL = {"self", "root", "parent", "child", "item", "collection"}


@dataclass(frozen=True)
class PublicFolder:
    """A local folder and the address under which it is served (a published static catalog)."""

    root: Path
    url: str

    def url_of(self, href: str) -> str:
        """The public URL of a local file ``href`` under :attr:`root`.

        Args:
            href: An absolute local path (or ``file://`` URL) of a file under the folder.

        Raises:
            InputError: ``href`` is outside the folder.
        """
        path = Path(href.removeprefix("file://")).resolve()
        root = self.root.resolve()
        if not path.is_relative_to(root):
            raise InputError(
                f"asset {href} is outside the published folder {root}; publish the Item to the "
                "static catalog first, then to the STAC API"
            )
        return f"{self.url.rstrip('/')}/{quote(path.relative_to(root).as_posix())}"


def _is_url(href: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", href)) and not href.startswith("file:")


def api_document(
    item: pystac.Item | Mapping[str, Any], api_url: str, public: PublicFolder | None = None
) -> dict[str, Any]:
    """The Item as sent to a STAC API at ``api_url``.

    Asset hrefs are public URLs: a local file becomes its address under ``public``; a local file
    without one is refused, so no path of this machine reaches the API. Hierarchical links are left
    to the API except ``collection`` (required by STAC 1.1 with the ``collection`` field), which
    points at the API's collection.

    Args:
        item: The Item.
        api_url: The STAC API root.
        public: Where the Item's local asset files are served (the static catalog folder and
            its URL).

    Raises:
        InputError: An asset is a local file and ``public`` does not serve it.
    """
    it = as_item(item)
    for key, asset in it.assets.items():
        href = asset.get_absolute_href() or asset.href
        if not _is_url(href):
            if public is None:
                raise InputError(
                    f"asset {key!r} of STAC Item {it.id!r} is a local file ({href}); a STAC API "
                    "needs a public URL: publish the static catalog and give its address"
                )
            href = public.url_of(href)
        asset.href = href
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
    public: PublicFolder | None = None,
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
        public: Where the Item's local asset files are served (:func:`api_document`).
    """
    doc = api_document(item, url, public)
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
