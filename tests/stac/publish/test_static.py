"""The static catalog sink: self-contained, valid, idempotent, atomic, safe under concurrent
publishers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import shutil
from pathlib import Path

import pystac
import pytest

from core.errors import CatalogError, InputError
from stac import schemas
from stac.publish import PublishedPair, build_item, publish_static

from .conftest import SCORE, published_pair, write_products


def stac_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))


def assert_valid_self_contained(root: Path) -> None:
    """Every document validates; every href is relative and resolves inside ``root``; no self
    links."""
    for path in stac_files(root):
        doc = json.loads(path.read_text())
        schemas.validate(doc, what=str(path))
        hrefs = [link["href"] for link in doc["links"] if link["rel"] != "derived_from"]
        hrefs += [a["href"] for a in doc.get("assets", {}).values()]
        assert not any(link["rel"] == "self" for link in doc["links"]), path
        for href in hrefs:
            assert not href.startswith(("/", "file:", "http:", "https:")), (path, href)
            target = (path.parent / href).resolve()
            assert target.is_file() and target.is_relative_to(root.resolve()), (path, href)


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_catalog_layout_and_self_containment(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    a = published_pair(write_products(tmp_path / "a"))
    b = published_pair(write_products(tmp_path / "b", dx=5.0), pair_suffix="-b")
    c = published_pair(write_products(tmp_path / "c"), activation="vanuatu-2023")
    paths = [publish_static(build_item(p), root) for p in (a, b, c)]
    assert paths[0] == root / "turkey-2023" / a.item_id / f"{a.item_id}.json"
    assert all(p.is_file() for p in paths)
    assert_valid_self_contained(root)

    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    assert sorted(child.id for child in catalog.get_children()) == ["turkey-2023", "vanuatu-2023"]
    turkey = catalog.get_child("turkey-2023")
    assert isinstance(turkey, pystac.Collection)
    items = list(turkey.get_items())
    assert sorted(i.id for i in items) == sorted([a.item_id, b.item_id])
    # the extent covers its items (bbox and start..end times)
    bbox = turkey.extent.spatial.bboxes[0]
    for item in items:
        assert (
            bbox[0] <= item.bbox[0]
            and bbox[1] <= item.bbox[1]
            and bbox[2] >= item.bbox[2]
            and bbox[3] >= item.bbox[3]
        )
    start, end = turkey.extent.temporal.intervals[0]
    assert (
        start == items[0].common_metadata.start_datetime
        and end == items[0].common_metadata.end_datetime
    )
    # assets were copied next to their item, bytes intact
    item = next(turkey.get_items(a.item_id))
    for asset in item.assets.values():
        copied = Path(asset.get_absolute_href())
        assert copied.parent == paths[0].parent
        assert (
            "1220" + hashlib.sha256(copied.read_bytes()).hexdigest()
            == asset.extra_fields["file:checksum"]
        )


def test_moved_catalog_still_resolves(tmp_path: Path, pair: PublishedPair) -> None:
    root = tmp_path / "catalog"
    publish_static(build_item(pair), root)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    catalog = pystac.Catalog.from_file(str(moved / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert len(items) == 1
    for asset in items[0].assets.values():
        assert Path(asset.get_absolute_href()).is_file()
    assert_valid_self_contained(moved)


def test_republishing_replaces_the_item(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    first = published_pair(write_products(tmp_path / "run1", dx=3.0))
    item_path = publish_static(build_item(first), root)
    before = json.loads(item_path.read_text())

    # a rerun of the same pair and method: new products, a new score, no residuals any more
    rerun_outputs = write_products(tmp_path / "run2", dx=7.0, with_residuals=False)
    second = dataclasses.replace(first, outputs=rerun_outputs, score={**SCORE, "mean_px": 1.5})
    assert publish_static(build_item(second), root) == item_path
    assert publish_static(build_item(second), root) == item_path  # and once more, unchanged

    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert [i.id for i in items] == [first.item_id]
    collection = json.loads((root / "turkey-2023" / "collection.json").read_text())
    assert [link["rel"] for link in collection["links"]].count("item") == 1
    after = json.loads(item_path.read_text())
    assert (
        before["properties"]["coalign:score_mean_px"] == 2.5
        and after["properties"]["coalign:score_mean_px"] == 1.5
    )
    assert (
        after["assets"]["displacement"]["file:checksum"]
        != before["assets"]["displacement"]["file:checksum"]
    )
    assert "residuals" not in after["assets"] and not (item_path.parent / "residuals.csv").exists()
    assert len(stac_files(root)) == 3  # catalog, collection, one item
    assert_valid_self_contained(root)


def test_assets_can_be_referenced_instead_of_copied(tmp_path: Path, pair: PublishedPair) -> None:
    root = tmp_path / "catalog"
    item_path = publish_static(build_item(pair), root, copy_assets=False)
    doc = json.loads(item_path.read_text())
    for key, asset in doc["assets"].items():
        assert not asset["href"].startswith("/")
        assert (item_path.parent / asset["href"]).resolve() == pair.outputs[key].resolve()
    assert sorted(p.name for p in item_path.parent.iterdir()) == [item_path.name]
    for path in stac_files(root):
        schemas.validate(json.loads(path.read_text()))


def test_invalid_item_leaves_the_catalog_untouched(tmp_path: Path, pair: PublishedPair) -> None:
    root = tmp_path / "catalog"
    publish_static(build_item(pair), root)
    before = snapshot(root)
    bad = build_item(pair)
    bad["properties"]["proj:epsg"] = 32637  # removed in projection v2.0.0
    with pytest.raises(CatalogError, match="proj:epsg"):
        publish_static(bad, root)
    orphan = build_item(pair)
    del orphan["collection"]
    orphan["links"] = [link for link in orphan["links"] if link["rel"] != "collection"]
    with pytest.raises(InputError, match="no collection"):
        publish_static(orphan, root)
    assert snapshot(root) == before
    assert not list(root.rglob("*.tmp"))


def test_damaged_catalog_is_reported(tmp_path: Path, pair: PublishedPair) -> None:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog.json").write_text("{ not json")
    with pytest.raises(CatalogError, match="cannot read the existing catalog"):
        publish_static(build_item(pair), root)


def _publish_one(args: tuple[str, str, str]) -> str:
    folder, root, suffix = args
    pair = published_pair(write_products(Path(folder)), pair_suffix=suffix)
    return str(publish_static(build_item(pair), root))


def test_concurrent_publishers_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    jobs = [(str(tmp_path / f"p{i}"), str(root), f"-{i}") for i in range(4)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        paths = pool.map(_publish_one, jobs)
    assert all(Path(p).is_file() for p in paths)
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    assert len(list(catalog.get_items(recursive=True))) == 4
    assert_valid_self_contained(root)
