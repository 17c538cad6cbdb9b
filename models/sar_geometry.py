"""SAR acquisition geometry: incidence, look direction, projection, and the layover they imply."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Geod, Transformer
from rasterio.errors import RasterioIOError

from core.errors import InputError

# GeoTIFF dataset tags (default metadata domain) that carry the geometry of a SAR file
TAG_INCIDENCE = "SAR_INCIDENCE_ANGLE"
TAG_LOOK_AZIMUTH = "SAR_LOOK_AZIMUTH"
TAG_GROUND_PROJECTED = "SAR_GROUND_PROJECTED"
# warned when a height model is given (the height is only usable with the geometry)
GEOMETRY_UNKNOWN = (
    "SAR acquisition geometry unknown, so the height model is not used: give --sar-incidence and "
    "--sar-look-azimuth, or a STAC item with view:incidence_angle/view:azimuth"
)
_NAMES = {
    "option": ("--sar-incidence", "--sar-look-azimuth"),
    "stac": ("view:incidence_angle", "view:azimuth"),
    "geotiff tags": (f"tag {TAG_INCIDENCE}", f"tag {TAG_LOOK_AZIMUTH}"),
}
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class SarGeometry:
    """How the SAR saw the scene.

    ``incidence_deg``: angle of the line of sight from the local vertical at the scene, in
    (0, 90). ``look_azimuth_deg``: ground azimuth of the range direction (from the sensor towards
    the scene, the direction of increasing range), degrees clockwise from true north in [0, 360).
    ``ground_projected``: the image is on the ground plane (GEC, GRD, ... products), not in slant
    range. ``source``: where the values came from (``option``, ``stac``, ``geotiff tags``);
    ``detail``: which file or item, and how the values were read from it.
    """

    incidence_deg: float
    look_azimuth_deg: float
    ground_projected: bool = True
    source: str = "option"
    detail: str = ""

    def __post_init__(self) -> None:
        inc_name, az_name = _NAMES.get(self.source, ("incidence angle", "look azimuth"))
        where = f" ({self.source}{': ' + self.detail if self.detail else ''})"
        inc, az = _finite(self.incidence_deg), _finite(self.look_azimuth_deg)
        if inc is None or not 0.0 < inc < 90.0:
            raise InputError(
                f"{inc_name} {self.incidence_deg}{where}: the SAR incidence angle must be in "
                "(0, 90) degrees from the vertical; give the angle at the scene centre"
            )
        if az is None or not 0.0 <= az <= 360.0:
            raise InputError(
                f"{az_name} {self.look_azimuth_deg}{where}: the SAR look azimuth must be in "
                "[0, 360] degrees clockwise from north (the ground direction of increasing range)"
            )
        object.__setattr__(self, "incidence_deg", inc)
        object.__setattr__(self, "look_azimuth_deg", az % 360.0)
        object.__setattr__(self, "ground_projected", bool(self.ground_projected))

    def look_vector(
        self, crs: CRS | None = None, at: tuple[float, float] | None = None
    ) -> tuple[float, float]:
        """Unit vector of the look direction (sensor → scene) in map x/y.

        Without ``crs`` and ``at`` the frame is local east/north: ``(sin a, cos a)``. In a
        projected CRS, grid north differs from true north by the meridian convergence (about
        1-3 degrees near the edge of a UTM zone, more in other projections); given the working
        ``crs`` and a point ``at`` (x, y in it), the azimuth is carried along the ellipsoid for
        one metre from that point and the result is that step in the CRS, normalised. The vector
        is in map coordinates whatever the image grid's rotation; :func:`map_to_pixels` turns it
        into columns and rows of a (rotated) grid.

        Args:
            crs: The map CRS (projected or geographic); none = local east/north.
            at: The point (x, y in ``crs``) the direction is wanted at; needed with ``crs``.
        """
        a = math.radians(self.look_azimuth_deg)
        if crs is None or at is None:
            return math.sin(a), math.cos(a)
        crs = CRS.from_user_input(crs)
        to_geo = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
        lon, lat = to_geo.transform(*at)
        lon2, lat2, _ = _GEOD.fwd(lon, lat, self.look_azimuth_deg, 1.0)
        x2, y2 = to_geo.transform(lon2, lat2, direction="INVERSE")
        dx, dy = x2 - at[0], y2 - at[1]
        norm = math.hypot(dx, dy)
        return dx / norm, dy / norm

    def layover_shift_m(
        self,
        height_m: float | np.ndarray,
        crs: CRS | None = None,
        at: tuple[float, float] | None = None,
    ) -> tuple[Any, Any]:
        """Ground-plane displacement of a point at ``height_m`` above the reference surface in a
        ground-projected image: ``h·cot(incidence)`` metres towards the sensor (opposite the
        look direction), as ``(dx, dy)`` in the frame of :meth:`look_vector`.

        A slant-range image moves the point by ``h·cos(incidence)`` along the slant range
        instead; this helper gives the ground-plane value either way.

        Args:
            height_m: Height above the reference surface in metres (a number or an array).
            crs: The map CRS of ``dx, dy`` (see :meth:`look_vector`); none = east/north.
            at: The point the direction is taken at (x, y in ``crs``).
        """
        ux, uy = self.look_vector(crs, at)
        length = np.asarray(height_m, dtype=float) / math.tan(math.radians(self.incidence_deg))
        dx, dy = -length * ux, -length * uy
        if np.ndim(dx) == 0:
            return float(dx), float(dy)
        return dx, dy

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready record (register JSON, record.json, task arguments)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> SarGeometry | None:
        """The geometry of :meth:`to_record`'s record; none for none."""
        return None if record is None else cls(**record)


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def map_to_pixels(transform: Affine, dx: Any, dy: Any) -> tuple[Any, Any]:
    """A map offset ``(dx, dy)`` as columns and rows of a grid with ``transform`` (rotated or
    not): the inverse of its linear part.

    Args:
        transform: The grid's pixel-to-map transform.
        dx: Offset along map x (a number or an array).
        dy: Offset along map y.
    """
    a, b, d, e = transform.a, transform.b, transform.d, transform.e
    det = a * e - b * d
    return (e * dx - b * dy) / det, (-d * dx + a * dy) / det


