"""The STAC 1.1 Item of one registered pair's products, and the collection of an activation.

:func:`build_item` makes one Item per pair × method (pystac) with assets for the aligned optical
COG, the SN9 displacement COG, the confidence COG, QA pictures and the residual CSV, and the
fields of these extensions: projection v2.0 (``proj:code``, ``proj:shape``, ``proj:transform``),
processing v1.2 (software, lineage), file v2.1 (multihash ``file:checksum``, ``file:size``),
raster v1.1 (``raster:bands``) and, carried over from the source scenes, sar v1.0 and view v1.0.
``derived_from`` links point at the source items. The Item's time is the acquisition time of its
sources, never "now": ``datetime`` is the SAR acquisition (the grid the optical is aligned to),
``start_datetime``/``end_datetime`` span the optical and SAR acquisitions.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac

from core.errors import InputError
from core.ids import slug
from stac import schemas
from stac.publish.fields import (
    OpticalSource,
    build_asset,
    sar_properties,
    score_properties,
    software_version,
    view_properties,
)
from stac.publish.products import RasterInfo, check_product, footprint_wgs84, raster_info
from stac.scene import Scene

EXT = schemas.EXTENSIONS
_GRID_OUTPUTS = ("aligned_optical", "displacement", "confidence")


@dataclass(frozen=True)
class PublishedPair:
    """What one registered pair produced, ready to become a STAC Item.

    ``outputs`` maps an output kind (``aligned_optical``, ``displacement`` (required),
    ``confidence``, ``residuals``, ``qa_*`` PNG pictures) to its file. ``score`` is the SN9
    tiepoint score summary (``tiepoints``, ``mean_px``, ``median_px``, ``p90_px``, ``*_m``)
    when tiepoints exist. ``activation`` names the collection. ``processed`` optionally records
    when the products were made (``processing:datetime``).
    """

    pair_id: str
    optical: Scene
    sar: Scene
    outputs: Mapping[str, Path]
    method: str
    method_version: str
    activation: str
    score: Mapping[str, float] | None = None
    processed: dt.datetime | None = None

    @property
    def item_id(self) -> str:
        return slug(f"{self.pair_id}__{self.method}-{self.method_version}")


def iso(t: dt.datetime) -> str:
    """An aware time as RFC 3339 UTC (``Z``); InputError for a naive one."""
    if t.tzinfo is None:
        raise InputError(f"acquisition time {t.isoformat()} has no time zone; STAC needs UTC times")
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _checked_outputs(p: PublishedPair) -> dict[str, Path]:
    outputs = {k: Path(v) for k, v in p.outputs.items()}
    if "displacement" not in outputs:
        raise InputError(
            f"pair {p.pair_id}: no 'displacement' output; outputs given: {sorted(outputs)}"
        )
    for key, path in outputs.items():
        if not path.is_file():
            raise InputError(f"pair {p.pair_id}: output {key!r} {path} does not exist")
        if key in _GRID_OUTPUTS and path.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(f"pair {p.pair_id}: output {key!r} {path} must be a GeoTIFF (.tif)")
    return outputs


def _product_infos(outputs: Mapping[str, Path]) -> dict[str, RasterInfo]:
    infos = {
        k: raster_info(v)
        for k, v in outputs.items()
        if v.suffix.lower() in (".tif", ".tiff", ".png")
    }
    for key, info in infos.items():
        check_product(key, info, outputs[key])
    return infos


def _grid_properties(grid: RasterInfo, p: PublishedPair) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if p.sar.platform:
        props["platform"] = p.sar.platform
    if grid.metre_units:
        props["gsd"] = math.hypot(grid.transform[0], grid.transform[3])
    props.update(
        {
            "proj:code": grid.crs_code,
            "proj:shape": list(grid.shape),
            "proj:transform": list(grid.transform),
        }
    )
    if grid.crs_code is None:
        props["proj:wkt2"] = grid.crs_wkt
    return props


def _coalign_properties(p: PublishedPair, version: str | None) -> dict[str, Any]:
    t_opt, t_sar = iso(p.optical.datetime), iso(p.sar.datetime)
    props: dict[str, Any] = {"processing:software": {"coalign": version or software_version()}}
    props["processing:lineage"] = (
        f"Optical scene {p.optical.id} ({p.optical.platform or 'optical'}, {t_opt}) registered to "
        f"SAR scene {p.sar.id} ({p.sar.platform or 'SAR'}, {t_sar}) by coalign method "
        f"{p.method} {p.method_version}; displacement in the SpaceNet 9 convention."
    )
    if p.processed is not None:
        props["processing:datetime"] = iso(p.processed)
    props.update(
        {
            "coalign:pair_id": p.pair_id,
            "coalign:activation": p.activation,
            "coalign:method": p.method,
            "coalign:method_version": p.method_version,
            "coalign:optical_id": p.optical.id,
            "coalign:sar_id": p.sar.id,
            "coalign:optical_datetime": t_opt,
            "coalign:sar_datetime": t_sar,
        }
    )
    if p.score:
        props.update(score_properties(p.score))
    return props


def _item_view(p: PublishedPair, optical_view: Mapping[str, Any]) -> dict[str, Any]:
    """The SAR's incidence and azimuth and the optical's off-nadir."""
    item_view = {
        k: v
        for k, v in view_properties(p.sar).items()
        if k in ("view:incidence_angle", "view:azimuth")
    }
    if "view:off_nadir" in optical_view:
        item_view["view:off_nadir"] = optical_view["view:off_nadir"]
    return item_view


def _add_links(item: pystac.Item, p: PublishedPair) -> None:
    # STAC 1.1: an Item naming its collection links to it; the sinks replace this placeholder
    item.add_link(
        pystac.Link(
            pystac.RelType.COLLECTION, "../collection.json", media_type=pystac.MediaType.JSON
        )
    )
    for scene in (p.optical, p.sar):
        if scene.item_href:
            href = scene.item_href
            if not re.match(r"^[a-z][a-z0-9+.-]*:", href):
                # a relative path would break once the item is moved
                href = str(Path(href).resolve())
            item.add_link(
                pystac.Link(
                    "derived_from",
                    href,
                    media_type=pystac.MediaType.GEOJSON,
                    title=f"source {scene.sensor} scene {scene.id}",
                )
            )


def build_item(p: PublishedPair, software_version: str | None = None) -> dict[str, Any]:
    """The STAC Item document of one pair's outputs (asset hrefs: the absolute output paths);
    validated.

    Item-level view geometry: the SAR's incidence and azimuth (the grid the product is aligned
    to) and the optical's off-nadir (what drives its layover); the optical's full view geometry,
    platform and acquisition time sit on the ``aligned_optical`` asset.

    Args:
        p: The pair's products and sources.
        software_version: The ``processing:software`` version (default: the installed one).
    """
    outputs = _checked_outputs(p)
    collection_id = slug(p.activation)  # the activation as given stays in coalign:activation
    infos = _product_infos(outputs)
    grid_key = "aligned_optical" if "aligned_optical" in infos else "displacement"
    grid = infos[grid_key]
    geometry, bbox = footprint_wgs84(grid, outputs[grid_key])
    t_opt = iso(p.optical.datetime)
    iso(p.sar.datetime)  # both times must be aware before they are compared
    item = pystac.Item(
        id=p.item_id,
        geometry=geometry,
        bbox=bbox,
        datetime=p.sar.datetime.astimezone(dt.UTC),
        start_datetime=min(p.optical.datetime, p.sar.datetime).astimezone(dt.UTC),
        end_datetime=max(p.optical.datetime, p.sar.datetime).astimezone(dt.UTC),
        properties={},
        collection=collection_id,
    )
    props = item.properties
    props.update(_grid_properties(grid, p))
    props.update(_coalign_properties(p, software_version))
    sar_props = sar_properties(p.sar)
    props.update(sar_props)
    optical_view = view_properties(p.optical)
    item_view = _item_view(p, optical_view)
    props.update(item_view)

    optical = OpticalSource(t_opt, p.optical.platform, optical_view)
    for key, path in outputs.items():
        item.add_asset(key, build_asset(key, path, infos.get(key), optical))
    extensions = [EXT["proj"], EXT["processing"], EXT["file"], EXT["raster"]]
    if sar_props:
        extensions.append(EXT["sar"])
    if item_view or ("aligned_optical" in outputs and optical_view):
        extensions.append(EXT["view"])
    item.stac_extensions = extensions
    _add_links(item, p)
    doc = item_document(item)
    schemas.validate(doc, what=f"STAC Item {item.id!r} of pair {p.pair_id}")
    return doc


def item_document(item: pystac.Item | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of an Item (no self link, hrefs as they are)."""
    if isinstance(item, pystac.Item):
        return item.to_dict(include_self_link=False, transform_hrefs=False)
    return json.loads(json.dumps(item))


def as_item(item: pystac.Item | Mapping[str, Any]) -> pystac.Item:
    """A pystac Item of its own (a copy) from an Item or its document, as given."""
    # no migration: the document is validated as given, not as pystac would repair it
    return (
        item.clone()
        if isinstance(item, pystac.Item)
        else pystac.Item.from_dict(json.loads(json.dumps(item)), migrate=False)
    )


def build_collection(
    activation: str,
    items: Sequence[pystac.Item],
    description: str | None = None,
    license: str = "other",
) -> pystac.Collection:
    """The collection of one activation, its extent computed from ``items``."""
    if not items:
        raise InputError(f"collection {activation}: needs at least one item for its extent")
    return pystac.Collection(
        id=activation,
        title=f"coalign products: {activation}",
        description=description
        or (
            "Optical images aligned to SAR, displacement maps and QA for activation "
            f"{activation} (coalign)."
        ),
        extent=pystac.Extent.from_items(items),
        license=license,
        providers=[pystac.Provider("coalign", roles=[pystac.ProviderRole.PROCESSOR])],
    )
