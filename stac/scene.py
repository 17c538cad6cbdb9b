"""The one scene record every catalog reader produces."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from core.errors import InputError
from stac.links import check_asset
from stac.sar_view import sar_geometry_record

Sensor = Literal["optical", "sar"]
SENSORS: tuple[Sensor, ...] = ("optical", "sar")


@dataclass(frozen=True)
class Scene:
    """A single optical or SAR acquisition found in a STAC catalog or API.

    Normalises Maxar Open Data items, Umbra Open Data items (static catalog and
    ``*.stac.v2.json`` sidecars) and items from any STAC API (STAC Item spec 1.x).
    ``footprint`` is the Item ``geometry`` (WGS84, 2-D); ``crs`` is the image CRS
    as ``EPSG:nnnn`` (from ``proj:code``/``proj:epsg``) or ``None`` when the item
    does not say; ``href`` is the image asset (``visual`` for Maxar, the GEC for
    Umbra) made absolute; ``sar`` holds the item's ``sar:*`` properties; ``license`` is
    the SPDX id of its data license and ``license_href`` the URL of the license text (None
    when unknown). A scene whose ``item_href`` is remote (http(s)/s3) must have a remote
    ``href`` (the trust boundary of :mod:`stac.links`).
    """

    id: str
    sensor: Sensor
    platform: str | None
    datetime: dt.datetime
    footprint: BaseGeometry
    href: str
    crs: str | None = None
    gsd: float | None = None
    collection: str | None = None
    item_href: str | None = None
    view_off_nadir: float | None = None
    view_incidence_angle: float | None = None
    view_azimuth: float | None = None
    sar: dict[str, Any] = field(default_factory=dict)
    checksum: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    asset_key: str | None = None
    license: str | None = None
    license_href: str | None = None

    def __post_init__(self) -> None:
        if self.sensor not in SENSORS:
            raise InputError(
                f"scene {self.id}: sensor must be one of {SENSORS}, not {self.sensor!r}"
            )
        if self.datetime.tzinfo is None:
            raise InputError(
                f"scene {self.id}: datetime {self.datetime.isoformat()} has no time zone"
            )
        check_asset(self.item_href, self.href, f"the asset of scene {self.id}")

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable record (flow parameters, deployments); inverse of
        :meth:`from_record`."""
        rec = {k: getattr(self, k) for k in self.__dataclass_fields__}
        rec["datetime"] = self.datetime.isoformat()
        rec["footprint"] = json.loads(json.dumps(mapping(self.footprint)))
        return rec

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Scene:
        rec = dict(record)
        rec["datetime"] = dt.datetime.fromisoformat(rec["datetime"])
        rec["footprint"] = shape(rec["footprint"])
        return cls(**rec)

    def sar_geometry(self) -> tuple[dict[str, Any] | None, str | None]:
        """The SAR acquisition geometry the item states (:func:`stac.sar_view.sar_geometry_record`:
        a record, or none and why not); none for an optical scene."""
        if self.sensor != "sar":
            return None, None
        props = {**self.properties, **self.sar}
        view = {
            "view:incidence_angle": self.view_incidence_angle,
            "view:azimuth": self.view_azimuth,
        }
        props.update((k, v) for k, v in view.items() if v is not None)
        return sar_geometry_record(props, self.item_href or self.id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``coalign scenes --json`` row)."""
        return {
            "id": self.id,
            "sensor": self.sensor,
            "platform": self.platform,
            "datetime": self.datetime.isoformat(),
            "href": self.href,
            "gsd": self.gsd,
            "crs": self.crs,
            "collection": self.collection,
            "item_href": self.item_href,
            "asset_key": self.asset_key,
            "bbox": [round(v, 7) for v in self.footprint.bounds],
            "checksum": self.checksum,
            "view:off_nadir": self.view_off_nadir,
            "view:incidence_angle": self.view_incidence_angle,
            "view:azimuth": self.view_azimuth,
            "sar": self.sar,
            "license": self.license,
        }
