"""Aligned products of one registered pair as a STAC 1.1 Item, published to a static catalog or a
STAC API.

:func:`build_item` makes one Item per pair × method (pystac) with assets for the aligned optical
COG, the SN9 displacement COG, the confidence COG, QA pictures and the residual CSV, and the
fields of these extensions: projection v2.0 (``proj:code``, ``proj:shape``, ``proj:transform``),
processing v1.2 (software, lineage), file v2.1 (multihash ``file:checksum``, ``file:size``),
raster v1.1 (``raster:bands``) and, carried over from the source scenes, sar v1.0 and view v1.0.
``derived_from`` links point at the source items. The Item's time is the acquisition time of its
sources, never "now": ``datetime`` is the SAR acquisition (the grid the optical is aligned to),
``start_datetime``/``end_datetime`` span the optical and SAR acquisitions.

Sinks: :func:`publish_static` (default; a self-contained catalog on disk, one collection per
activation) and :func:`publish_api` (the STAC API Transaction extension, :mod:`stac.transaction`).
Both are idempotent per Item id, and every document they write validates against the STAC JSON
schemas (:mod:`stac.schemas`, offline).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import rasterio
from pystac.stac_io import DefaultStacIO
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from shapely.geometry import Polygon, mapping
from shapely.geometry.polygon import orient

from core.errors import CatalogError, InputError
from core.files import copy_atomic, locked, write_atomic
from core.ids import slug
from stac import schemas
from stac.fetch import file_checksum
from stac.scene import Scene
from stac.schemas import validate as validate_stac
from stac.transaction import TransactionClient

__all__ = [
    "OUTPUT_KINDS",
    "PublishedPair",
    "TransactionClient",
    "api_document",
    "build_collection",
    "build_item",
    "file_checksum",
    "publish_api",
    "publish_static",
    "validate_stac",
]

EXT = schemas.EXTENSIONS
GEOTIFF = "image/tiff; application=geotiff; profile=cloud-optimized"
MEDIA_TYPES = {
    ".tif": GEOTIFF,
    ".tiff": GEOTIFF,
    ".png": "image/png",
    ".csv": "text/csv",
    ".json": "application/json",
}


@dataclass(frozen=True)
class OutputKind:
    """How one kind of pair output is described as an asset."""

    title: str
    roles: tuple[str, ...]
    description: str = ""


OUTPUT_KINDS: dict[str, OutputKind] = {
    "aligned_optical": OutputKind(
        "Aligned optical image",
        ("data", "visual"),
        "Optical image resampled so that each ground point lies where the SAR image sees it.",
    ),
    "displacement": OutputKind(
        "Displacement map (SN9)",
        ("data",),
        "SAR-minus-optical shift at every optical pixel, in optical pixels (SpaceNet 9 convention).",
    ),
    "confidence": OutputKind(
        "Registration confidence",
        ("data", "quality"),
        "Per-pixel confidence of the displacement, 0 (none) to 1 (full inlier support).",
    ),
    "residuals": OutputKind(
        "Tiepoint residuals",
        ("metadata",),
        "Per-tiepoint reference and predicted shifts and their errors (CSV).",
    ),
}
QA_ROLES = ("overview", "visual")

DISPLACEMENT_BANDS = (
    ("dx", "x-shift (x_sar - x_optical) / gt_optical[1], in optical pixels"),
    ("dy", "y-shift (y_sar - y_optical) / gt_optical[5], in optical pixels"),
)
# sar v1.0.0 fields (the version declared); others from newer versions are not carried
SAR_FIELDS = (
    "sar:instrument_mode",
    "sar:frequency_band",
    "sar:center_frequency",
    "sar:polarizations",
    "sar:product_type",
    "sar:resolution_range",
    "sar:resolution_azimuth",
    "sar:pixel_spacing_range",
    "sar:pixel_spacing_azimuth",
    "sar:looks_range",
    "sar:looks_azimuth",
    "sar:looks_equivalent_number",
    "sar:observation_direction",
)
SAR_REQUIRED = SAR_FIELDS[0:2] + ("sar:polarizations", "sar:product_type")
VIEW_FIELDS = (
    "view:off_nadir",
    "view:incidence_angle",
    "view:azimuth",
    "view:sun_azimuth",
    "view:sun_elevation",
)
HIERARCHICAL = {"self", "root", "parent", "child", "item", "collection"}


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


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise InputError(f"acquisition time {t.isoformat()} has no time zone; STAC needs UTC times")
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- reading the products ----------------------------------------------------------------


@dataclass(frozen=True)
class RasterInfo:
    """What an asset needs from a raster file's header."""

    crs_code: str | None
    crs_wkt: str | None
    metre_units: bool
    shape: tuple[int, int]
    transform: tuple[float, ...]
    dtypes: tuple[str, ...]
    nodata: float | None
    descriptions: tuple[str | None, ...]
    units: tuple[str | None, ...]


