"""Publishing aligned products as STAC Items (STAC 1.1) to a static catalog or a STAC API.

One Item per registered pair × method, with assets for the aligned optical COG,
the SN9 displacement COG, the confidence COG, QA pictures and the residual CSV;
``proj`` (v2.0), ``processing`` (v1.2), ``file`` (v2.1), ``raster`` (v1.1) and,
carried over from the source scenes, ``sar``/``view`` fields; ``derived_from``
links to the source items; the acquisition time of the sources (never "now").
Documents are validated offline (:func:`validate_stac`).
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from models.errors import CatalogError
from stac.readers import load_json
from stac.sample_catalog import EXT, _write_json, multihash_sha256, raster_geometry
from stac.scene import Scene

STAC_VERSION = "1.1.0"
EXTENSIONS = {
    **EXT,
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
}
MEDIA = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".png": "image/png",
    ".csv": "text/csv",
    ".json": "application/json",
}
ROLES = {
    "aligned_optical": (["data", "visual"], "Optical image aligned to the SAR"),
    "displacement": (["data"], "SN9 displacement map (dx, dy in optical pixels)"),
    "confidence": (["data", "quality"], "Per-pixel registration confidence (0-1)"),
    "residuals": (["metadata"], "Per-tiepoint residuals"),
}


@dataclass(frozen=True)
class PublishedPair:
    """What one registered pair produced, ready to become a STAC Item."""

    pair_id: str
    optical: Scene
    sar: Scene
    outputs: dict[str, Path]
    method: str
    method_version: str
    activation: str
    score: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def item_id(self) -> str:
        return f"{self.pair_id}__{self.method}-{self.method_version}".replace("/", "-")


def _iso(d: dt.datetime) -> str:
    return d.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def build_item(p: PublishedPair, software_version: str = "") -> dict[str, Any]:
    """The STAC Item (as a dict) for one pair's outputs; asset hrefs are absolute paths."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        software_version = software_version or version("coalign")
    except PackageNotFoundError:
        software_version = "unknown"
    geometry, bbox, proj = raster_geometry(p.outputs["displacement"])
    t0, t1 = sorted([p.optical.datetime, p.sar.datetime])
    props: dict[str, Any] = {
        "datetime": _iso(p.sar.datetime),
        "start_datetime": _iso(t0),
        "end_datetime": _iso(t1),
        "platform": p.sar.platform,
        **{k: v for k, v in proj.items() if v is not None},
        "processing:software": {"coalign": software_version},
        "processing:lineage": f"optical {p.optical.id} registered to SAR {p.sar.id} with {p.method} {p.method_version}",
        "coalign:method": p.method,
        "coalign:method_version": p.method_version,
        "coalign:activation": p.activation,
        "coalign:optical_id": p.optical.id,
        "coalign:sar_id": p.sar.id,
        **{k: v for k, v in p.sar.sar.items() if isinstance(v, (str, int, float, list))},
    }
    if p.sar.view_incidence_angle is not None:
        props["view:incidence_angle"] = p.sar.view_incidence_angle
    if p.optical.view_off_nadir is not None:
        props["view:off_nadir"] = p.optical.view_off_nadir
    if p.score:
        props.update({f"coalign:score_{k}": v for k, v in p.score.items()})
    assets: dict[str, Any] = {}
    for key, path in p.outputs.items():
        path = Path(path)
        roles, title = ROLES.get(key, (["overview"] if path.suffix == ".png" else ["metadata"], key.replace("_", " ")))
        asset: dict[str, Any] = {
            "href": str(path.resolve()),
            "type": MEDIA.get(path.suffix, "application/octet-stream"),
            "title": title,
            "roles": roles,
            "file:checksum": multihash_sha256(path),
            "file:size": path.stat().st_size,
        }
        if key == "displacement":
            asset["raster:bands"] = [
                {"name": n, "description": d, "data_type": "float32", "nodata": "nan", "unit": "pixel"}
                for n, d in (("dx", "x-shift (SAR - optical) / gt[1]"), ("dy", "y-shift (SAR - optical) / gt[5]"))
            ]
        elif key == "confidence":
            asset["raster:bands"] = [{"name": "confidence", "data_type": "float32", "nodata": "nan", "unit": "1"}]
        assets[key] = asset
    links = [
        {"rel": "derived_from", "href": s.item_href, "type": "application/json", "title": f"{s.sensor} source {s.id}"}
        for s in (p.optical, p.sar)
        if s.item_href
    ] + [{"rel": "collection", "href": "./collection.json", "type": "application/json"}]
    extensions = [EXTENSIONS[k] for k in ("proj", "processing", "file", "raster")]
    if any(k.startswith("sar:") for k in props):
        extensions.append(EXTENSIONS["sar"])
    if any(k.startswith("view:") for k in props):
        extensions.append(EXTENSIONS["view"])
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": p.item_id,
        "collection": p.activation,
        "bbox": bbox,
        "geometry": geometry,
        "properties": props,
        "links": links,
        "assets": assets,
    }


