"""The static catalog sink: a self-contained STAC catalog on disk, one collection per activation."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO

from core.errors import CatalogError, InputError
from core.files import copy_atomic, locked, write_atomic
from stac import schemas
from stac.publish.items import (
    as_item,
    build_collection,
    collection_license,
    item_document,
    set_license,
)
from stac.publish.view import write_view

LOCK_NAME = ".coalign-publish.lock"


class _CollectingIO(DefaultStacIO):
    """Collects what pystac would write, so every document is validated before any is written."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, str] = {}

    def write_text_to_href(self, href: str, txt: str) -> None:
        self.documents[href] = txt


def _open_catalog(cat_path: Path) -> pystac.Catalog:
    """The catalog at ``cat_path``, or a new empty one when there is none."""
    if not cat_path.exists():
        return pystac.Catalog(
            id="coalign",
            title="coalign",
            description="Optical images aligned to SAR by coalign, "
            "with displacement maps (SpaceNet 9 convention), confidence and QA pictures.",
        )
    try:
        return pystac.Catalog.from_file(str(cat_path))
    except Exception as exc:  # pystac raises several types for a damaged file
        raise CatalogError(
            f"cannot read the existing catalog {cat_path}: {exc}; move it away or fix it"
        ) from exc


def _place_assets(item: pystac.Item, item_dir: Path, copy_assets: bool) -> set[str]:
    """Copy (or reference) the Item's local asset files; the names kept in ``item_dir``."""
    kept: set[str] = {f"{item.id}.json"}
    for key, asset in item.assets.items():
        href = asset.get_absolute_href() or asset.href
        if re.match(r"^[a-z][a-z0-9+.-]*://", href) and not href.startswith("file://"):
            continue  # remote asset: referenced as it is
        src = Path(href.removeprefix("file://"))
        if not src.is_file():
            raise InputError(f"STAC Item {item.id!r}: asset {key!r} file {src} does not exist")
        if copy_assets:
            dst = item_dir / f"{key}{src.suffix.lower()}"
            copy_atomic(src, dst)
            asset.href = str(dst)
            kept.add(dst.name)
        else:
            asset.href = str(src.resolve())
    return kept


def _save(catalog: pystac.Catalog) -> None:
    """Validate every document of ``catalog``, then write each atomically."""
    io = _CollectingIO()
    catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=io)
    for href, text in io.documents.items():
        schemas.validate(json.loads(text), what=href)
    for href, text in io.documents.items():
        write_atomic(Path(href), text.encode("utf-8"))


def _drop_stale(item_dir: Path, kept: set[str]) -> None:
    """Delete outputs a previous run published but this one did not (e.g. residuals without
    tiepoints)."""
    if item_dir.is_dir():
        for stale in item_dir.iterdir():
            if stale.is_file() and stale.name not in kept and not stale.name.startswith("."):
                stale.unlink()


def publish_static(
    item: pystac.Item | Mapping[str, Any],
    root: str | os.PathLike[str],
    *,
    copy_assets: bool = True,
    description: str | None = None,
    license: str | None = None,
) -> Path:
    """Add (or replace) ``item`` in the self-contained static catalog at ``root``; returns the
    Item's path.

    Layout (STAC best practices): ``root/catalog.json`` → ``root/<activation>/collection.json`` →
    ``root/<activation>/<item id>/<item id>.json``, with every href relative
    (``CatalogType.SELF_CONTAINED``). Assets are copied next to their Item as ``<key><suffix>``
    (``copy_assets=False`` references the files where they are, by relative path). Re-publishing
    an Item id replaces it; the collection extent and license are recomputed from its items (the
    license: every source license applies, :func:`stac.publish.items.collection_license`). Every
    document is validated before any is written, each is written atomically, and the catalog is
    locked while it is updated. The HTML view (``index.html`` of the catalog and of each
    collection, :mod:`stac.publish.view`) is rewritten after each update.

    Args:
        item: The Item (as :func:`stac.publish.build_item` makes it).
        root: The catalog folder.
        copy_assets: Copy the asset files into the catalog.
        description: The description of a new collection.
        license: The license of the collection (default: that of its items' sources).
    """
    root = Path(root).resolve()
    new = as_item(item)
    activation = new.collection_id
    if not activation:
        raise InputError(
            f"STAC Item {new.id!r} has no collection (activation); cannot place it in a catalog"
        )
    schemas.validate(item_document(new), what=f"STAC Item {new.id!r}")
    # pairs of one activation publish concurrently: one writer per catalog at a time
    with locked(root / LOCK_NAME):
        cat_path = root / "catalog.json"
        catalog = _open_catalog(cat_path)
        collection = catalog.get_child(activation)
        if collection is not None and not isinstance(collection, pystac.Collection):
            raise CatalogError(f"{cat_path}: child {activation!r} is a Catalog, not a Collection")
        item_dir = root / activation / new.id
        kept = _place_assets(new, item_dir, copy_assets)
        if collection is None:
            collection = build_collection(activation, [new], description, license)
            catalog.add_child(collection)
        elif any(True for _ in collection.get_items(new.id)):
            collection.remove_item(new.id)
        collection.add_item(new)
        collection.update_extent_from_items()
        if license is None:
            set_license(collection, collection_license(list(collection.get_items())))
        catalog.normalize_hrefs(str(root), skip_unresolved=True)
        new.make_asset_hrefs_relative()
        _save(catalog)
        _drop_stale(item_dir, kept)
        write_view(root)
    return item_dir / f"{new.id}.json"
