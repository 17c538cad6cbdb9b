"""The fields of a product Item: asset kinds, score, sar and view properties, one asset."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac

from core.errors import InputError
from stac.checksum import file_checksum
from stac.publish.products import RasterInfo, raster_bands
from stac.scene import Scene

GEOTIFF = "image/tiff; application=geotiff; profile=cloud-optimized"
MEDIA_TYPES = {
    ".tif": GEOTIFF,
    ".tiff": GEOTIFF,
    ".png": "image/png",
    ".csv": "text/csv",
    ".gpkg": "application/geopackage+sqlite3",
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
        "SAR-minus-optical shift at every optical pixel, in optical pixels "
        "(SpaceNet 9 convention).",
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
    "residual_points": OutputKind(
        "Tiepoint residuals (GeoPackage)",
        ("data",),
        "Layer 'residuals': one point per tiepoint at its optical position (optical CRS), with "
        "its reference and predicted shifts, errors and the confidence there.",
    ),
}
QA_ROLES = ("overview", "visual")

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


def output_kind(key: str, path: Path) -> OutputKind:
    """The asset description of output ``key`` (a QA picture for other PNGs, else metadata)."""
    if key in OUTPUT_KINDS:
        return OUTPUT_KINDS[key]
    if path.suffix.lower() == ".png":
        return OutputKind(f"QA: {key.removeprefix('qa_').replace('_', ' ')}", QA_ROLES)
    return OutputKind(key.replace("_", " "), ("metadata",))


def software_version() -> str:
    """The installed coalign version (``unknown`` outside an installed package)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coalign")
    except PackageNotFoundError:
        return "unknown"


def score_properties(score: Mapping[str, float]) -> dict[str, Any]:
    """``coalign:score_<key>`` properties of an SN9 score summary (non-finite values as null)."""
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


def sar_properties(sar: Scene) -> dict[str, Any]:
    """The sar v1.0 fields of the SAR scene; empty when the required ones are missing."""
    fields = {k: v for k, v in sar.sar.items() if k in SAR_FIELDS and v is not None}
    if not all(k in fields for k in SAR_REQUIRED):
        return {}  # the sar extension could not be declared validly
    if isinstance(fields["sar:polarizations"], (list, tuple)):
        fields["sar:polarizations"] = list(dict.fromkeys(fields["sar:polarizations"]))
    return fields


def view_properties(scene: Scene) -> dict[str, Any]:
    """The view v1.0 fields of a scene (its properties, overridden by the parsed values)."""
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


@dataclass(frozen=True)
class SensorSource:
    """What an asset carries over from the source scene its pixels or values refer to."""

    datetime: str
    platform: str | None
    view: Mapping[str, Any]


def build_asset(
    key: str, path: Path, info: RasterInfo | None, sources: Mapping[str, SensorSource]
) -> pystac.Asset:
    """The asset of output ``key`` at ``path`` (absolute href), with file, proj and raster fields.

    Args:
        key: The output kind (``displacement``, ``qa_overlay``…).
        path: The output file.
        info: Its raster header; None for a file that is not a raster (CSV).
        sources: Time, platform and view of the scene each asset key refers to
            (``aligned_optical``: the optical scene; ``displacement``: the SAR scene).
    """
    kind = output_kind(key, path)
    asset = pystac.Asset(
        href=str(path.resolve()),
        title=kind.title,
        description=kind.description or None,
        media_type=MEDIA_TYPES.get(path.suffix.lower()),
        roles=list(kind.roles),
    )
    asset.extra_fields["file:checksum"] = file_checksum(path)
    asset.extra_fields["file:size"] = path.stat().st_size
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
        asset.extra_fields["raster:bands"] = raster_bands(key, info)
    elif info is not None:
        # an unlocated picture: proj:code null and its size, as the projection extension
        # recommends
        asset.extra_fields.update({"proj:code": None, "proj:shape": list(info.shape)})
    source = sources.get(key)
    if source is not None:
        # the sensor, time and viewpoint of the acquisition the asset's values refer to
        asset.extra_fields["datetime"] = source.datetime
        if source.platform:
            asset.extra_fields["platform"] = source.platform
        asset.extra_fields.update(source.view)
    return asset
