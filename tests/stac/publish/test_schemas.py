"""The offline STAC schemas: real documents pass, each kind of mistake fails with a clear message,
no network."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path

import pytest

from core.errors import CatalogError
from stac import schemas
from stac.schemas import CORE_SCHEMAS, EXTENSIONS, known_schemas, validate, validate_against


def _recorded(shared_data: Path, *parts: str) -> dict:
    path = shared_data.joinpath("stac", *parts)
    if not path.exists():
        pytest.skip(f"needs {path} (real recorded STAC JSON in ../shared/data/stac); not present")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def maxar_item(shared_data: Path) -> dict:
    return _recorded(shared_data, "maxar_static_catalog_hotosm", "item.json")


@pytest.fixture(scope="module")
def umbra_item(shared_data: Path) -> dict:
    return _recorded(shared_data, "umbra_stac_extension", "item.json")


def minimal_item(**extra) -> dict:
    doc = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": "x",
        "geometry": {"type": "Point", "coordinates": [37.6, 37.1]},
        "bbox": [37.6, 37.1, 37.6, 37.1],
        "properties": {"datetime": "2023-02-09T19:02:41Z"},
        "links": [],
        "assets": {},
    }
    doc.update(extra)
    return doc


def test_every_vendored_schema_loads_and_its_refs_resolve_offline() -> None:
    # compiling and running every schema on a document touches all the $refs it uses
    for url in known_schemas():
        validator_doc = minimal_item()
        try:
            validate_against(validator_doc, url)
        except CatalogError as exc:
            # failing is fine (wrong kind of document), an unresolvable $ref is not
            assert "Unresolvable" not in str(exc) and "PointerToNowhere" not in str(exc), url
    collection = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": "c",
        "description": "d",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[0, 0, 1, 1]]},
            "temporal": {"interval": [["2023-01-01T00:00:00Z", None]]},
        },
        "links": [],
        "summaries": {"gsd": {"type": "number", "minimum": 0.3}},
    }
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "k",
        "description": "d",
        "links": [],
    }
    assert validate(collection) == [CORE_SCHEMAS["Collection"]]
    assert validate(catalog) == [CORE_SCHEMAS["Catalog"]]


def test_real_maxar_item_validates(maxar_item: dict) -> None:
    checked = validate(maxar_item, unknown_extensions="skip")
    assert CORE_SCHEMAS["Feature"] in checked
    assert {EXTENSIONS["proj"], EXTENSIONS["view"], EXTENSIONS["raster"]} <= set(checked)


def test_real_umbra_item_validates_against_sar_view_processing(umbra_item: dict) -> None:
    # the item is STAC 1.0.0 (core schema not vendored); its extensions are the ones coalign writes
    for ext in ("sar", "view", "processing"):
        validate_against(umbra_item, EXTENSIONS[ext])


def test_validation_never_uses_the_network(
    monkeypatch: pytest.MonkeyPatch, maxar_item: dict
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("schema validation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    validate(maxar_item, unknown_extensions="skip")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["properties"].update({"proj:epsg": 32611}), "unknown field(s) ['proj:epsg']"),
        (lambda d: d["properties"].update({"proj:shape": [10, 10, 3]}), "proj:shape"),
        (lambda d: d["properties"].update({"view:off_nadir": 95}), "view:off_nadir"),
        (lambda d: d["properties"].update({"datetime": "last tuesday"}), "is not a 'date-time'"),
        (
            lambda d: d["assets"]["visual"].update({"raster:bands": [{"data_type": "byte"}]}),
            "raster:bands/0/data_type",
        ),
        (
            lambda d: d["assets"]["visual"].update({"raster:bands": [{"nodata": "NaN"}]}),
            "raster:bands/0/nodata",
        ),
        (
            lambda d: (
                d["stac_extensions"].remove(EXTENSIONS["view"])
                or d["stac_extensions"].append(EXTENSIONS["file"])
                or d["assets"]["visual"].update({"file:checksum": "1220ABCDEF"})
            ),
            "file:checksum",
        ),
        (
            lambda d: d.update({"collection": "no-link-to-it"}) or d.update({"links": []}),
            "'collection' is not allowed here",
        ),
        (lambda d: d.pop("geometry"), "geometry"),
    ],
)
def test_mistakes_are_reported_with_field_and_schema(
    maxar_item: dict, mutate, message: str
) -> None:
    doc = copy.deepcopy(maxar_item)
    mutate(doc)
    with pytest.raises(CatalogError) as err:
        validate(doc, unknown_extensions="skip")
    assert message in str(err.value)
    assert "does not validate against https://" in str(err.value)


def test_sar_v1_requires_its_four_fields(umbra_item: dict) -> None:
    doc = copy.deepcopy(umbra_item)
    del doc["properties"]["sar:product_type"]
    with pytest.raises(CatalogError, match="sar:product_type"):
        validate_against(doc, EXTENSIONS["sar"])
    doc = copy.deepcopy(umbra_item)
    doc["properties"]["sar:polarizations"] = ["VV", "VV"]
    with pytest.raises(CatalogError, match="non-unique|unique"):
        validate_against(doc, EXTENSIONS["sar"])


def test_extension_fields_need_the_extension_declared() -> None:
    doc = minimal_item(stac_extensions=[])
    doc["properties"]["view:azimuth"] = 10.0
    validate(doc)  # undeclared prefixed fields are not the extension's business ...
    with pytest.raises(CatalogError, match="stac_extensions"):
        validate_against(doc, EXTENSIONS["view"])  # ... but its schema demands the declaration


def test_unknown_extension_or_version_is_refused() -> None:
    doc = minimal_item(stac_extensions=["https://stac-extensions.github.io/eo/v1.1.0/schema.json"])
    with pytest.raises(CatalogError, match="no offline schema"):
        validate(doc)
    assert validate(doc, unknown_extensions="skip") == [CORE_SCHEMAS["Feature"]]
    with pytest.raises(CatalogError, match="stac_version '1.0.0'"):
        validate(minimal_item(stac_version="1.0.0"))
    with pytest.raises(CatalogError, match="not a STAC Item"):
        validate({"type": "FeatureCollection", "features": []})


def test_schema_files_are_package_data() -> None:
    import importlib.resources

    names = {p.name for p in importlib.resources.files(schemas.__name__).iterdir()}
    assert {
        "stac-1.1.0-item.json",
        "projection-v2.0.0.json",
        "sar-v1.0.0.json",
        "README.md",
    } <= names
    for url in known_schemas():
        assert url.startswith("https://")
