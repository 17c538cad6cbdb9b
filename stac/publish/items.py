"""The STAC 1.1 Item of one registered pair's products, and the collection of an activation.

:func:`build_item` makes one Item per pair × method (pystac) with assets for the aligned optical
COG, the SN9 displacement COG, the confidence COG, QA pictures and the residual CSV, and the
fields of these extensions: projection v2.0 (``proj:code``, ``proj:shape``, ``proj:transform``),
processing v1.2 (software, lineage), file v2.1 (multihash ``file:checksum``, ``file:size``),
raster v1.1 (``raster:bands``) and, carried over from the source scenes, sar v1.0 and view v1.0.

The product lives on the optical grid, so the Item-level ``platform``, ``gsd`` and ``view:*``
describe the optical acquisition; the SAR scene is described by the ``sar:*`` fields and, on
the ``displacement`` asset (the shift to where the SAR sees each optical pixel), by its
``platform``, ``datetime`` and view geometry. ``derived_from`` links point at the source items
that have a public (http(s)/s3) href; a source known only by a local path is named by its id
(``coalign:optical_id``/``coalign:sar_id``) alone. The license is that of the sources
(:func:`stac.licenses.combine`). The Item's time is the acquisition time of its sources, never
"now": ``datetime`` is the SAR acquisition (the grid the optical is aligned to),
``start_datetime``/``end_datetime`` span the optical and SAR acquisitions.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac

from core.errors import InputError
from core.ids import slug
from stac import schemas
from stac.licenses import (
    NOT_SPDX,
    STAC_LICENSE,
    ProductLicense,
    SourceLicense,
    combine,
    license_url,
    split_expression,
)
from stac.links import is_remote
from stac.publish.fields import (
    SensorSource,
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
    if p.optical.platform:
        props["platform"] = p.optical.platform
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


def source_license(scene: Scene) -> SourceLicense | None:
    """The license of a source scene; None when it is not known."""
    if scene.license is None and scene.license_href is None:
        return None
    return SourceLicense(scene.license, scene.license_href)


def add_license_links(obj: pystac.STACObject, lic: ProductLicense) -> None:
    """Set the ``license`` link(s) of an Item or Collection to those of ``lic``."""
    obj.remove_links("license")
    for href, title in lic.links:
        obj.add_link(pystac.Link("license", href, media_type="text/html", title=title))


def license_properties(lic: ProductLicense) -> dict[str, Any]:
    """``license`` and, when it is ``other`` for lack of a one-token form, the SPDX expression
    (``coalign:license_expression``)."""
    props: dict[str, Any] = {"license": lic.value}
    if lic.expression and lic.expression != lic.value:
        props["coalign:license_expression"] = lic.expression
    return props


def _add_links(item: pystac.Item, p: PublishedPair, lic: ProductLicense) -> None:
    # STAC 1.1: an Item naming its collection links to it; the sinks replace this placeholder
    item.add_link(
        pystac.Link(
            pystac.RelType.COLLECTION, "../collection.json", media_type=pystac.MediaType.JSON
        )
    )
    for scene in (p.optical, p.sar):
        # a local path would leak the producer's machine and resolve nowhere else
        if scene.item_href and is_remote(scene.item_href):
            item.add_link(
                pystac.Link(
                    "derived_from",
                    scene.item_href,
                    media_type=pystac.MediaType.GEOJSON,
                    title=f"source {scene.sensor} scene {scene.id}",
                )
            )
    add_license_links(item, lic)


def build_item(p: PublishedPair, software_version: str | None = None) -> dict[str, Any]:
    """The STAC Item document of one pair's outputs (asset hrefs: the absolute output paths);
    validated.

    Item-level ``platform``, ``gsd`` and ``view:*``: the optical scene's (the product grid);
    ``aligned_optical`` repeats them with the optical time, ``displacement`` carries the SAR
    scene's platform, time, incidence and azimuth; ``sar:*`` are the SAR scene's.

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
    t_opt, t_sar = iso(p.optical.datetime), iso(p.sar.datetime)
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
    props.update(optical_view)
    lic = combine([source_license(p.optical), source_license(p.sar)])
    props.update(license_properties(lic))

    sar_view = {
        k: v
        for k, v in view_properties(p.sar).items()
        if k in ("view:incidence_angle", "view:azimuth")
    }
    sources = {
        "aligned_optical": SensorSource(t_opt, p.optical.platform, optical_view),
        "displacement": SensorSource(t_sar, p.sar.platform, sar_view),
    }
    for key, path in outputs.items():
        item.add_asset(key, build_asset(key, path, infos.get(key), sources))
    extensions = [EXT["proj"], EXT["processing"], EXT["file"], EXT["raster"]]
    if sar_props:
        extensions.append(EXT["sar"])
    if optical_view or sar_view:
        extensions.append(EXT["view"])
    item.stac_extensions = extensions
    _add_links(item, p, lic)
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


def _item_licenses(item: pystac.Item) -> list[SourceLicense | None]:
    """The source licenses an Item of :func:`build_item` states (None: a source's is unknown)."""
    titled = {link.title: link.href for link in item.links if link.rel == "license" and link.title}
    value = item.properties.get("license")
    expression = item.properties.get("coalign:license_expression")
    if isinstance(value, str) and value not in NOT_SPDX:
        ids = [value]
    elif isinstance(expression, str):
        ids = split_expression(expression)
    else:
        known = {t: h for t, h in titled.items() if STAC_LICENSE.match(t) and t not in NOT_SPDX}
        return [None] + [SourceLicense(t if t in known else None, h) for t, h in titled.items()]
    return [SourceLicense(i, titled.get(i) or license_url(i)) for i in ids]


def collection_license(items: Sequence[pystac.Item]) -> ProductLicense:
    """The license of a collection: every license of its items' sources applies."""
    return combine(lic for item in items for lic in _item_licenses(item))


def set_license(collection: pystac.Collection, lic: ProductLicense) -> None:
    """Set the ``license`` field, SPDX expression and ``license`` links of ``collection``."""
    collection.license = lic.value
    collection.extra_fields.pop("coalign:license_expression", None)
    collection.extra_fields.update(
        {k: v for k, v in license_properties(lic).items() if k != "license"}
    )
    add_license_links(collection, lic)


def build_collection(
    activation: str,
    items: Sequence[pystac.Item],
    description: str | None = None,
    license: str | None = None,
) -> pystac.Collection:
    """The collection of one activation, its extent computed from ``items``; its license is
    ``license`` when given, else that of the items' sources (:func:`collection_license`)."""
    if not items:
        raise InputError(f"collection {activation}: needs at least one item for its extent")
    collection = pystac.Collection(
        id=activation,
        title=f"coalign products: {activation}",
        description=description
        or (
            "Optical images aligned to SAR, displacement maps and QA for activation "
            f"{activation} (coalign)."
        ),
        extent=pystac.Extent.from_items(items),
        license=license or "other",
        providers=[pystac.Provider("coalign", roles=[pystac.ProviderRole.PROCESSOR])],
    )
    if license is None:
        set_license(collection, collection_license(items))
    return collection