def geometry_from_options(
    incidence: float | None, look_azimuth: float | None, ground_projected: bool | None = None
) -> SarGeometry | None:
    """The geometry given on the command line; none when neither angle is.

    Args:
        incidence: ``--sar-incidence`` in degrees.
        look_azimuth: ``--sar-look-azimuth`` in degrees.
        ground_projected: ``--sar-ground-projected`` (True) or ``--sar-slant`` (False); none =
            ground-projected (a SAR GeoTIFF on a map grid).

    Raises:
        InputError: Only one angle given, a projection option without the angles, or an angle
            out of range.
    """
    if incidence is None and look_azimuth is None:
        if ground_projected is not None:
            flag = "--sar-ground-projected" if ground_projected else "--sar-slant"
            raise InputError(
                f"{flag} describes the SAR geometry: give --sar-incidence and "
                "--sar-look-azimuth with it, or drop it"
            )
        return None
    if incidence is None or look_azimuth is None:
        given, missing = (
            ("--sar-incidence", "--sar-look-azimuth")
            if look_azimuth is None
            else ("--sar-look-azimuth", "--sar-incidence")
        )
        raise InputError(
            f"{given} given without {missing}: the SAR geometry needs both angles; give both "
            "or neither"
        )
    return SarGeometry(incidence, look_azimuth, ground_projected is not False, "option")


def _parse_bool(text: str, path: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise InputError(
        f"SAR file {path}: tag {TAG_GROUND_PROJECTED}={text!r} is not true or false; fix the "
        "tag (gdal_edit.py -mo) or give --sar-incidence and --sar-look-azimuth"
    )


def geometry_from_tags(path: str | os.PathLike[str]) -> SarGeometry | None:
    """The geometry in the SAR GeoTIFF's dataset tags (``SAR_INCIDENCE_ANGLE``,
    ``SAR_LOOK_AZIMUTH`` in degrees, ``SAR_GROUND_PROJECTED`` ``true``/``false``, default true);
    none when the file has neither angle tag or cannot be opened.

    Args:
        path: The SAR GeoTIFF.

    Raises:
        InputError: One angle tag without the other, a tag that is not a number or a boolean,
            or an angle out of range.
    """
    p = os.fspath(path)
    try:
        with rasterio.open(p) as ds:
            tags = ds.tags()
    except RasterioIOError:
        return None
    inc, az = tags.get(TAG_INCIDENCE), tags.get(TAG_LOOK_AZIMUTH)
    if inc is None and az is None:
        return None
    if inc is None or az is None:
        have, lack = (TAG_INCIDENCE, TAG_LOOK_AZIMUTH)
        if inc is None:
            have, lack = lack, have
        raise InputError(
            f"SAR file {p} has tag {have} but no {lack}; add it, or give --sar-incidence and "
            "--sar-look-azimuth"
        )
    ground = _parse_bool(tags.get(TAG_GROUND_PROJECTED, "true"), p)
    return SarGeometry(_tag_number(inc), _tag_number(az), ground, "geotiff tags", p)


def _tag_number(text: str) -> float | str:
    value = _finite(text)
    return text if value is None else value  # SarGeometry names the tag of a bad value
