"""``coalign scenes --geojson`` and ``coalign pairs --geojson``: FeatureCollections a GIS reads."""

from __future__ import annotations

import datetime as dt
import json

import pyogrio
import pytest
from shapely.geometry import GeometryCollection, LineString, Polygon, box, shape

from flows.cli import main
from stac.geojson import pairs_geojson, polygonal
from stac.pairing import pair_scenes
from stac.readers import discover
from tests.stac.conftest import BBOX, T0

WINDOW = ["--start", "2022-12-01", "--end", "2023-03-01"]


def _catalogs(sample_catalogs) -> list[str]:
    return ["--catalog", str(sample_catalogs["maxar"]), "--catalog", str(sample_catalogs["umbra"])]


def _bbox_arg(bbox) -> list[str]:
    return ["--bbox", ",".join(f"{v:.7f}" for v in bbox)]


def _print(capsys, *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def _gis_reads(tmp_path, collection: dict, name: str) -> dict:
    """pyogrio's (GDAL's) view of the collection saved as a .geojson file."""
    path = tmp_path / f"{name}.geojson"
    path.write_text(json.dumps(collection))
    return pyogrio.read_info(path)


def test_scenes_geojson(sample_catalogs, capsys, tmp_path):
    fc = _print(
        capsys, "scenes", *_catalogs(sample_catalogs), *_bbox_arg(BBOX), *WINDOW, "--geojson"
    )
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    aoi = box(*BBOX)
    for feature in fc["features"]:
        geom = shape(feature["geometry"])
        assert feature["type"] == "Feature" and geom.geom_type in ("Polygon", "MultiPolygon")
        assert geom.is_valid and geom.intersects(aoi)
        props = feature["properties"]
        assert {"id", "sensor", "platform", "datetime", "gsd", "crs", "href"} <= set(props)
        assert feature["id"] == props["id"] and props["crs"] == "EPSG:32637"
    assert {f["properties"]["sensor"] for f in fc["features"]} == {"optical", "sar"}
    info = _gis_reads(tmp_path, fc, "scenes")
    assert info["features"] == 4 and info["crs"] == "EPSG:4326"
    assert {"id", "sensor", "platform", "datetime", "gsd", "crs", "href"} <= set(info["fields"])


def test_pairs_geojson_is_the_overlap_inside_the_aoi(sample_catalogs, capsys, tmp_path):
    scenes = discover([str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])])
    a = next(s for s in scenes if s.id.endswith("10400100A")).footprint.bounds
    # the western half of scene a (as the command line gives it): clips the overlap
    aoi = tuple(round(v, 7) for v in (a[0], a[1], (a[0] + a[2]) / 2, a[3]))
    args = [*_catalogs(sample_catalogs), *_bbox_arg(aoi), *WINDOW]
    fc = _print(capsys, "pairs", *args, "--geojson")
    rows = _print(capsys, "pairs", *args, "--json")  # --json prints the rows as before
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(rows) >= 1
    clip = box(*aoi).buffer(1e-9)
    unclipped = {p.id: p.overlap for p in pair_scenes(scenes)}
    assert not unclipped[rows[0]["id"]].within(clip)  # the AOI really cuts the overlap
    for rank, (feature, row) in enumerate(zip(fc["features"], rows, strict=True), start=1):
        geom = shape(feature["geometry"])
        assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.is_valid
        assert geom.within(clip) and geom.area > 0
        assert geom.equals_exact(shape(row["overlap"]), 1e-12)
        props = feature["properties"]
        assert props["rank"] == rank and feature["id"] == row["id"]
        for key in ("optical_id", "sar_id", "overlap_fraction", "gap_days"):
            assert props[key] == row[key]
        assert dt.datetime.fromisoformat(props["sar_datetime"]) > T0
        assert dt.datetime.fromisoformat(props["optical_datetime"]) < T0
    info = _gis_reads(tmp_path, fc, "pairs")
    assert info["features"] == len(rows) and info["geometry_type"] in ("Polygon", "MultiPolygon")
    assert {"optical_id", "sar_id", "overlap_fraction", "gap_days", "rank"} <= set(info["fields"])


def test_pairs_geojson_of_the_whole_event_and_no_pairs(sample_catalogs):
    scenes = discover([str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])])
    fc = pairs_geojson(pair_scenes(scenes, bbox=BBOX))
    assert [f["properties"]["rank"] for f in fc["features"]] == list(
        range(1, len(fc["features"]) + 1)
    )
    assert len(fc["features"]) >= 2
    assert pairs_geojson([]) == {"type": "FeatureCollection", "features": []}


def test_json_and_geojson_exclude_each_other(sample_catalogs, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scenes", *_catalogs(sample_catalogs), *_bbox_arg(BBOX), *WINDOW, "--json",
              "--geojson"])  # fmt: skip
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_polygonal_keeps_only_areas():
    square = box(0, 0, 1, 1)
    other = box(2, 0, 3, 1)
    assert polygonal(square) is square
    assert polygonal(GeometryCollection([square, LineString([(1, 0), (2, 0)])])).equals(square)
    both = polygonal(GeometryCollection([square, other, LineString([(1, 0), (2, 0)])]))
    assert both.geom_type == "MultiPolygon" and both.area == 2
    assert polygonal(LineString([(0, 0), (1, 1)])).is_empty
    assert isinstance(polygonal(Polygon()), Polygon)
