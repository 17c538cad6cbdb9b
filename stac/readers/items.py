"""Scenes from STAC Items: which asset is the image, its time, footprint and metadata."""

from __future__ import annotations

import datetime as dt
import logging
import os
import posixpath
import re
from typing import Any
from urllib.parse import urlparse

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from core.errors import CatalogError
from stac.licenses import SourceLicense, document_license
from stac.links import resolve, trusted_link
from stac.readers.documents import parse_datetime
from stac.scene import Scene

log = logging.getLogger(__name__)

# Umbra's v2 sidecars point at this private bucket; the same files are public under sar-data/tasks/
UMBRA_PRIVATE_BUCKETS = ("prod-prod-processed-sar-data",)
UMBRA_PUBLIC_TASKS = "s3://umbra-open-data-catalog/sar-data/tasks/"
GEOTIFF = "image/tiff"
_ASSET_FIELD_TYPES = (("href", str), ("type", str), ("title", str), ("roles", list))


def _crs(d: dict[str, Any]) -> str | None:
    if d.get("proj:code"):
        return str(d["proj:code"])
    if d.get("proj:epsg"):
        return f"EPSG:{d['proj:epsg']}"
    return None


def _is_geotiff(asset: dict[str, Any], key: str) -> bool:
    return (
        GEOTIFF in asset.get("type", "")
        or key.lower().endswith((".tif", ".tiff"))
        or asset.get("href", "").lower().endswith((".tif", ".tiff"))
    )


