"""What a STAC Item needs from the product rasters: headers, WGS84 footprints, raster bands."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from shapely.geometry import Polygon, mapping
from shapely.geometry.polygon import orient

from core.errors import InputError

DISPLACEMENT_BANDS = (
    ("dx", "x-shift (x_sar - x_optical) / gt_optical[1], in optical pixels"),
    ("dy", "y-shift (y_sar - y_optical) / gt_optical[5], in optical pixels"),
)
# raster extension v1.1 data types named as numpy/GDAL name them
_DATA_TYPES = frozenset(
    (
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
)
_COMPLEX_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64", "complex_int16": "cint16"}


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
            f"{path}: the grid footprint is not a valid polygon in WGS84 "
            "(does it cross the antimeridian?)"
        )
    return json.loads(json.dumps(mapping(poly))), list(poly.bounds)


def _data_type(dtype: str) -> str:
    if dtype in _COMPLEX_TYPES:
        return _COMPLEX_TYPES[dtype]
    return dtype if dtype in _DATA_TYPES else "other"


def _nodata(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if float(value).is_integer() else value


def raster_bands(key: str, info: RasterInfo) -> list[dict[str, Any]]:
    """The ``raster:bands`` of the output ``key`` (names and units of the displacement and
    confidence bands spelled out)."""
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


def check_product(key: str, info: RasterInfo, path: Path) -> None:
    """InputError unless a displacement map has 2 float bands and a confidence raster 1 band."""
    if key == "displacement" and (
        len(info.dtypes) != 2 or info.dtypes[0] not in ("float32", "float64")
    ):
        raise InputError(
            f"{path}: a displacement map has 2 float bands (dx, dy); found {len(info.dtypes)} "
            f"band(s) of {info.dtypes[0]}"
        )
    if key == "confidence" and len(info.dtypes) != 1:
        raise InputError(f"{path}: a confidence raster has 1 band; found {len(info.dtypes)}")
