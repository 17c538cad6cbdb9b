"""Height input: a DSM (and optionally a bare-terrain DTM) read by windows onto a working grid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.errors import RasterioIOError
from shapely.geometry import Polygon

from core.errors import InputError
from core.grid import Grid, north_up_grid
from models.raster import RasterSource, read_on_grid

HeightRole = Literal["DSM", "DTM"]
OPTIONS: dict[str, str] = {"DSM": "--dsm", "DTM": "--dtm"}
# vertical units GDAL reports (band unit type) and their size in metres; "" = not stated: metres
METRES_PER_UNIT = {
    "": 1.0,
    "m": 1.0,
    "metre": 1.0,
    "metres": 1.0,
    "meter": 1.0,
    "meters": 1.0,
    "ft": 0.3048,
    "foot": 0.3048,
    "feet": 0.3048,
    "us-ft": 1200.0 / 3937.0,
    "ftus": 1200.0 / 3937.0,
}
# GDAL options for reading a remote DSM by HTTP range requests without listing its folder
REMOTE_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "3"}


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL or a GDAL virtual file system path (not a local file)."""
    return "://" in path or path.startswith("/vsi")


@dataclass(frozen=True)
class HeightSource:
    """An opened-and-checked height raster: its raster source and its vertical scale to metres."""

    raster: RasterSource
    role: HeightRole
    metres_per_unit: float = 1.0

    @property
    def path(self) -> str:
        return self.raster.path

    def record(self, crs: CRS, footprint: Polygon) -> dict[str, Any]:
        """Path, CRS and the share of ``footprint`` (a polygon in ``crs``) the raster covers.

        Args:
            crs: The CRS of ``footprint``.
            footprint: The area the height is needed over (the optical footprint).

        ``coverage`` is :func:`data_coverage`: the share of ``footprint`` with height data.
        """
        return {
            "path": self.path,
            "crs": _crs_name(self.raster.grid.crs),
            "resolution": round(self.raster.grid.resolution, 9),
            "coverage": round(data_coverage(self, crs, footprint), 4),
        }


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def open_height(path: str | os.PathLike[str], role: HeightRole = "DSM") -> HeightSource:
    """Open a height raster (GeoTIFF/COG, local path or http(s)/s3 URL) and check it.

    Args:
        path: The raster: one band of heights, georeferenced, any CRS and resolution.
        role: What it is to the user (``DSM`` surface or ``DTM`` bare terrain): named in errors.

    Raises:
        InputError: The file is missing or unreadable, has no CRS or geotransform, has more than
            one band, or states a vertical unit that is not a length.
    """
    p, option = os.fspath(path), OPTIONS[role]
    if not is_remote(p) and not Path(p).exists():
        raise InputError(f"{role} file not found: {p} (check the {option} path)")
    try:
        with rasterio.Env(**REMOTE_ENV), rasterio.open(p) as ds:
            count, dtype, nodata, unit = ds.count, ds.dtypes[0], ds.nodata, ds.units[0]
            crs, transform, width, height = ds.crs, ds.transform, ds.width, ds.height
    except RasterioIOError as exc:
        raise InputError(
            f"{role} file {p} is not a readable raster ({exc}); give a GeoTIFF or COG to {option}"
        ) from exc
    if crs is None or transform.is_identity:
        raise InputError(
            f"{role} file {p} has no CRS or geotransform; georeference it (e.g. gdal_edit.py "
            f"-a_srs EPSG:4326) and give it to {option} again"
        )
    if count != 1:
        raise InputError(
            f"{role} file {p} has {count} bands; expected 1 band of heights "
            "(extract it with gdal_translate -b 1)"
        )
    scale = METRES_PER_UNIT.get((unit or "").strip().lower())
    if scale is None:
        raise InputError(
            f"{role} file {p} states heights in {unit!r}; give heights in metres or feet "
            "(gdal_edit.py -units m when they are metres)"
        )
    grid = Grid(CRS.from_user_input(crs.to_wkt()), transform, width, height)
    return HeightSource(RasterSource(p, "raster", grid, count, dtype, nodata), role, scale)


def read_height(source: HeightSource, grid: Grid) -> np.ndarray:
    """Heights in metres on ``grid``, float32 ``(H, W)``, NaN where the raster has no data.

    Only the window of the raster under ``grid`` is read, decimated while reading (through the
    file's overviews when it has them) when the raster is much finer than ``grid``, then warped
    bilinearly onto ``grid`` (any CRS and transform: a geographic DEM under a UTM grid is fine).

    Args:
        source: The height raster (:func:`open_height`).
        grid: The grid to read onto.
    """
    env = REMOTE_ENV if is_remote(source.path) else {}
    with rasterio.Env(**env):
        heights = read_on_grid(source.raster, grid)[0]
    if source.metres_per_unit != 1.0:
        heights *= np.float32(source.metres_per_unit)
    return heights


def height_above_terrain(dsm: np.ndarray, dtm: np.ndarray) -> np.ndarray:
    """Height of the surface above the bare terrain, ``max(dsm - dtm, 0)``; NaN where either is.

    Args:
        dsm: Surface heights (terrain + structures), metres.
        dtm: Bare-terrain heights on the same grid, metres.
    """
    if dsm.shape != dtm.shape:
        raise ValueError(f"DSM {dsm.shape} and DTM {dtm.shape} must be on the same grid")
    diff = np.asarray(dsm, np.float32) - np.asarray(dtm, np.float32)
    return np.maximum(diff, np.float32(0.0))  # NaN stays NaN


