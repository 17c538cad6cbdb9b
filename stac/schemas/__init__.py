"""Offline validation of STAC documents against vendored JSON schemas (see README.md here).

Implements the validation rule of the STAC specification (v1.1.0): a document must validate
against its core schema (Item, Catalog or Collection) and against the schema of every extension
listed in ``stac_extensions``. Schemas are looked up by their canonical URL in a local
``referencing`` registry; nothing is ever fetched, so an unknown ``$ref`` is an error.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from typing import Any, Literal

from core.errors import CatalogError

STAC_VERSION = "1.1.0"
_CORE = f"https://schemas.stacspec.org/v{STAC_VERSION}"
CORE_SCHEMAS = {
    "Feature": f"{_CORE}/item-spec/json-schema/item.json",
    "Catalog": f"{_CORE}/catalog-spec/json-schema/catalog.json",
    "Collection": f"{_CORE}/collection-spec/json-schema/collection.json",
}
EXTENSIONS = {
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
}

# canonical URL -> vendored file (flat, so the files ship as plain package data)
_FILES = {
    **{f"{_CORE}/item-spec/json-schema/{n}.json": f"stac-{STAC_VERSION}-{n}.json"
       for n in ("item", "basics", "bands", "common", "data-values", "datetime", "instrument", "licensing", "provider")},
    CORE_SCHEMAS["Catalog"]: f"stac-{STAC_VERSION}-catalog.json",
    CORE_SCHEMAS["Collection"]: f"stac-{STAC_VERSION}-collection.json",
    "https://geojson.org/schema/Feature.json": "geojson-Feature.json",
    "https://geojson.org/schema/Geometry.json": "geojson-Geometry.json",
    EXTENSIONS["proj"]: "projection-v2.0.0.json",
    EXTENSIONS["processing"]: "processing-v1.2.0.json",
    EXTENSIONS["file"]: "file-v2.1.0.json",
    EXTENSIONS["raster"]: "raster-v1.1.0.json",
    EXTENSIONS["sar"]: "sar-v1.0.0.json",
    EXTENSIONS["view"]: "view-v1.0.0.json",
}


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    base = importlib.resources.files(__name__)
    return {url: json.loads(base.joinpath(name).read_text(encoding="utf-8")) for url, name in _FILES.items()}


@functools.cache
def _registry():
    from jsonschema_specifications import REGISTRY as METASCHEMAS
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    ours = Registry().with_resources(
        (url, Resource.from_contents(doc, default_specification=DRAFT7)) for url, doc in _schemas().items()
    )
    # the Collection schema $refs the draft-07 meta-schema (for summaries)
    return ours.combine(METASCHEMAS)


def known_schemas() -> list[str]:
    """Canonical URLs of every schema available offline."""
    return sorted(_FILES)


def validate_against(doc: dict[str, Any], url: str, what: str = "") -> None:
    """Validate ``doc`` against one schema (by canonical URL); CatalogError naming the first
    failure."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    schema = _schemas().get(url)
    if schema is None:
        raise CatalogError(f"{what or _describe(doc)}: no offline schema for {url} (known: {', '.join(known_schemas())})")
    validator = Draft7Validator(schema, registry=_registry(), format_checker=Draft7Validator.FORMAT_CHECKER)
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        error = _deepest(error)
        where = "/" + "/".join(map(str, error.absolute_path))
        raise CatalogError(f"{what or _describe(doc)} does not validate against {url}: {_message(error)} (at {where})")


def _deepest(error: Any) -> Any:
    # a oneOf/anyOf (Item or Collection branch, ...) fails as a whole; the branch error that got
    # furthest into the document is the one about the author's mistake
    while error.validator in ("oneOf", "anyOf") and error.context:
        deeper = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deeper.absolute_path) <= len(error.absolute_path):
            break
        error = deeper
    return error


def _message(error: Any) -> str:
    if error.validator == "not" and error.validator_value == {}:
        return f"{list(error.absolute_path)[-1]!r} is not allowed here"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        unknown = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
        return f"unknown field(s) {unknown}; allowed: {sorted(allowed)}"
    return error.message[:400]


def validate(doc: dict[str, Any], unknown_extensions: Literal["error", "skip"] = "error", what: str = "") -> list[str]:
    """Validate a STAC 1.1 Item, Catalog or Collection and its declared extensions, offline.

    Returns the schema URLs checked. ``unknown_extensions="skip"`` checks only the extensions with
    a vendored schema (for documents written by others); the default refuses unknown ones.
    """
    kind = doc.get("type")
    if kind not in CORE_SCHEMAS:
        raise CatalogError(f"{what or _describe(doc)}: not a STAC Item, Catalog or Collection (type {kind!r})")
    if doc.get("stac_version") != STAC_VERSION:
        raise CatalogError(f"{what or _describe(doc)}: stac_version {doc.get('stac_version')!r}; offline schemas are for {STAC_VERSION}")
    urls = [CORE_SCHEMAS[kind]]
    for url in doc.get("stac_extensions", []):
        if url in _FILES:
            urls.append(url)
        elif unknown_extensions == "error":
            raise CatalogError(f"{what or _describe(doc)}: declares extension {url}, which has no offline schema; "
                               f"use one of {', '.join(EXTENSIONS.values())}")
    for url in urls:
        validate_against(doc, url, what)
    return urls


def _describe(doc: dict[str, Any]) -> str:
    kind = {"Feature": "Item"}.get(str(doc.get("type")), str(doc.get("type")))
    return f"STAC {kind} {doc.get('id')!r}"
