"""Pairing optical and SAR scenes by footprint overlap and acquisition time (geopandas).

Candidates come from a spatial join of the footprints. The overlap is clipped by the AOI
(work happens only there) and measured in metres in the local UTM zone of the overlap
(an equal-area CRS near the poles). ``overlap_fraction`` is the clipped overlap divided by
the part of the smaller footprint inside the AOI: 1.0 means the two scenes cover the same
ground wherever the smaller one meets the AOI. Pairs are ranked by overlap fraction
(largest first), then by time gap (smallest first).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from core.errors import InputError
from core.ids import pair_id
from stac.aoi import BBox
from stac.pairing_defaults import MAX_GAP_DAYS, MIN_OVERLAP
from stac.scene import Scene

EQUAL_AREA = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global, beyond the UTM latitudes


@dataclass(frozen=True)
class PairingRules:
    """Which optical/SAR scenes make a pair.

    With ``event_date`` set, the optical scene must be acquired on or before it
    (pre-event) and the SAR scene on or after it (post-event); ``max_gap_days``
    bounds the time between the two acquisitions in any case.
    """

    min_overlap_fraction: float = MIN_OVERLAP
    min_overlap_m2: float = 1000.0
    max_gap_days: float = MAX_GAP_DAYS
    event_date: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_overlap_fraction <= 1.0:
            raise InputError(
                f"minimum overlap fraction must be within 0..1, got {self.min_overlap_fraction}"
            )
        if self.min_overlap_m2 < 0 or self.max_gap_days < 0:
            raise InputError(
                "minimum overlap area and maximum gap must be >= 0 "
                f"(got {self.min_overlap_m2} m², {self.max_gap_days} days)"
            )
        if self.event_date is not None and self.event_date.tzinfo is None:
            raise InputError(f"event date {self.event_date.isoformat()} needs a time zone (e.g. Z)")


@dataclass(frozen=True)
class Pair:
    """A candidate optical/SAR pair; ``overlap`` is WGS84, clipped by the AOI."""

    optical: Scene
    sar: Scene
    overlap_fraction: float
    overlap_area_m2: float
    gap_days: float
    overlap: BaseGeometry

    @property
    def id(self) -> str:
        return pair_id(self.optical.id, self.sar.id)

    def to_json(self) -> dict[str, Any]:
        """The ``coalign pairs --json`` row."""
        return {
            "id": self.id,
            "optical_id": self.optical.id,
            "sar_id": self.sar.id,
            "overlap_fraction": round(self.overlap_fraction, 4),
            "overlap_area_m2": round(self.overlap_area_m2, 1),
            "gap_days": round(self.gap_days, 3),
            "optical_datetime": self.optical.datetime.isoformat(),
            "sar_datetime": self.sar.datetime.isoformat(),
            "optical_href": self.optical.href,
            "sar_href": self.sar.href,
            "overlap": json.loads(json.dumps(mapping(self.overlap))),
        }


def local_metric_crs(geom: BaseGeometry) -> str:
    """The UTM zone (WGS84) of a geometry's centroid; an equal-area CRS beyond 84°N/80°S."""
    c = geom.centroid
    if not -80.0 <= c.y <= 84.0:
        return EQUAL_AREA
    zone = int((c.x + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{(32600 if c.y >= 0 else 32700) + zone}"


def _valid(g: BaseGeometry) -> BaseGeometry:
    return g if g.is_valid else shapely.make_valid(g)


def _time_ok(o: Scene, s: Scene, rules: PairingRules) -> float | None:
    if rules.event_date is not None and not (o.datetime <= rules.event_date <= s.datetime):
        return None
    gap = abs((s.datetime - o.datetime).total_seconds()) / 86400.0
    return gap if gap <= rules.max_gap_days else None


def pair_scenes(
    scenes: list[Scene],
    rules: PairingRules = PairingRules(),
    bbox: BBox | BaseGeometry | None = None,
) -> list[Pair]:
    """Candidate pairs meeting ``rules``, ranked by overlap fraction (desc), then time gap (asc)."""
    optical = [s for s in scenes if s.sensor == "optical"]
    sar = [s for s in scenes if s.sensor == "sar"]
    if not optical or not sar:
        return []
    aoi = box(*bbox) if isinstance(bbox, tuple | list) else bbox
    go = gpd.GeoDataFrame(
        {"i": range(len(optical))}, geometry=[_valid(s.footprint) for s in optical], crs="EPSG:4326"
    )
    gs = gpd.GeoDataFrame(
        {"j": range(len(sar))}, geometry=[_valid(s.footprint) for s in sar], crs="EPSG:4326"
    )
    if aoi is not None:
        go = go[go.intersects(aoi)]
        gs = gs[gs.intersects(aoi)]
    joined = gpd.sjoin(go, gs, predicate="intersects", how="inner")
    candidates = []
    for i, j in zip(joined["i"], joined["j"], strict=True):
        gap = _time_ok(optical[i], sar[j], rules)
        if gap is None:
            continue
        o, s = go.geometry.loc[i], gs.geometry.loc[j]  # frame index == scene position
        overlap = o.intersection(s)
        smaller = o if o.area <= s.area else s  # degrees² only decide which one is smaller
        if aoi is not None:
            overlap, smaller = overlap.intersection(aoi), smaller.intersection(aoi)
        if overlap.is_empty or overlap.area == 0:
            continue
        candidates.append((i, j, gap, overlap, smaller))
    if not candidates:
        return []
    # areas in each overlap's own UTM zone, one reprojection per zone
    frame = gpd.GeoDataFrame(
        {"k": range(len(candidates)), "crs": [local_metric_crs(c[3]) for c in candidates]},
        geometry=[c[3] for c in candidates],
        crs="EPSG:4326",
    )
    frame["smaller"] = gpd.GeoSeries([c[4] for c in candidates], crs="EPSG:4326")
    areas: dict[int, tuple[float, float]] = {}
    for crs, group in frame.groupby("crs"):
        overlap_m2 = group.geometry.to_crs(crs).area
        smaller_m2 = gpd.GeoSeries(group["smaller"], crs="EPSG:4326").to_crs(crs).area
        for k, a, b in zip(group["k"], overlap_m2, smaller_m2, strict=True):
            areas[int(k)] = (float(a), float(b))
    pairs = []
    for k, (i, j, gap, overlap, _) in enumerate(candidates):
        area, smaller_area = areas[k]
        fraction = min(1.0, area / smaller_area) if smaller_area > 0 else 0.0
        if fraction < rules.min_overlap_fraction or area < rules.min_overlap_m2:
            continue
        pairs.append(Pair(optical[i], sar[j], fraction, area, gap, overlap))
    return sorted(pairs, key=lambda p: (-round(p.overlap_fraction, 6), p.gap_days, p.id))
