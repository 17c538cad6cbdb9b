"""Sample catalogs laid out like Umbra Open Data: the dated static catalog and v2 sidecars."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from core.errors import InputError
from samples.catalog.common import (
    COG,
    EXT,
    STAC_VERSION,
    RasterFacts,
    SampleScene,
    asset,
    link,
    merge_children,
    place,
    raster_facts,
    stac_time,
    write_json,
)
from stac.checksum import file_checksum

UMBRA_PRIVATE_BUCKET = "s3://prod-prod-processed-sar-data"
_ITEM_EXTENSIONS = ("view", "sar", "sat", "proj", "processing", "file", "umbra")
_SIDECAR_EXTENSIONS = ("view", "sar", "sat", "processing", "file", "umbra")


def _umbra_acquisition(s: SampleScene) -> str:
    return f"{s.datetime.astimezone(dt.UTC):%Y-%m-%d-%H-%M-%S}_{s.platform.upper()}"


def _umbra_properties(s: SampleScene, facts: RasterFacts) -> dict[str, Any]:
    t = s.datetime.astimezone(dt.UTC)
    ids = uuid.uuid5(uuid.NAMESPACE_URL, f"umbra-sample/{s.id}")
    return {
        "datetime": stac_time(t),
        "start_datetime": stac_time(t - dt.timedelta(seconds=6)),
        "end_datetime": stac_time(t + dt.timedelta(seconds=6)),
        "created": stac_time(t + dt.timedelta(hours=20)),
        "platform": s.platform,
        "constellation": "umbra",
        "processing:software": {"coalign sample_catalog": "1"},
        "sar:instrument_mode": "SPOTLIGHT",
        "sar:frequency_band": "X",
        "sar:center_frequency": 9.6,
        "sar:polarizations": ["VV"],
        "sar:product_type": "GEC",
        "sar:resolution_range": s.gsd,
        "sar:resolution_azimuth": s.gsd,
        "sar:looks_range": 1,
        "sar:looks_azimuth": 1,
        "sar:observation_direction": "right",
        "sat:orbit_state": "descending",
        "umbra:task_id": str(uuid.uuid5(ids, "task")),
        "umbra:collect_id": str(uuid.uuid5(ids, "collect")),
        "proj:code": facts.proj["proj:code"],
        "proj:shape": facts.proj["proj:shape"],
        "proj:transform": facts.proj["proj:transform"],
        **s.properties,
    }


def _item(s: SampleScene, item_path: Path, cat_path: Path, copy_assets: bool) -> dict[str, Any]:
    """Write the item of one SAR scene (and its GEC image); its document."""
    day_dir = item_path.parent.parent
    facts = raster_facts(s.image)
    gec = place(Path(s.image), item_path.parent / f"{_umbra_acquisition(s)}_GEC.tif", copy_assets)
    item = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[k] for k in _ITEM_EXTENSIONS],
        "id": s.id,
        "bbox": facts.bbox,
        "geometry": facts.geometry,
        "properties": _umbra_properties(s, facts),
        "collection": "umbra-sar",
        "links": [
            link("root", cat_path, item_path),
            link("parent", day_dir / "catalog.json", item_path),
        ],
        "assets": {
            "asset-GEC": asset(
                gec,
                item_path,
                copy_assets,
                type=COG,
                title="GEC",
                description="Geocoded Ellipsoid Corrected image",
                roles=["data"],
            )
        },
    }
    write_json(item_path, item)
    return item


def _link_up(item_path: Path, day_dir: Path, cat_path: Path) -> Path:
    """Link the item from its day, month and year catalogs, each keeping the children it
    already had; the year catalog's path."""
    child, child_rel = item_path, "item"
    for folder in (day_dir, day_dir.parent, day_dir.parent.parent):
        path = folder / "catalog.json"
        doc = (
            json.loads(path.read_text())
            if path.exists()
            else {
                "type": "Catalog",
                "id": folder.name,
                "stac_version": STAC_VERSION,
                "description": f"Umbra Open Data {folder.name} (sample)",
                "links": [
                    link("root", cat_path, path),
                    link("parent", folder.parent / "catalog.json", path),
                ],
            }
        )
        new = link(child_rel, child, path)
        if new["href"] not in {x["href"] for x in doc["links"] if x["rel"] == child_rel}:
            doc["links"].append(new)
        write_json(path, doc)
        child, child_rel = path, "child"
    return child