def raster_info(path: Path) -> RasterInfo:
    """Header of a raster (GeoTIFF, PNG); InputError when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                crs = ds.crs
                t = ds.transform
                units = tuple(
                    u or ds.tags(i + 1).get("units") or None for i, u in enumerate(ds.units)
                )
                return RasterInfo(
                    crs_code=f"EPSG:{crs.to_epsg()}" if crs and crs.to_epsg() else None,
                    crs_wkt=crs.to_wkt() if crs else None,
                    metre_units=bool(
                        crs
                        and crs.is_projected
                        and (crs.linear_units or "").lower() in ("metre", "meter")
                    ),
                    shape=(ds.height, ds.width),
                    transform=(t.a, t.b, t.c, t.d, t.e, t.f),
                    dtypes=tuple(ds.dtypes),
                    nodata=ds.nodata,
                    descriptions=tuple(ds.descriptions),
                    units=units,
                )
    except rasterio.RasterioIOError as exc:
        raise InputError(
            f"cannot read {path} as a raster ({exc}); is the product complete?"
        ) from exc


def footprint_wgs84(
    info: RasterInfo, path: Path, densify: int = 16
) -> tuple[dict[str, Any], list[float]]:
    """GeoJSON Polygon and bbox (WGS84, lon/lat) of a raster's grid, edges densified for the
    reprojection."""
    if info.crs_wkt is None:
        raise InputError(
            f"{path} has no CRS; the displacement and aligned products must be georeferenced"
        )
    h, w = info.shape
    a, b, c, d, e, f = info.transform
    steps = [i / densify for i in range(densify)]
    ring = (
        [(w * s, 0.0) for s in steps]
        + [(w, h * s) for s in steps]
        + [(w * (1 - s), h) for s in steps]
        + [(0.0, h * (1 - s)) for s in steps]
    )
    xs = [a * col + b * row + c for col, row in ring]
    ys = [d * col + e * row + f for col, row in ring]
    lon, lat = warp_transform(info.crs_wkt, "EPSG:4326", xs, ys)
    # drop the densified vertices that a straight line in WGS84 reproduces to within ~1 cm
    poly = Polygon(zip(lon, lat, strict=True)).simplify(1e-7, preserve_topology=True)
    poly = orient(poly, sign=1.0)  # RFC 7946: exterior ring counter-clockwise
    if not poly.is_valid or poly.is_empty:
        raise InputError(
            f"{path}: the grid footprint is not a valid polygon in WGS84 (does it cross the antimeridian?)"
        )
    return json.loads(json.dumps(mapping(poly))), list(poly.bounds)


def _data_type(dtype: str) -> str:
    return {"complex64": "cfloat32", "complex128": "cfloat64", "complex_int16": "cint16"}.get(
        dtype,
        dtype
        if dtype
        in (
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
        )
        else "other",
    )


def _nodata(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if float(value).is_integer() else value


def _raster_bands(key: str, info: RasterInfo) -> list[dict[str, Any]]:
    bands = []
    for i, dtype in enumerate(info.dtypes):
        band: dict[str, Any] = {"data_type": _data_type(dtype)}
        nodata = _nodata(info.nodata)
        if nodata is not None:
            band["nodata"] = nodata
        if info.descriptions[i]:
            band["name"] = info.descriptions[i]
        if info.units[i]:
            band["unit"] = info.units[i]
        if key == "displacement" and i < 2:
            band.update(
                name=DISPLACEMENT_BANDS[i][0], description=DISPLACEMENT_BANDS[i][1], unit="pixel"
            )
        elif key == "confidence":
            band.setdefault("name", "confidence")
            band["description"] = "registration confidence, 0 (none) to 1 (full inlier support)"
        bands.append(band)
    return bands


def _check_product(key: str, info: RasterInfo, path: Path) -> None:
    if key == "displacement" and (
        len(info.dtypes) != 2 or info.dtypes[0] not in ("float32", "float64")
    ):
        raise InputError(
            f"{path}: a displacement map has 2 float bands (dx, dy); found {len(info.dtypes)} band(s) of {info.dtypes[0]}"
        )
    if key == "confidence" and len(info.dtypes) != 1:
        raise InputError(f"{path}: a confidence raster has 1 band; found {len(info.dtypes)}")


# --- the Item ------------------------------------------------------------------------------


def _output_kind(key: str, path: Path) -> OutputKind:
    if key in OUTPUT_KINDS:
        return OUTPUT_KINDS[key]
    if path.suffix.lower() == ".png":
        return OutputKind(f"QA: {key.removeprefix('qa_').replace('_', ' ')}", QA_ROLES)
    return OutputKind(key.replace("_", " "), ("metadata",))


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coalign")
    except PackageNotFoundError:
        return "unknown"


def _score_properties(score: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in score.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(f"registration score {key}={value!r} is not a number")
        name = f"coalign:score_{key}"
        # JSON has no inf/nan: an unscorable pair (e.g. NaN shift at a tiepoint) is recorded as null
        out[name] = (
            int(value) if key == "tiepoints" else (float(value) if math.isfinite(value) else None)
        )
    return out


def _sar_properties(sar: Scene) -> dict[str, Any]:
    fields = {k: v for k, v in sar.sar.items() if k in SAR_FIELDS and v is not None}
    if not all(k in fields for k in SAR_REQUIRED):
        return {}  # the sar extension could not be declared validly
    if isinstance(fields["sar:polarizations"], (list, tuple)):
        fields["sar:polarizations"] = list(dict.fromkeys(fields["sar:polarizations"]))
    return fields


def _view_properties(scene: Scene) -> dict[str, Any]:
    view = {
        k: scene.properties[k]
        for k in VIEW_FIELDS
        if isinstance(scene.properties.get(k), (int, float))
    }
    for name, value in (
        ("view:off_nadir", scene.view_off_nadir),
        ("view:incidence_angle", scene.view_incidence_angle),
        ("view:azimuth", scene.view_azimuth),
    ):
        if value is not None:
            view[name] = value
    return view


def build_item(p: PublishedPair, software_version: str | None = None) -> dict[str, Any]:
    """The STAC Item document of one pair's outputs (asset hrefs: the absolute output paths);
    validated.

    Item-level view geometry: the SAR's incidence and azimuth (the grid the product is aligned to)
    and
    the optical's off-nadir (what drives its layover); the optical's full view geometry, platform
    and
    acquisition time sit on the ``aligned_optical`` asset.
    """
    outputs = {k: Path(v) for k, v in p.outputs.items()}
    if "displacement" not in outputs:
        raise InputError(
            f"pair {p.pair_id}: no 'displacement' output; outputs given: {sorted(outputs)}"
        )
    for key, path in outputs.items():
        if not path.is_file():
            raise InputError(f"pair {p.pair_id}: output {key!r} {path} does not exist")
        if key in ("aligned_optical", "displacement", "confidence") and path.suffix.lower() not in (
            ".tif",
            ".tiff",
        ):
            raise InputError(f"pair {p.pair_id}: output {key!r} {path} must be a GeoTIFF (.tif)")
    collection_id = slug(p.activation)  # the activation as given stays in coalign:activation

    infos = {
        k: raster_info(v)
        for k, v in outputs.items()
        if v.suffix.lower() in (".tif", ".tiff", ".png")
    }
    for key, info in infos.items():
        _check_product(key, info, outputs[key])
    grid_key = "aligned_optical" if "aligned_optical" in infos else "displacement"
    grid = infos[grid_key]
    geometry, bbox = footprint_wgs84(grid, outputs[grid_key])
    t_opt, t_sar = _iso(p.optical.datetime), _iso(p.sar.datetime)

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
    props["processing:software"] = {"coalign": software_version or _software_version()}
    props["processing:lineage"] = (
        f"Optical scene {p.optical.id} ({p.optical.platform or 'optical'}, {t_opt}) registered to "
        f"SAR scene {p.sar.id} ({p.sar.platform or 'SAR'}, {t_sar}) by coalign method "
        f"{p.method} {p.method_version}; displacement in the SpaceNet 9 convention."
    )
    if p.processed is not None:
        props["processing:datetime"] = _iso(p.processed)
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
        props.update(_score_properties(p.score))
    sar_props = _sar_properties(p.sar)
    props.update(sar_props)
    optical_view = _view_properties(p.optical)
    item_view = {
        k: v
        for k, v in _view_properties(p.sar).items()
        if k in ("view:incidence_angle", "view:azimuth")
    }
    if "view:off_nadir" in optical_view:
        item_view["view:off_nadir"] = optical_view["view:off_nadir"]
    props.update(item_view)

    extensions = [EXT["proj"], EXT["processing"], EXT["file"], EXT["raster"]]
    for key, path in outputs.items():
        kind = _output_kind(key, path)
        asset = pystac.Asset(
            href=str(path.resolve()),
            title=kind.title,
            description=kind.description or None,
            media_type=MEDIA_TYPES.get(path.suffix.lower()),
            roles=list(kind.roles),
        )
        asset.extra_fields["file:checksum"] = file_checksum(path)
        asset.extra_fields["file:size"] = path.stat().st_size
        info = infos.get(key)
        if info is not None and info.crs_wkt is not None:
            asset.extra_fields.update(
                {
                    "proj:code": info.crs_code,
                    "proj:shape": list(info.shape),
                    "proj:transform": list(info.transform),
                }
            )
            if info.crs_code is None:
                asset.extra_fields["proj:wkt2"] = info.crs_wkt
            asset.extra_fields["raster:bands"] = _raster_bands(key, info)
        elif info is not None:
            # an unlocated picture: proj:code null and its size, as the projection extension
            # recommends
            asset.extra_fields.update({"proj:code": None, "proj:shape": list(info.shape)})
        if key == "aligned_optical":
            # the pixels were acquired by the optical sensor, at the optical time, from its
            # viewpoint
            asset.extra_fields["datetime"] = t_opt
            if p.optical.platform:
                asset.extra_fields["platform"] = p.optical.platform
            asset.extra_fields.update(optical_view)
        item.add_asset(key, asset)
    if sar_props:
        extensions.append(EXT["sar"])
    if item_view or ("aligned_optical" in outputs and optical_view):
        extensions.append(EXT["view"])
    item.stac_extensions = extensions
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
                href = str(
                    Path(href).resolve()
                )  # a relative path would break once the item is moved
            item.add_link(
                pystac.Link(
                    "derived_from",
                    href,
                    media_type=pystac.MediaType.GEOJSON,
                    title=f"source {scene.sensor} scene {scene.id}",
                )
            )
    doc = item_document(item)
    schemas.validate(doc, what=f"STAC Item {item.id!r} of pair {p.pair_id}")
    return doc


def item_document(item: pystac.Item | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of an Item (no self link, hrefs as they are)."""
    if isinstance(item, pystac.Item):
        return item.to_dict(include_self_link=False, transform_hrefs=False)
    return json.loads(json.dumps(item))


