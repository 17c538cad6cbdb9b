"""Licenses: read from the sources, combined into the product Item and its collection."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stac import schemas
from stac.licenses import SourceLicense, combine, document_license, license_url
from stac.publish import PublishedPair, build_item, publish_static
from stac.readers import crawl_static, scene_from_item

from .conftest import published_pair, write_products

BY_NC = "https://creativecommons.org/licenses/by-nc/4.0/"
BY = "https://creativecommons.org/licenses/by/4.0/"


def licensed(pair: PublishedPair, optical: str | None, sar: str | None) -> PublishedPair:
    def lic(scene, spdx):
        return dataclasses.replace(
            scene, license=spdx, license_href=license_url(spdx) if spdx else None
        )

    return dataclasses.replace(pair, optical=lic(pair.optical, optical), sar=lic(pair.sar, sar))


def license_links(doc: dict) -> dict[str, str]:
    return {link["href"]: link.get("title") for link in doc["links"] if link["rel"] == "license"}


def test_license_urls() -> None:
    assert license_url("CC-BY-NC-4.0") == BY_NC and license_url("CC-BY-4.0") == BY
    assert license_url("CC-BY-NC-SA-4.0") == "https://creativecommons.org/licenses/by-nc-sa/4.0/"
    assert license_url("CC0-1.0") == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert license_url("MIT") == "https://spdx.org/licenses/MIT.html"


def test_combining_source_licenses() -> None:
    nc, by = SourceLicense("CC-BY-NC-4.0", BY_NC), SourceLicense("CC-BY-4.0", BY)
    same = combine([by, by])
    assert (same.value, same.expression, same.links) == (
        "CC-BY-4.0",
        "CC-BY-4.0",
        ((BY, "CC-BY-4.0"),),
    )
    both = combine([nc, by])
    # the STAC 1.1.0 schema admits no spaces in `license`: the expression is kept beside it
    assert both.value == "other" and both.expression == "CC-BY-NC-4.0 AND CC-BY-4.0"
    assert both.links == ((BY_NC, "CC-BY-NC-4.0"), (BY, "CC-BY-4.0"))
    unknown = combine([nc, None])
    assert unknown.value == "other" and unknown.expression is None
    assert unknown.links == ((BY_NC, "CC-BY-NC-4.0"),)


def test_item_carries_the_sources_licenses(pair: PublishedPair) -> None:
    doc = build_item(licensed(pair, "CC-BY-NC-4.0", "CC-BY-4.0"))
    schemas.validate(doc)
    props = doc["properties"]
    assert props["license"] == "other"
    assert props["coalign:license_expression"] == "CC-BY-NC-4.0 AND CC-BY-4.0"
    assert license_links(doc) == {BY_NC: "CC-BY-NC-4.0", BY: "CC-BY-4.0"}
    one = build_item(licensed(pair, "CC-BY-4.0", "CC-BY-4.0"))
    schemas.validate(one)
    assert one["properties"]["license"] == "CC-BY-4.0"
    assert "coalign:license_expression" not in one["properties"]
    assert license_links(one) == {BY: "CC-BY-4.0"}
    unknown = build_item(pair)  # the fixtures' scenes state no license
    assert unknown["properties"]["license"] == "other" and not license_links(unknown)


def test_collection_license_follows_its_items(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    a = licensed(published_pair(write_products(tmp_path / "a")), "CC-BY-NC-4.0", "CC-BY-4.0")
    publish_static(build_item(a), root)
    path = root / "turkey-2023" / "collection.json"
    collection = json.loads(path.read_text())
    schemas.validate(collection)
    assert collection["license"] == "other"
    assert collection["coalign:license_expression"] == "CC-BY-NC-4.0 AND CC-BY-4.0"
    assert license_links(collection) == {BY_NC: "CC-BY-NC-4.0", BY: "CC-BY-4.0"}
    # a pair whose SAR license is unknown: the collection's license is no longer known in full
    b = licensed(
        published_pair(write_products(tmp_path / "b"), pair_suffix="-b"), "CC-BY-NC-4.0", None
    )
    publish_static(build_item(b), root)
    collection = json.loads(path.read_text())
    schemas.validate(collection)
    assert collection["license"] == "other" and "coalign:license_expression" not in collection
    assert license_links(collection) == {BY_NC: "CC-BY-NC-4.0", BY: "CC-BY-4.0"}
    # alone in its collection, the partly known item keeps the license it knows, by name
    c = dataclasses.replace(b, activation="other-event")
    publish_static(build_item(c), root)
    alone = json.loads((root / "other-event" / "collection.json").read_text())
    assert alone["license"] == "other" and license_links(alone) == {BY_NC: "CC-BY-NC-4.0"}


def test_readers_find_the_license(sample_catalogs, shared_data: Path) -> None:
    # a Collection's license is inherited by the Items reached through it (Maxar sample)
    scenes = list(crawl_static(str(sample_catalogs["maxar"])))
    assert scenes and {(s.license, s.license_href) for s in scenes} == {("CC-BY-NC-4.0", BY_NC)}
    # an Item's own license field and license link win
    item = {
        "type": "Feature",
        "properties": {"license": "CC-BY-SA-4.0"},
        "links": [{"rel": "license", "href": "https://example.org/terms"}],
    }
    assert document_license(item, "", SourceLicense("CC-BY-4.0", BY)) == SourceLicense(
        "CC-BY-SA-4.0", "https://example.org/terms"
    )
    # an Item without one, read from an open-data programme's bucket: the programme's license
    path = shared_data / "stac" / "maxar_static_catalog_hotosm" / "item.json"
    if not path.exists():
        pytest.skip(f"needs {path} (recorded Maxar Open Data item)")
    doc = json.loads(path.read_text())
    href = next(link["href"] for link in doc["links"] if link["rel"] == "self")
    scene = scene_from_item(doc, href)
    assert scene is not None and (scene.license, scene.license_href) == ("CC-BY-NC-4.0", BY_NC)
    umbra = document_license(
        {"type": "Feature", "properties": {}}, "s3://umbra-open-data-catalog/x.json"
    )
    assert umbra == SourceLicense("CC-BY-4.0", BY)
    assert document_license({"type": "Feature", "properties": {}}, "/data/x.json") is None