def _sar_asset(assets: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The GEC image: ``asset-GEC`` (static catalog), else the v2 sidecar's ``*_GEC.tif`` or plain
    product TIFF (``*_MM.tif``, title TIFF) — not the CSI colour product, not NITF/CPHD/SICD."""
    if "asset-GEC" in assets:
        return "asset-GEC", assets["asset-GEC"]
    for key, a in assets.items():
        if key.upper().endswith("_GEC.TIF") or str(a.get("title", "")).upper() == "GEC":
            return key, a
    for key, a in assets.items():
        if (
            _is_geotiff(a, key)
            and "data" in a.get("roles", ["data"])
            and "CSI" not in key.upper()
            and "CSI" not in str(a.get("title", "")).upper()
        ):
            return key, a
    return None


def _optical_asset(assets: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """Maxar's RGB ``visual`` COG, else the first data GeoTIFF."""
    if "visual" in assets:
        return "visual", assets["visual"]
    return next(
        ((k, a) for k, a in assets.items() if _is_geotiff(a, k) and "data" in a.get("roles", [])),
        None,
    )


def public_umbra_href(href: str, item_href: str, props: dict[str, Any]) -> str:
    """The public copy of a file an Umbra v2 sidecar names in the private processing bucket.

    Public products live in ``sar-data/tasks/<task name>/<task id>/<acquisition>/`` next to
    their ``<acquisition>.stac.v2.json`` sidecar, so a sidecar read from its public location
    resolves the file name against itself. Without that location (a copied sidecar) the
    task name is unknown and the result is a best guess under ``sar-data/tasks/<task id>/``
    (``COALIGN_UMBRA_PUBLIC_TASKS`` overrides the prefix).

    Args:
        href: The asset href the sidecar gives.
        item_href: Where the sidecar was read.
        props: The sidecar's properties (``umbra:task_id``).
    """
    p = urlparse(href)
    if p.scheme != "s3" or p.netloc not in UMBRA_PRIVATE_BUCKETS:
        return href
    name = posixpath.basename(p.path)
    if item_href and urlparse(item_href).netloc not in UMBRA_PRIVATE_BUCKETS:
        return resolve(item_href, name)
    prefix = os.environ.get("COALIGN_UMBRA_PUBLIC_TASKS", UMBRA_PUBLIC_TASKS).rstrip("/") + "/"
    acquisition = re.match(r"^(\d{4}(?:-\d{2}){5}_UMBRA-\d+)", name)
    parts = [str(props.get("umbra:task_id", "")), acquisition.group(1) if acquisition else "", name]
    log.warning(
        "Umbra sidecar without a public location: guessing %s for %s",
        prefix + "/".join(x for x in parts if x),
        href,
    )
    return prefix + "/".join(x for x in parts if x)


def _number(*values: Any) -> float | None:
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _malformed(item: dict[str, Any], item_href: str, what: str) -> CatalogError:
    return CatalogError(
        f"STAC item {str(item.get('id'))[:100]} ({item_href or 'no href'}) is malformed: {what}"
    )


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _item_parts(item: dict[str, Any], item_href: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``properties`` and ``assets`` of an Item, checked for the types this module reads."""
    parts = []
    for name in ("properties", "assets"):
        value = item.get(name)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise _malformed(item, item_href, f"{name} is {_json_type(value)}, not an object")
        parts.append(value)
    props, assets = parts
    for key, asset in assets.items():
        if not isinstance(asset, dict):
            raise _malformed(
                item, item_href, f"asset {key!r} is {_json_type(asset)}, not an object"
            )
        for field_name, kind in _ASSET_FIELD_TYPES:
            if asset.get(field_name) is not None and not isinstance(asset[field_name], kind):
                raise _malformed(
                    item,
                    item_href,
                    f"asset {key!r} {field_name} is {_json_type(asset[field_name])}",
                )
    if not isinstance(item.get("id"), (str, int)):
        raise _malformed(item, item_href, f"its id is {_json_type(item.get('id'))}")
    return props, assets


def _item_time(item: dict[str, Any], item_href: str, props: dict[str, Any]) -> dt.datetime:
    try:
        when = parse_datetime(props.get("datetime")) or parse_datetime(props.get("start_datetime"))
    except (ValueError, TypeError, AttributeError):
        raise _malformed(
            item,
            item_href,
            f"datetime {str(props.get('datetime'))[:50]!r} / start_datetime "
            f"{str(props.get('start_datetime'))[:50]!r} is not RFC 3339",
        ) from None
    if when is None:
        raise CatalogError(
            f"STAC item {item.get('id')} ({item_href or 'no href'}) has no datetime or "
            "start_datetime"
        )
    return when


def _footprint(item: dict[str, Any], item_href: str) -> BaseGeometry:
    try:
        return shapely.force_2d(shape(item["geometry"]))  # Umbra footprints carry heights
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CatalogError(
            f"STAC item {item.get('id')} ({item_href or 'no href'}) has a bad geometry: {exc}"
        ) from None


def _gsd(props: dict[str, Any], asset: dict[str, Any], is_sar: bool) -> float | None:
    gsd = _number(props.get("gsd"), asset.get("gsd"))
    if gsd is None and is_sar:
        # no gsd in Umbra items: the coarser of the two resolutions stands in for it
        res = [
            v
            for v in (
                _number(props.get("sar:resolution_range")),
                _number(props.get("sar:resolution_azimuth")),
            )
            if v
        ]
        gsd = max(res) if res else None
    return gsd


def scene_from_item(
    item: dict[str, Any],
    item_href: str = "",
    source: str = "",
    inherited: SourceLicense | None = None,
) -> Scene | None:
    """The optical or SAR scene a STAC Item describes; ``None`` when it has no image to read
    (no footprint, no image asset, or an empty href as in Umbra's metadata-only v1 items).

    Args:
        item: The Item (a JSON object).
        item_href: Where the Item was read: relative asset hrefs resolve against it, and an Item
            read over http(s)/s3 may only name http(s)/s3 assets (:func:`stac.links.trusted_link`).
        source: Where an Item without ``item_href`` came from (a STAC API URL), for that check.
        inherited: The license of the Collection the Item was reached through (used when the
            Item states none; :func:`stac.licenses.document_license`).

    Raises:
        CatalogError: The Item is malformed, or it has no time.
        UntrustedLink: A remote Item names a local asset.
    """
    props, assets = _item_parts(item, item_href)
    is_sar = (
        any(str(k).startswith("sar:") for k in props)
        or "asset-GEC" in assets
        or props.get("constellation") == "umbra"
    )
    found = _sar_asset(assets) if is_sar else _optical_asset(assets)
    if found is None or not item.get("geometry") or not found[1].get("href"):
        log.debug(
            "STAC item %s (%s) has no readable image asset; skipped", item.get("id"), item_href
        )
        return None
    key, asset = found
    base = item_href or source
    href = trusted_link(base, asset["href"], f"asset {key!r}") if base else asset["href"]
    if is_sar:
        href = public_umbra_href(href, item_href, props)
    when = _item_time(item, item_href, props)
    footprint = _footprint(item, item_href)
    lic = document_license(item, item_href or source, inherited) or SourceLicense()
    return Scene(
        id=str(item["id"]),
        sensor="sar" if is_sar else "optical",
        platform=props.get("platform"),
        datetime=when,
        footprint=footprint,
        href=href,
        crs=_crs(props) or _crs(asset),
        gsd=_gsd(props, asset, is_sar),
        collection=item.get("collection"),
        item_href=item_href or None,
        view_off_nadir=_number(props.get("view:off_nadir"), asset.get("view:off_nadir")),
        view_incidence_angle=_number(
            props.get("view:incidence_angle"), asset.get("view:incidence_angle")
        ),
        view_azimuth=_number(props.get("view:azimuth"), asset.get("view:azimuth")),
        sar={k: v for k, v in props.items() if k.startswith("sar:")},
        checksum=asset.get("file:checksum"),
        properties={
            k: v
            for k, v in props.items()
            if not isinstance(v, (dict, list)) or k.startswith("sar:")
        },
        asset_key=key,
        license=lic.spdx,
        license_href=lic.href,
    )