# --- offline validation --------------------------------------------------------------


def _schema_registry():
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    base = importlib.resources.files("pystac.validation.jsonschemas")
    resources = {}
    for name in ("item", "catalog", "collection", "basics", "datetime", "instrument", "licensing", "provider", "common", "bands", "data-values"):
        kind = name if name in ("item", "catalog", "collection") else "item"
        url = f"https://schemas.stacspec.org/v{STAC_VERSION}/{kind}-spec/json-schema/{name}.json"
        resources[url] = json.loads(base.joinpath(f"stac-spec/v{STAC_VERSION}/{name}.json").read_text())
    for name in ("Feature", "Geometry"):
        resources[f"https://geojson.org/schema/{name}.json"] = json.loads(base.joinpath(f"geojson/{name}.json").read_text())
    ours = importlib.resources.files("stac.schemas")
    for entry in ours.iterdir():
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text())
            resources[doc["$id"]] = doc
    registry = Registry().with_resources((url, Resource.from_contents(doc, default_specification=DRAFT7)) for url, doc in resources.items())
    return registry, resources


def validate_stac(doc: dict[str, Any]) -> None:
    """Validate a STAC Item/Catalog/Collection and its declared extensions, offline; CatalogError if invalid."""
    from jsonschema import Draft7Validator

    registry, resources = _schema_registry()
    kind = {"Feature": "item", "Catalog": "catalog", "Collection": "collection"}.get(doc.get("type", ""))
    if kind is None:
        raise CatalogError(f"not a STAC document (type {doc.get('type')!r})")
    urls = [f"https://schemas.stacspec.org/v{STAC_VERSION}/{kind}-spec/json-schema/{kind}.json", *doc.get("stac_extensions", [])]
    for url in urls:
        if url not in resources:
            raise CatalogError(f"{doc.get('id')}: no offline schema for extension {url}")
        from jsonschema.exceptions import best_match

        e = best_match(Draft7Validator(resources[url], registry=registry).iter_errors(doc))
        if e is not None:
            raise CatalogError(f"STAC {kind} {doc.get('id')} fails {url}: {e.message[:300]} at /{'/'.join(map(str, e.absolute_path))}")


# --- sinks ---------------------------------------------------------------------------


def _rel(target: Path, start: Path) -> str:
    return os.path.relpath(target, start.parent).replace(os.sep, "/")


