"""Readers (static catalogs on disk and over HTTP, real recorded JSON), pairing, the scenes/pairs
CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.errors import CatalogError
from flows.cli import main
from stac.pairing import PairingRules, pair_scenes
from stac.readers import crawl_static, discover, load_json, scene_from_item
from stac.scene import Scene
from tests.conftest import shared_path
from tests.stac.conftest import BBOX, T0


def test_static_catalogs_on_disk(sample_catalogs):
    scenes = discover(
        [str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])],
        bbox=BBOX,
        start=T0 - dt.timedelta(days=60),
        end=T0 + dt.timedelta(days=10),
    )
    assert [s.sensor for s in scenes].count("optical") == 2 and [s.sensor for s in scenes].count(
        "sar"
    ) == 2
    opt = next(s for s in scenes if s.id.endswith("10400100A"))
    assert (
        opt.platform == "WV03"
        and opt.crs == "EPSG:32637"
        and opt.gsd == 0.5
        and opt.view_off_nadir == 10.0
    )
    assert opt.checksum.startswith("1220") and opt.href.endswith("-visual.tif")
    sar = next(s for s in scenes if s.sensor == "sar")
    assert sar.sar["sar:product_type"] == "GEC" and sar.href.endswith("_GEC.tif")
    # the time window filters; an AOI elsewhere finds nothing
    assert (
        len(
            discover(
                [str(sample_catalogs["maxar"])], bbox=BBOX, start=T0 - dt.timedelta(days=10), end=T0
            )
        )
        == 1
    )
    assert discover([str(sample_catalogs["maxar"])], bbox=(0, 0, 1, 1), start=None, end=None) == []


def test_collections_outside_the_window_are_not_opened(sample_catalogs, monkeypatch):
    opened = []
    import stac.readers.crawl as crawl

    real = crawl.load_json
    monkeypatch.setattr(crawl, "load_json", lambda href: opened.append(href) or real(href))
    list(
        crawl_static(
            str(sample_catalogs["maxar"]),
            BBOX,
            T0 + dt.timedelta(days=300),
            T0 + dt.timedelta(days=400),
        )
    )
    assert not any(
        "/ard/" in h for h in opened
    )  # the event collection's extent excluded every item


def test_static_catalog_over_http(http_root, sample_catalogs):
    url = http_root + "/maxar/events/catalog.json"
    scenes = discover([url], bbox=BBOX, start=T0 - dt.timedelta(days=60), end=T0)
    assert len(scenes) == 2 and all(s.href.startswith("http://127.0.0.1") for s in scenes)
    with pytest.raises(CatalogError, match="HTTP 404"):
        load_json(http_root + "/nope.json")


def test_pairing_rules(sample_catalogs):
    scenes = discover([str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])])
    pairs = pair_scenes(scenes, PairingRules(event_date=T0))
    assert [(p.optical.id.split("/")[-1], p.sar.id[-1]) for p in pairs] == [
        ("10400100A", "a"),
        ("10400100B", "b"),
    ]
    assert all(p.overlap_fraction > 0.8 for p in pairs)
    assert pair_scenes(scenes, PairingRules(event_date=T0, max_gap_days=20)) == pairs[:1]
    assert (
        pair_scenes(scenes, PairingRules(event_date=T0 - dt.timedelta(days=100))) == []
    )  # optical must be pre-event
    rec = pairs[0].optical.to_record()
    assert Scene.from_record(json.loads(json.dumps(rec))) == pairs[0].optical


def test_scenes_and_pairs_cli(http_root, capsys):
    args = [
        "--catalog",
        http_root + "/maxar/events/catalog.json",
        "--catalog",
        http_root + "/umbra/stac/catalog.json",
        "--bbox",
        ",".join(map(str, BBOX)),
        "--start",
        "2022-12-01",
        "--end",
        "2023-03-01",
        "--json",
    ]
    assert main(["scenes", *args]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"id", "sensor", "platform", "datetime", "href", "gsd", "crs"} <= set(rows[0])
    assert main(["pairs", *args, "--event-date", T0.isoformat(), "--min-overlap", "0.5"]) == 0
    pairs = json.loads(capsys.readouterr().out)
    assert len(pairs) == 2 and {"optical_id", "sar_id", "overlap_fraction", "gap_days"} <= set(
        pairs[0]
    )
    assert (
        main(["scenes", "--bbox", "1,2,3,4", "--start", "2023-01-01", "--end", "2023-02-01"]) == 2
    )


def test_real_maxar_item_and_catalog():
    item_path = shared_path("stac", "maxar_static_catalog_hotosm", "item.json")
    item = json.loads(item_path.read_text())
    s = scene_from_item(item, str(item_path))
    assert (
        s.sensor == "optical" and s.platform == "WV02" and s.crs == "EPSG:32611" and s.gsd == 0.58
    )
    assert s.view_off_nadir == 27.5 and s.href.endswith("visual.tif")
    cat = load_json(str(shared_path("stac", "maxar_static_catalog_hotosm", "catalog.json")))
    assert sum(link["rel"] == "child" for link in cat["links"]) > 10


def test_real_umbra_sidecar_item_rewrites_private_hrefs():
    item = json.loads(shared_path("stac", "umbra_stac_extension", "item.json").read_text())
    s = scene_from_item(item, "")
    assert s.sensor == "sar" and s.platform == "Umbra-09"
    assert s.sar["sar:product_type"] == "GEC" and s.view_incidence_angle == pytest.approx(
        39.93, abs=0.01
    )
    assert "prod-prod-processed-sar-data" not in s.href and "sar-data/tasks/" in s.href
    assert s.href.endswith("_MM.tif")


def test_real_maxar_stac_api_item_and_event_list():
    api_item = shared_path("stac", "maxar_titiler_stacapi", "46_033111301201_1040010082988200.json")
    s = scene_from_item(json.loads(api_item.read_text()), str(api_item))
    assert s.sensor == "optical" and s.crs and s.crs.startswith("EPSG:326")
    events = json.loads(
        shared_path(
            "stac", "maxar_opendata_kahramanmaras", "Kahramanmaras-turkey-earthquake-23.geojson"
        ).read_text()
    )
    assert len(events["features"]) == 2115
