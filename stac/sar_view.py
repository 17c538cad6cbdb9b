"""The SAR acquisition geometry a STAC Item states: incidence, look azimuth, ground projection.

The view extension defines ``view:azimuth`` as the azimuth, at the sub-satellite point, of the
scene centre (clockwise from north), which for a SAR is the look direction (sensor → scene).
Umbra's items give the opposite direction, the azimuth of the satellite seen from the scene:
their recorded item (``sat:orbit_state`` descending, ``sar:observation_direction`` right, so
looking west) has ``view:azimuth`` 119.6, east of the scene. So the reading checks the azimuth
against the side the orbit and observation direction put the satellite on (for the near-polar
orbits SAR satellites fly, a right-looking satellite on a descending pass looks west, on an
ascending pass east); an item without them is read with Umbra's convention for Umbra, and not
at all otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# product types imaged in slant range; the others (GEC, GRD, EEC, SIDD, CSI, ...) are on the ground
SLANT_PRODUCTS = frozenset({"SLC", "SSC", "SICD", "CPHD", "SCS", "SLANT"})
# below this |east component| of the look direction the orbit cannot tell the two conventions apart
_MIN_EAST = math.sin(math.radians(20.0))
_EAST_LOOKING = {
    ("ascending", "right"): 1.0,
    ("descending", "left"): 1.0,
    ("ascending", "left"): -1.0,
    ("descending", "right"): -1.0,
}


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _incidence(props: Mapping[str, Any]) -> tuple[float | None, str]:
    inc = _number(props.get("view:incidence_angle"))
    if inc is not None:
        return inc, "view:incidence_angle"
    grazing = _number(props.get("umbra:grazing_angle_degrees"))
    if grazing is not None:
        return 90.0 - grazing, "90 - umbra:grazing_angle_degrees"
    return None, ""


def look_azimuth(props: Mapping[str, Any]) -> tuple[float | None, str]:
    """The look azimuth (sensor → scene, degrees clockwise from north) an Item's ``view:azimuth``
    gives, and how it was read (or why it could not be).

    Args:
        props: The Item's properties (``view:azimuth``, ``sat:orbit_state``,
            ``sar:observation_direction``, ``constellation``).
    """
    view = _number(props.get("view:azimuth"))
    if view is None:
        return None, "no view:azimuth"
    side = (
        str(props.get("sat:orbit_state", "")).lower(),
        str(props.get("sar:observation_direction", "")).lower(),
    )
    expected = _EAST_LOOKING.get(side)
    east = math.sin(math.radians(view))
    if expected is not None and abs(east) >= _MIN_EAST:
        orbit = f"sat:orbit_state {side[0]}, sar:observation_direction {side[1]}"
        if east * expected > 0:
            return view % 360.0, f"view:azimuth, sensor to scene as {orbit} imply"
        return (view + 180.0) % 360.0, f"view:azimuth + 180: scene to sensor, as {orbit} imply"
    if str(props.get("constellation", "")).lower() == "umbra":
        return (view + 180.0) % 360.0, "view:azimuth + 180: Umbra gives scene to sensor"
    return None, (
        "view:azimuth without sat:orbit_state and sar:observation_direction does not say "
        "whether it points to or from the sensor"
    )


def sar_geometry_record(
    props: Mapping[str, Any], where: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The geometry record (``models.sar_geometry.SarGeometry.to_record`` form, source
    ``stac``) an Item's properties give, or none and why not.

    The incidence is ``view:incidence_angle`` (else ``90 - umbra:grazing_angle_degrees``); the
    look azimuth comes from ``view:azimuth`` (:func:`look_azimuth`); the image is in slant range
    when ``sar:product_type`` is one of ``SLANT_PRODUCTS``, else on the ground (a SAR GeoTIFF
    read on its map grid is map-projected).

    Args:
        props: The Item's properties (``view:*``, ``sar:*``, ``sat:*``, ``umbra:*``).
        where: The Item's href or id, recorded in ``detail``.
    """
    inc, inc_how = _incidence(props)
    az, az_how = look_azimuth(props)
    if inc is None or az is None:
        lack = "view:incidence_angle" if inc is None else az_how
        return None, f"STAC item {where}: SAR geometry not read ({lack})"
    product = str(props.get("sar:product_type", "")).upper()
    ground = product not in SLANT_PRODUCTS
    projection = f"sar:product_type {product}" if product else "no sar:product_type: map grid"
    detail = f"{where}; incidence {inc_how}; look azimuth {az_how}; {projection}"
    return {
        "incidence_deg": inc,
        "look_azimuth_deg": az,
        "ground_projected": ground,
        "source": "stac",
        "detail": detail,
    }, None
