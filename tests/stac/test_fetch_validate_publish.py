"""Fetching over real HTTP (resume, checksum), the Great Expectations gate, STAC publishing."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine

from core.errors import CatalogError, FetchError, ValidationFailed
from models.methods.base import RegistrationInput
from models.registration import register, write_displacement
from stac.checksum import file_checksum
from stac.fetch import fetch, gdal_path, http_url
from stac.pairing import PairingRules, pair_scenes
from stac.publish import PublishedPair, build_item, publish_static
from stac.readers import discover, load_json
from stac.schemas import validate as validate_stac
from stac.validation import scene_metadata, validate_scenes, validate_tiepoint_table
from tests.conftest import write_geotiff
from tests.stac.conftest import T0, RangeHandler


def test_fetch_resumes_after_a_dropped_connection(http_root, sample_catalogs, tmp_path):
    rel = "/src/a_optical.tif"
    src = sample_catalogs["root"] / rel.lstrip("/")
    RangeHandler.drop_after[rel] = 5000
    path = fetch(http_root + rel, tmp_path / "cache", file_checksum(src), backoff=0.01)
    assert path.read_bytes() == src.read_bytes()
    assert not list((tmp_path / "cache").rglob("*.part"))
    assert fetch(http_root + rel, tmp_path / "cache", file_checksum(src)) == path  # cached


def test_fetch_rejects_a_corrupt_file(http_root, tmp_path):
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(http_root + "/src/a_sar.tif", tmp_path / "cache", "1220" + "0" * 64, backoff=0.01)
    # nothing under any name (the lock file that serialises fetches of one asset is not the asset)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]


def test_fetch_paths_and_s3(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert fetch(str(f), tmp_path) == f and fetch(f.as_uri(), tmp_path) == f
    with pytest.raises(FetchError, match="not found"):
        fetch(str(tmp_path / "missing.tif"), tmp_path)
    assert (
        http_url("s3://umbra-open-data-catalog/sar-data/x.tif")
        == "https://umbra-open-data-catalog.s3.amazonaws.com/sar-data/x.tif"
    )
    monkeypatch.setenv("COALIGN_S3_ENDPOINT", "http://127.0.0.1:9000")
    assert http_url("s3://b/k.tif") == "http://127.0.0.1:9000/b/k.tif"
    assert gdal_path("https://h/x.tif") == "/vsicurl/https://h/x.tif"


def test_windowed_remote_read(http_root_process, sample_catalogs):
    from stac.fetch import REMOTE_READ_ENV

    src = sample_catalogs["root"] / "src" / "a_optical.tif"
    with (
        rasterio.Env(**REMOTE_READ_ENV),
        rasterio.open(gdal_path(http_root_process + "/src/a_optical.tif")) as ds,
    ):
        window = ds.read(1, window=((10, 20), (30, 45)))
    with rasterio.open(src) as ds:
        np.testing.assert_array_equal(window, ds.read(1, window=((10, 20), (30, 45))))


def test_scene_validation_reports_each_bad_case(sample_catalogs, tmp_path):
    a = sample_catalogs["a"]
    good = [
        scene_metadata(str(a.optical), "optical", "opt"),
        scene_metadata(str(a.sar), "sar", "sar"),
    ]
    assert validate_scenes(good, 0.9).ok
    bad_nodata = tmp_path / "nodata.tif"
    data = np.zeros((1, 64, 64), np.uint8)
    data[0, :4, :4] = 9
    write_geotiff(bad_nodata, data, Affine(0.5, 0, 0, 0, -0.5, 0), nodata=0)
    cases = {
        "band count": dataclasses.replace(good[1], band_count=3),
        "gsd": dataclasses.replace(good[1], gsd_m=50.0),
        "dtype": dataclasses.replace(good[0], dtype="float32"),
        "nodata": scene_metadata(str(bad_nodata), "sar", "mostly-empty"),
    }
    expected_column = {
        "band count": "band_count",
        "gsd": "gsd_m",
        "dtype": "dtype",
        "nodata": "nodata_fraction",
    }
    for case, row in cases.items():
        rows = [good[0], row] if row.sensor == "sar" else [row, good[1]]
        report = validate_scenes(rows, 0.9)
        assert not report.ok, case
        assert [f.column for f in report.failures] == [expected_column[case]], report.failures
        assert report.failures[0].subject == row.scene  # the report names the scene that failed
        with pytest.raises(ValidationFailed, match=expected_column[case]):
            report.raise_if_failed()
    assert not validate_scenes(good, 0.0).ok  # no overlap


def test_tiepoint_table_validation(sample_catalogs, tmp_path):
    a = sample_catalogs["a"]
    ok = validate_tiepoint_table(str(a.tiepoints), (240, 240), (300, 300))
    assert ok.ok
    assert not validate_tiepoint_table(str(a.tiepoints), (40, 40), (300, 300)).ok  # out of bounds
    dup = tmp_path / "dup.csv"
    dup.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n5,6,7,8\n1,2,3,4\n")
    r = validate_tiepoint_table(str(dup), (240, 240), (300, 300))
    assert (
        not r.ok
        and "unique" in r.failures[0].expectation
        and "dup.csv line" in r.failures[0].subject
    )
    few = tmp_path / "few.csv"
    few.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n5,6,7,8\n")
    r = validate_tiepoint_table(str(few), (240, 240), (300, 300))
    assert (
        not r.ok and r.failures[0].observed == 2 and "at least 3 tiepoints" in r.failures[0].check
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert not validate_tiepoint_table(str(bad), (240, 240), (300, 300)).ok
    far = tmp_path / "far.csv"
    far.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n5,6,7,8\n200,200,30,40\n")
    r = validate_tiepoint_table(str(far), (240, 240), (300, 300), max_offset_px=50)
    assert not r.ok and r.failures[0].column == "offset_px"


@pytest.fixture(scope="module")
def published(sample_catalogs, tmp_path_factory):
    out = tmp_path_factory.mktemp("products")
    scenes = discover([str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])])
    p = pair_scenes(scenes, PairingRules(event_date=T0))[0]
    pair = RegistrationInput.open(p.optical.href, p.sar.href, "cpu")
    products = write_displacement(
        register(pair, "zero").field,
        pair.optical.grid,
        out / "displacement.tif",
        out / "confidence.tif",
    )
    return PublishedPair(
        p.id,
        p.optical,
        p.sar,
        {"displacement": products.displacement, "confidence": products.confidence},
        "zero",
        "1.0.0",
        "sample-quake-act",
        {"mean_m": 1.5, "mean_px": 3.0},
    )


def test_items_validate_and_carry_provenance(published):
    item = build_item(published)
    validate_stac(item)
    props = item["properties"]
    assert props["datetime"] == published.sar.datetime.isoformat().replace(
        "+00:00", "Z"
    )  # acquisition, not now
    assert props["start_datetime"].startswith(published.optical.datetime.strftime("%Y-%m-%d"))
    assert props["proj:code"] == "EPSG:32637" and len(props["proj:transform"]) == 6
    assert props["coalign:method"] == "zero" and props["coalign:score_mean_m"] == 1.5
    assert props["sar:product_type"] == "GEC" and props["view:off_nadir"] == 10.0
    d = item["assets"]["displacement"]
    assert d["file:checksum"].startswith("1220") and d["file:size"] > 0
    assert [b["name"] for b in d["raster:bands"]] == ["dx", "dy"] and d["raster:bands"][0][
        "unit"
    ] == "pixel"
    # sources read from local files: no derived_from link (their ids are in the properties)
    assert not [link for link in item["links"] if link["rel"] == "derived_from"]
    assert props["coalign:sar_id"] == published.sar.id
    broken = json.loads(json.dumps(item))
    broken["properties"]["proj:shape"] = [1]
    with pytest.raises(CatalogError, match="projection"):
        validate_stac(broken)


def test_static_catalog_sink_is_self_contained_and_idempotent(published, tmp_path):
    root = tmp_path / "catalog"
    path = publish_static(build_item(published), root)
    publish_static(build_item(published), root)
    collection = load_json(str(root / "sample-quake-act" / "collection.json"))
    assert sum(link["rel"] == "item" for link in collection["links"]) == 1
    for doc in (load_json(str(root / "catalog.json")), collection, load_json(str(path))):
        validate_stac(doc)
        assert all(
            not link["href"].startswith("/")
            for link in doc["links"]
            if link["rel"] != "derived_from"
        )
    item = load_json(str(path))
    assert (path.parent / item["assets"]["displacement"]["href"]).exists()
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)  # relative hrefs: the catalog still resolves after a move
    item2 = load_json(str(moved / path.relative_to(root)))
    assert (
        (moved / path.relative_to(root)).parent / item2["assets"]["confidence"]["href"]
    ).exists()