def write_umbra_catalog(root: Path, scenes: list[SampleScene], copy_assets: bool = True) -> Path:
    """An Umbra-Open-Data-like static catalog; returns ``<root>/stac/catalog.json``.

    Sub-catalogs per year, month and day (``stac/2023/2023-02/2023-02-12/``); existing
    sub-catalogs keep their other children.

    Args:
        root: The catalog folder.
        scenes: The SAR images (``id``: the item UUID).
        copy_assets: Copy the images next to their items (else reference them).
    """
    if not scenes:
        raise InputError("no SAR scenes to catalogue")
    root = Path(root)
    cat_path = root / "stac" / "catalog.json"
    root_doc = {
        "type": "Catalog",
        "id": "umbra-open-data-catalog",
        "stac_version": STAC_VERSION,
        "description": "Umbra Open Data (sample)",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    for s in scenes:
        t = s.datetime.astimezone(dt.UTC)
        day_dir = root / "stac" / f"{t:%Y}" / f"{t:%Y-%m}" / f"{t:%Y-%m-%d}"
        item_path = day_dir / s.id / f"{s.id}.json"
        _item(s, item_path, cat_path, copy_assets)
        year = _link_up(item_path, day_dir, cat_path)
        write_json(cat_path, merge_children(cat_path, root_doc, year))
    return cat_path


def _sidecar_assets(acq: str, private: str, image: Path) -> dict[str, Any]:
    """The sidecar's assets, keyed by file name, pointing at the private bucket."""

    def entry(
        name: str, title: str, media: str, roles: list[str], path: Path | None = None
    ) -> dict[str, Any]:
        a = {
            "href": f"{private}/{name}",
            "title": title,
            "type": media,
            "roles": roles,
            "description": f"MONOSTATIC {title}",
        }
        if path is not None:
            a.update({"file:checksum": file_checksum(path), "file:size": path.stat().st_size})
        return a

    return {
        f"{acq}_CSI_MM.tif": entry(f"{acq}_CSI_MM.tif", "CSI_TIFF", COG, ["data"]),
        f"{acq}_MM.tif": entry(f"{acq}_MM.tif", "TIFF", COG, ["data", "overview"], image),
        f"{acq}_MM.json": entry(f"{acq}_MM.json", "METADATA", "application/json", ["metadata"]),
        f"{acq}.stac.v2.json": entry(
            f"{acq}.stac.v2.json", "STAC_METADATA", "application/geo+json", ["metadata"]
        ),
    }


def write_umbra_sidecar(root: Path, scene: SampleScene, task: str = "Sample Task") -> Path:
    """An Umbra v2 product folder under ``<root>/sar-data/tasks/<task>/<task id>/<acquisition>/``.

    The image goes there as ``<acquisition>_MM.tif`` with its ``<acquisition>.stac.v2.json``
    sidecar, whose assets are keyed by file name and point at the private bucket (as Umbra's
    do).

    Args:
        root: The folder standing for the bucket root.
        scene: The SAR image.
        task: The Umbra task name.
    """
    facts = raster_facts(scene.image)
    props = _umbra_properties(scene, facts)
    acq = _umbra_acquisition(scene)
    folder = Path(root) / "sar-data" / "tasks" / task / props["umbra:task_id"] / acq
    image = place(Path(scene.image), folder / f"{acq}_MM.tif", True)
    private = (
        f"{UMBRA_PRIVATE_BUCKET}/{scene.datetime:%Y-%m-%d}/{props['umbra:collect_id']}/{scene.id}"
    )
    sidecar = folder / f"{acq}.stac.v2.json"
    doc = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[k] for k in _SIDECAR_EXTENSIONS],
        "id": scene.id,
        "bbox": facts.bbox,
        "geometry": facts.geometry,
        "collection": "umbra-sar",
        "properties": {k: v for k, v in props.items() if not k.startswith("proj:")},
        "links": [{"rel": "collection", "href": "umbra-sar", "type": "application/json"}],
        "assets": _sidecar_assets(acq, private, image),
    }
    write_json(sidecar, doc)
    return sidecar