def coverage(source: HeightSource, crs: CRS, footprint: Polygon) -> float:
    """The share of ``footprint`` (a polygon in ``crs``) inside the raster's outline.

    Args:
        source: The height raster.
        crs: The CRS of ``footprint``.
        footprint: The area the height is needed over.
    """
    if footprint.is_empty or footprint.area <= 0:
        return 0.0
    outline = source.raster.grid.footprint_in(crs, densify=32)
    return float(outline.intersection(footprint).area / footprint.area)


def data_coverage(source: HeightSource, crs: CRS, footprint: Polygon, side: int = 128) -> float:
    """The share of ``footprint`` (a polygon in ``crs``) where the raster has height data,
    measured on a grid of at most ``side`` × ``side`` points over it (a decimated windowed read).

    Args:
        source: The height raster.
        crs: The CRS of ``footprint``.
        footprint: The area the height is needed over.
        side: Sample points along the longer side of ``footprint``'s bounds.
    """
    if footprint.is_empty or footprint.area <= 0 or coverage(source, crs, footprint) <= 0:
        return 0.0
    minx, miny, maxx, maxy = footprint.bounds
    grid = north_up_grid(crs, footprint.bounds, max(maxx - minx, maxy - miny) / side)
    x, y = grid.pixel_centres()
    inside = shapely.contains_xy(footprint, x, y)
    if not inside.any():
        return coverage(source, crs, footprint)
    return float(np.isfinite(read_height(source, grid))[inside].mean())


@dataclass(frozen=True)
class HeightModel:
    """The height a registration may use: the DSM (surface: terrain + structures) and optionally
    the DTM (bare terrain), both in metres."""

    dsm: HeightSource
    dtm: HeightSource | None = None
    vertical_unit: str = "metre"

    @classmethod
    def open(
        cls,
        dsm: str | os.PathLike[str],
        dtm: str | os.PathLike[str] | None = None,
        crs: CRS | None = None,
        footprint: Polygon | None = None,
        where: str = "the optical image",
    ) -> HeightModel:
        """Open and check the DSM (and DTM); with ``footprint``, each must overlap it.

        Args:
            dsm: The DSM (or a DEM when only terrain is known): a path or URL.
            dtm: The bare-terrain DTM: a path or URL; none = not given.
            crs: The CRS of ``footprint``.
            footprint: The area the height is needed over; none = not checked.
            where: What ``footprint`` is, for the error.

        Raises:
            InputError: A file fails :func:`open_height`, or does not overlap ``footprint``.
        """
        model = cls(open_height(dsm, "DSM"), open_height(dtm, "DTM") if dtm else None)
        if footprint is not None and crs is not None:
            for source in model.sources():
                if coverage(source, crs, footprint) <= 0.0:
                    raise InputError(
                        f"{source.role} file {source.path} does not overlap {where}; give a "
                        f"{source.role} that covers the pair to {OPTIONS[source.role]}"
                    )
        return model

    def sources(self) -> list[HeightSource]:
        """The DSM, then the DTM when given."""
        return [self.dsm] + ([self.dtm] if self.dtm else [])

    def read(self, grid: Grid) -> tuple[np.ndarray, np.ndarray | None]:
        """DSM and DTM heights (metres, NaN without data) on ``grid``; the DTM None when absent.

        Args:
            grid: The grid to read onto.
        """
        return read_height(self.dsm, grid), read_height(self.dtm, grid) if self.dtm else None

    def record(self, crs: CRS, footprint: Polygon) -> dict[str, Any]:
        """What a result records about the height: each source's path, CRS, resolution and the
        share of ``footprint`` it gives heights over, and the vertical unit.

        Args:
            crs: The CRS of ``footprint``.
            footprint: The optical footprint.
        """
        out: dict[str, Any] = {"vertical_unit": self.vertical_unit}
        for source in self.sources():
            out[source.role.lower()] = source.record(crs, footprint)
        return out


def open_height_model(
    dsm: str | os.PathLike[str] | None,
    dtm: str | os.PathLike[str] | None,
    crs: CRS,
    footprint: Polygon,
    optical: str = "",
) -> HeightModel | None:
    """The pair's height model when a DSM is given (checked to overlap the optical footprint).

    Args:
        dsm: The DSM or DEM path/URL; none = no height.
        dtm: The bare-terrain DTM path/URL; only with ``dsm``.
        crs: The working CRS of ``footprint``.
        footprint: The optical footprint.
        optical: The optical file, named in errors.

    Raises:
        InputError: A DTM without a DSM, or a height file :meth:`HeightModel.open` refuses.
    """
    if dtm and not dsm:
        raise InputError(
            f"--dtm {dtm} is the bare terrain under a DSM: give the surface model with --dsm too "
            "(or give a terrain-only DEM to --dsm)"
        )
    if not dsm:
        return None
    where = f"the optical image {optical}" if optical else "the optical image"
    return HeightModel.open(dsm, dtm, crs, footprint, where)
