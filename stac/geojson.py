"""GeoJSON FeatureCollections (WGS84, RFC 7946) of discovered scenes and of ranked pairs.

A scene's feature has the scene's footprint as geometry and the ``coalign scenes --json`` row
(:meth:`stac.scene.Scene.to_json`, less ``bbox``, which becomes the feature's ``bbox``) as
properties. A pair's feature has the overlap of the two footprints, clipped by the AOI, as
geometry (a Polygon or MultiPolygon: slivers of lower dimension are dropped) and the
``coalign pairs --json`` row (:meth:`stac.pairing.Pair.to_json`, less ``overlap``) plus ``rank``
(1 = best) as properties.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from stac.pairing import Pair
from stac.scene import Scene


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of ``geom``: a Polygon or MultiPolygon (empty when it has none).

    Args:
        geom: Any geometry, e.g. an intersection that also holds lines or points.
    """
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon | MultiPolygon)]
    polygons = [p for g in parts for p in shapely.get_parts(g)]
    if len(polygons) == 1:
        return polygons[0]
    return MultiPolygon(polygons)


def geometry_json(geom: BaseGeometry) -> dict[str, Any]:
    """The GeoJSON geometry object of a shapely geometry.

    Args:
        geom: A geometry in WGS84 longitude/latitude.
    """
    return json.loads(shapely.to_geojson(geom))


def _bbox(geom: BaseGeometry) -> list[float]:
    return [round(v, 7) for v in geom.bounds]


def scene_feature(scene: Scene) -> dict[str, Any]:
    """A scene as a GeoJSON Feature: its footprint and its listing row.

    Args:
        scene: The scene.
    """
    properties = {k: v for k, v in scene.to_json().items() if k != "bbox"}
    return {
        "type": "Feature",
        "id": scene.id,
        "bbox": _bbox(scene.footprint),
        "geometry": geometry_json(scene.footprint),
        "properties": properties,
    }


def pair_feature(pair: Pair, rank: int) -> dict[str, Any]:
    """A pair as a GeoJSON Feature: the footprints' overlap inside the AOI and its listing row.

    Args:
        pair: The pair.
        rank: Its position in the ranking, 1 = best.
    """
    overlap = polygonal(pair.overlap)
    properties = {k: v for k, v in pair.to_json().items() if k != "overlap"}
    return {
        "type": "Feature",
        "id": pair.id,
        "bbox": _bbox(overlap),
        "geometry": geometry_json(overlap),
        "properties": {**properties, "rank": rank},
    }


def feature_collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``features``.

    Args:
        features: GeoJSON Feature objects.
    """
    return {"type": "FeatureCollection", "features": list(features)}


def scenes_geojson(scenes: Iterable[Scene]) -> dict[str, Any]:
    """The scenes as a FeatureCollection, in the order given.

    Args:
        scenes: The scenes (as :func:`stac.readers.discover` lists them).
    """
    return feature_collection(scene_feature(s) for s in scenes)


def pairs_geojson(pairs: Iterable[Pair]) -> dict[str, Any]:
    """The ranked pairs as a FeatureCollection, best first, each with its ``rank``.

    Args:
        pairs: The pairs, ranked (as :func:`stac.pairing.pair_scenes` returns them).
    """
    return feature_collection(pair_feature(p, rank) for rank, p in enumerate(pairs, start=1))
