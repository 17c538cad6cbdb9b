"""The one scene record every catalog reader produces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from shapely.geometry.base import BaseGeometry

Sensor = Literal["optical", "sar"]


@dataclass(frozen=True)
class Scene:
    """A single optical or SAR acquisition found in a STAC catalog or API.

    Normalises Maxar Open Data items, Umbra Open Data items (static catalog and
    ``*.stac.v2.json`` sidecars) and items from any STAC API (STAC Item spec 1.x).
    ``footprint`` is in WGS84 (the Item ``geometry``); ``crs`` is the image CRS
    as ``EPSG:nnnn`` (from ``proj:code``/``proj:epsg``) or ``None`` when unknown.
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

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable record (flow parameters, deployments); inverse of :meth:`from_record`."""
        from shapely.geometry import mapping

        import json

        rec = {k: getattr(self, k) for k in self.__dataclass_fields__}
        rec["datetime"] = self.datetime.isoformat()
        rec["footprint"] = json.loads(json.dumps(mapping(self.footprint)))
        return rec

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Scene":
        from shapely.geometry import shape

        rec = dict(record)
        rec["datetime"] = dt.datetime.fromisoformat(rec["datetime"])
        rec["footprint"] = shape(rec["footprint"])
        return cls(**rec)

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
            "view:off_nadir": self.view_off_nadir,
            "view:incidence_angle": self.view_incidence_angle,
            "sar": self.sar,
        }
