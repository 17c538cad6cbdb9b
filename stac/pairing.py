"""Pairing optical and SAR scenes by footprint overlap and acquisition time (geopandas)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from stac.scene import Scene


@dataclass(frozen=True)
class PairingRules:
    """Which optical/SAR scenes make a pair.

    With ``event_date`` set, the optical scene must be acquired before it
    (pre-event) and the SAR scene on or after it (post-event).
    """

    min_overlap_fraction: float = 0.1
    min_overlap_m2: float = 1000.0
    max_gap_days: float = 365.0
    event_date: dt.datetime | None = None


@dataclass(frozen=True)
class Pair:
    optical: Scene
    sar: Scene
    overlap_fraction: float
    overlap_area_m2: float
    gap_days: float
    overlap: BaseGeometry  # WGS84, clipped by the AOI

    @property
    def id(self) -> str:
        return f"{self.optical.id}__{self.sar.id}".replace("/", "-")

    def to_json(self) -> dict:
        return {
            "id": self.id, "optical_id": self.optical.id, "sar_id": self.sar.id,
            "overlap_fraction": round(self.overlap_fraction, 4), "overlap_area_m2": round(self.overlap_area_m2, 1),
            "gap_days": round(self.gap_days, 3), "optical_href": self.optical.href, "sar_href": self.sar.href,
        }


def pair_scenes(scenes: list[Scene], rules: PairingRules = PairingRules(), bbox: tuple[float, float, float, float] | None = None) -> list[Pair]:
    """Candidate pairs ranked by overlap fraction (desc), then time gap (asc)."""
    optical = [s for s in scenes if s.sensor == "optical"]
    sar = [s for s in scenes if s.sensor == "sar"]
    if not optical or not sar:
        return []
    aoi = box(*bbox) if bbox else None
    go = gpd.GeoDataFrame({"i": range(len(optical))}, geometry=[s.footprint for s in optical], crs="EPSG:4326")
    gs = gpd.GeoDataFrame({"j": range(len(sar))}, geometry=[s.footprint for s in sar], crs="EPSG:4326")
    metric = go.estimate_utm_crs()
    joined = gpd.sjoin(go, gs, predicate="intersects")
    pairs = []
    for i, j in zip(joined["i"], joined["j"]):
        o, s = optical[i], sar[j]
        if rules.event_date and not (o.datetime <= rules.event_date <= s.datetime):
            continue
        gap = abs((s.datetime - o.datetime).total_seconds()) / 86400.0
        if gap > rules.max_gap_days:
            continue
        overlap = o.footprint.intersection(s.footprint)
        if aoi is not None:
            overlap = overlap.intersection(aoi)
        if overlap.is_empty:
            continue
        areas = gpd.GeoSeries([overlap, o.footprint, s.footprint], crs="EPSG:4326").to_crs(metric).area
        fraction = float(areas[0] / min(areas[1], areas[2]))
        if fraction < rules.min_overlap_fraction or areas[0] < rules.min_overlap_m2:
            continue
        pairs.append(Pair(o, s, fraction, float(areas[0]), gap, overlap))
    return sorted(pairs, key=lambda p: (-p.overlap_fraction, p.gap_days, p.id))