def _as_item(item: pystac.Item | Mapping[str, Any]) -> pystac.Item:
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
        or f"Optical images aligned to SAR, displacement maps and QA for activation {activation} (coalign).",
        extent=pystac.Extent.from_items(items),
        license=license,
        providers=[pystac.Provider("coalign", roles=[pystac.ProviderRole.PROCESSOR])],
    )


# --- static catalog sink -------------------------------------------------------------------


class _CollectingIO(DefaultStacIO):
    """Collects what pystac would write, so every document is validated before any is written."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, str] = {}

    def write_text_to_href(self, href: str, txt: str) -> None:
        self.documents[href] = txt


def publish_static(
    item: pystac.Item | Mapping[str, Any],
    root: str | os.PathLike[str],
    *,
    copy_assets: bool = True,
    description: str | None = None,
    license: str = "other",
) -> Path:
    """Add (or replace) ``item`` in the self-contained static catalog at ``root``; returns the
    Item's path.

    Layout (STAC best practices): ``root/catalog.json`` → ``root/<activation>/collection.json`` →
    ``root/<activation>/<item id>/<item id>.json``, with every href relative
    (``CatalogType.SELF_CONTAINED``). Assets are copied next to their Item as ``<key><suffix>``
    (``copy_assets=False`` references the files where they are, by relative path). Re-publishing
    an Item id replaces it; the collection extent is recomputed from its items. Every document is
    validated before any is written, each is written atomically, and the catalog is locked while
    it is updated.
    """
    root = Path(root).resolve()
    new = _as_item(item)
    activation = new.collection_id
    if not activation:
        raise InputError(
            f"STAC Item {new.id!r} has no collection (activation); cannot place it in a catalog"
        )
    schemas.validate(item_document(new), what=f"STAC Item {new.id!r}")
    # pairs of one activation publish concurrently: one writer per catalog at a time
    with locked(root / ".coalign-publish.lock"):
        cat_path = root / "catalog.json"
        if cat_path.exists():
            try:
                catalog = pystac.Catalog.from_file(str(cat_path))
            except Exception as exc:  # pystac raises several types for a damaged file
                raise CatalogError(
                    f"cannot read the existing catalog {cat_path}: {exc}; move it away or fix it"
                ) from exc
        else:
            catalog = pystac.Catalog(
                id="coalign",
                title="coalign",
                description="Optical images aligned to SAR by coalign, "
                "with displacement maps (SpaceNet 9 convention), confidence and QA pictures.",
            )
        collection = catalog.get_child(activation)
        if collection is not None and not isinstance(collection, pystac.Collection):
            raise CatalogError(f"{cat_path}: child {activation!r} is a Catalog, not a Collection")

        item_dir = root / activation / new.id
        kept: set[str] = {f"{new.id}.json"}
        for key, asset in new.assets.items():
            href = asset.get_absolute_href() or asset.href
            if re.match(r"^[a-z][a-z0-9+.-]*://", href) and not href.startswith("file://"):
                continue  # remote asset: referenced as it is
            src = Path(href.removeprefix("file://"))
            if not src.is_file():
                raise InputError(f"STAC Item {new.id!r}: asset {key!r} file {src} does not exist")
            if copy_assets:
                dst = item_dir / f"{key}{src.suffix.lower()}"
                copy_atomic(src, dst)
                asset.href = str(dst)
                kept.add(dst.name)
            else:
                asset.href = str(src.resolve())

        if collection is None:
            collection = build_collection(activation, [new], description, license)
            catalog.add_child(collection)
        elif any(True for _ in collection.get_items(new.id)):
            collection.remove_item(new.id)
        collection.add_item(new)
        collection.update_extent_from_items()
        catalog.normalize_hrefs(str(root), skip_unresolved=True)
        new.make_asset_hrefs_relative()

        io = _CollectingIO()
        catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=io)
        for href, text in io.documents.items():
            schemas.validate(json.loads(text), what=href)
        for href, text in io.documents.items():
            write_atomic(Path(href), text.encode("utf-8"))
        if item_dir.is_dir():
            # outputs a previous run published but this one did not (e.g. residuals without
            # tiepoints)
            for stale in item_dir.iterdir():
                if stale.is_file() and stale.name not in kept and not stale.name.startswith("."):
                    stale.unlink()
    return item_dir / f"{new.id}.json"


# --- STAC API sink -------------------------------------------------------------------------


def api_document(item: pystac.Item | Mapping[str, Any], api_url: str) -> dict[str, Any]:
    """The Item as sent to a STAC API at ``api_url``: absolute asset hrefs, hierarchical links left
    to the API
    except ``collection`` (required by STAC 1.1 with the ``collection`` field), pointing at the
    API's collection."""
    it = _as_item(item)
    for asset in it.assets.values():
        asset.href = asset.get_absolute_href() or asset.href
    doc = it.to_dict(include_self_link=False, transform_hrefs=False)
    if not doc.get("collection"):
        raise InputError(
            f"STAC Item {doc.get('id')!r} has no collection (activation); a STAC API stores items in collections"
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
    license: str = "other",
    client: TransactionClient | None = None,
) -> str:
    """Create or update ``item`` through a STAC API Transaction endpoint; ``"created"`` or
    ``"updated"``.

    The activation's collection is created when missing and its extent widened to cover the item.
    """
    doc = api_document(item, url)
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