def publish_static(item: dict[str, Any], root: str | os.PathLike[str], description: str = "") -> Path:
    """Write ``item`` into a self-contained static catalog at ``root`` (one collection per activation).

    Hrefs are relative; re-publishing the same item replaces it (idempotent).
    The collection's extent is recomputed from its items. Returns the item path.
    """
    root = Path(root)
    cat_path = root / "catalog.json"
    activation = item["collection"]
    col_dir = root / activation
    col_path = col_dir / "collection.json"
    item_dir = col_dir / item["id"]
    item_path = item_dir / f"{item['id']}.json"
    doc = json.loads(json.dumps(item))
    for asset in doc["assets"].values():
        src = Path(asset["href"])
        if src.is_absolute():
            # assets live next to the item so the catalog is self-contained
            dst = item_dir / src.name
            if src.resolve() != dst.resolve():
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.name}.tmp")
                tmp.write_bytes(src.read_bytes())
                os.replace(tmp, dst)
            asset["href"] = "./" + dst.name
    doc["links"] = [l for l in doc["links"] if l["rel"] == "derived_from"] + [
        {"rel": "root", "href": _rel(cat_path, item_path), "type": "application/json"},
        {"rel": "parent", "href": _rel(col_path, item_path), "type": "application/json"},
        {"rel": "collection", "href": _rel(col_path, item_path), "type": "application/json"},
        {"rel": "self", "href": _rel(item_path, item_path), "type": "application/geo+json"},
    ]
    doc["links"] = [l for l in doc["links"] if l["rel"] != "self"]
    validate_stac(doc)
    _write_json(item_path, doc)
    items = sorted(col_dir.glob("*/*.json"))
    docs = [load_json(str(p)) for p in items]
    boxes = [d["bbox"] for d in docs]
    starts = [d["properties"].get("start_datetime", d["properties"]["datetime"]) for d in docs]
    ends = [d["properties"].get("end_datetime", d["properties"]["datetime"]) for d in docs]
    collection = {
        "type": "Collection", "stac_version": STAC_VERSION, "id": activation,
        "description": description or f"coalign aligned products for activation {activation}",
        "license": "other",
        "extent": {"spatial": {"bbox": [[min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]]},
                   "temporal": {"interval": [[min(starts), max(ends)]]}},
        "links": [{"rel": "root", "href": _rel(cat_path, col_path), "type": "application/json"},
                  {"rel": "parent", "href": _rel(cat_path, col_path), "type": "application/json"}]
        + [{"rel": "item", "href": _rel(p, col_path), "type": "application/geo+json"} for p in items],
    }
    validate_stac(collection)
    _write_json(col_path, collection)
    catalog = load_json(str(cat_path)) if cat_path.exists() else {
        "type": "Catalog", "stac_version": STAC_VERSION, "id": "coalign", "description": "coalign aligned optical/SAR products",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    child = {"rel": "child", "href": _rel(col_path, cat_path), "type": "application/json", "title": activation}
    if not any(l.get("rel") == "child" and l.get("href") == child["href"] for l in catalog["links"]):
        catalog["links"].append(child)
    validate_stac(catalog)
    _write_json(cat_path, catalog)
    return item_path


class TransactionClient:
    """STAC API Transaction extension client (create, or update on conflict: idempotent)."""

    def __init__(self, url: str, timeout: float = 30.0, retries: int = 3) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        for attempt in range(self.retries):
            try:
                r = requests.request(method, self.url + path, json=body, timeout=self.timeout)
                if r.status_code < 500:
                    return r
                err = f"HTTP {r.status_code}: {r.text[:200]}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                err = str(exc)
            if attempt < self.retries - 1:
                time.sleep(0.5 * 2**attempt)
        raise CatalogError(f"STAC API {self.url}{path} {method} failed after {self.retries} attempts: {err}")

    def _check(self, r: requests.Response, what: str) -> None:
        if r.status_code >= 400:
            raise CatalogError(f"STAC API {what} rejected: HTTP {r.status_code}: {r.text[:300]}")

    def ensure_collection(self, collection: dict[str, Any]) -> None:
        r = self._send("POST", "/collections", collection)
        if r.status_code == 409:
            r = self._send("PUT", f"/collections/{collection['id']}", collection)
        self._check(r, f"collection {collection['id']}")

    def upsert_item(self, item: dict[str, Any]) -> str:
        """Create the item, or replace it when it exists; returns "created" or "updated"."""
        cid = item["collection"]
        r = self._send("POST", f"/collections/{cid}/items", item)
        if r.status_code == 409:
            r = self._send("PUT", f"/collections/{cid}/items/{item['id']}", item)
            self._check(r, f"item {item['id']}")
            return "updated"
        self._check(r, f"item {item['id']}")
        return "created"

    def get_item(self, collection: str, item_id: str) -> dict[str, Any]:
        r = self._send("GET", f"/collections/{collection}/items/{item_id}")
        self._check(r, f"item {item_id}")
        return r.json()


def publish_api(item: dict[str, Any], url: str) -> str:
    """Publish to a STAC API Transaction endpoint (collection created when missing)."""
    validate_stac(item)
    client = TransactionClient(url)
    collection = {
        "type": "Collection", "stac_version": STAC_VERSION, "id": item["collection"],
        "description": f"coalign aligned products for activation {item['collection']}", "license": "other",
        "extent": {"spatial": {"bbox": [item["bbox"]]},
                   "temporal": {"interval": [[item["properties"].get("start_datetime"), item["properties"].get("end_datetime")]]}},
        "links": [],
    }
    client.ensure_collection(collection)
    return client.upsert_item(item)
