"""STAC Items of a registered pair's outputs: content, extensions, times, provenance, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import Point, shape

from core.errors import CatalogError, InputError
from stac import schemas
from stac.publish import PublicFolder, PublishedPair, api_document, build_item
from tests.conftest import write_geotiff

from .conftest import OPTICAL_TIME, SAR_TIME, optical_scene, published_pair, write_products


def test_item_validates_and_declares_the_extensions_it_uses(pair: PublishedPair) -> None:
    doc = build_item(pair)
    checked = schemas.validate(doc)
    assert set(checked) == {schemas.CORE_SCHEMAS["Feature"], *schemas.EXTENSIONS.values()}
    assert doc["stac_version"] == "1.1.0"
    assert doc["collection"] == "turkey-2023"
    assert set(doc["assets"]) == {
        "aligned_optical",
        "displacement",
        "confidence",
        "qa_flow",
        "residuals",
    }


def test_times_are_the_acquisitions_never_now(pair: PublishedPair) -> None:
    props = build_item(pair)["properties"]
    assert props["datetime"] == "2023-02-09T19:02:41Z"  # the SAR acquisition
    assert props["start_datetime"] == "2023-01-24T08:21:05Z"  # optical, before the event
    assert props["end_datetime"] == "2023-02-09T19:02:41Z"
    assert props["coalign:optical_datetime"] == OPTICAL_TIME.isoformat().replace("+00:00", "Z")
    assert "processing:datetime" not in props
    # a SAR scene older than the optical one: the interval still runs forwards
    swapped = dataclasses.replace(
        pair, sar=dataclasses.replace(pair.sar, datetime=OPTICAL_TIME - dt.timedelta(days=3))
    )
    props = build_item(swapped)["properties"]
    assert (
        props["start_datetime"] == "2023-01-21T08:21:05Z"
        and props["end_datetime"] == "2023-01-24T08:21:05Z"
    )
    # times in other zones are written in UTC
    east = dt.timezone(dt.timedelta(hours=3))
    local = dataclasses.replace(
        pair, sar=dataclasses.replace(pair.sar, datetime=SAR_TIME.astimezone(east))
    )
    assert build_item(local)["properties"]["datetime"] == "2023-02-09T19:02:41Z"


def test_geometry_is_the_optical_grid_footprint_in_wgs84(
    pair: PublishedPair, products: dict[str, Path]
) -> None:
    item = build_item(pair)
    with rasterio.open(products["aligned_optical"]) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        centre = ds.xy(ds.height // 2, ds.width // 2)
        from rasterio.warp import transform

        lon, lat = transform(ds.crs, "EPSG:4326", [centre[0]], [centre[1]])
    assert item["bbox"] == pytest.approx([west, south, east, north], abs=1e-7)
    footprint = shape(item["geometry"])
    assert footprint.is_valid and footprint.contains(Point(lon[0], lat[0]))
    assert footprint.exterior.is_ccw  # RFC 7946 winding
    assert item["properties"]["proj:code"] == "EPSG:32637"
    assert item["properties"]["proj:shape"] == [48, 48]
    assert item["properties"]["proj:transform"] == [0.5, 0.0, 377000.0, 0.0, -0.5, 4106000.0]
    assert item["properties"]["gsd"] == pytest.approx(0.5)


def test_displacement_and_confidence_describe_their_bands(pair: PublishedPair) -> None:
    assets = build_item(pair)["assets"]
    bands = assets["displacement"]["raster:bands"]
    assert [b["name"] for b in bands] == ["dx", "dy"]
    for band in bands:
        assert (
            band["data_type"] == "float32" and band["nodata"] == "nan" and band["unit"] == "pixel"
        )
        assert "optical pixels" in band["description"]
    assert assets["displacement"]["proj:shape"] == [48, 48]
    conf = assets["confidence"]["raster:bands"]
    assert (
        len(conf) == 1
        and conf[0]["data_type"] == "float32"
        and "0 (none) to 1" in conf[0]["description"]
    )
    optical = assets["aligned_optical"]["raster:bands"]
    assert [b["data_type"] for b in optical] == ["uint8"] * 3 and optical[0]["nodata"] == 0
    assert (
        assets["displacement"]["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    )
    assert assets["qa_flow"]["type"] == "image/png" and assets["qa_flow"]["roles"] == [
        "overview",
        "visual",
    ]
    assert assets["qa_flow"]["proj:code"] is None  # an unlocated picture
    assert assets["qa_flow"]["proj:shape"] == [24, 32]
    assert assets["residuals"]["type"] == "text/csv" and assets["residuals"]["roles"] == [
        "metadata"
    ]


def test_file_checksums_and_sizes_match_the_bytes(
    pair: PublishedPair, products: dict[str, Path]
) -> None:
    assets = build_item(pair)["assets"]
    for key, path in products.items():
        data = path.read_bytes()
        assert assets[key]["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
        assert assets[key]["file:size"] == len(data)
        assert assets[key]["href"] == str(path.resolve())


def test_provenance_method_score_and_source_properties(pair: PublishedPair) -> None:
    item = build_item(pair, software_version="9.9.9")
    props = item["properties"]
    assert props["processing:software"] == {"coalign": "9.9.9"}
    assert (
        pair.optical.id in props["processing:lineage"]
        and pair.sar.id in props["processing:lineage"]
    )
    assert props["coalign:method"] == "local" and props["coalign:method_version"] == "1.0"
    assert props["coalign:score_tiepoints"] == 151
    assert props["coalign:score_mean_px"] == 2.5 and props["coalign:score_p90_m"] == 2.25
    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert derived == [pair.optical.item_href, pair.sar.item_href]
    # SAR properties carried over (v1.0 fields only: sar:beam_ids is from a later version)
    assert props["sar:product_type"] == "GEC" and props["sar:polarizations"] == ["VV"]
    assert "sar:beam_ids" not in props


def test_item_level_sensor_fields_describe_the_optical_grid(pair: PublishedPair) -> None:
    item = build_item(pair)
    props = item["properties"]
    # platform, gsd and the whole view geometry: the optical scene's (the product grid)
    assert props["platform"] == "WV02" and props["gsd"] == pytest.approx(0.5)
    assert props["view:off_nadir"] == 21.3
    assert props["view:incidence_angle"] == 24.1 and props["view:azimuth"] == 190.5
    assert props["view:sun_azimuth"] == 158.2 and props["view:sun_elevation"] == 31.0
    optical = item["assets"]["aligned_optical"]
    assert optical["platform"] == "WV02" and optical["datetime"] == "2023-01-24T08:21:05Z"
    assert optical["view:incidence_angle"] == 24.1
    # the SAR scene: sar:* on the item, its platform, time and view on the displacement asset
    assert props["sar:instrument_mode"] == "SPOTLIGHT"
    sar = item["assets"]["displacement"]
    assert sar["platform"] == "Umbra-05" and sar["datetime"] == "2023-02-09T19:02:41Z"
    assert sar["view:incidence_angle"] == 39.9 and sar["view:azimuth"] == 119.6
    assert "view:off_nadir" not in sar
    for key in ("confidence", "qa_flow", "residuals"):
        assert "platform" not in item["assets"][key]


def test_item_id_is_safe_and_stable(pair: PublishedPair) -> None:
    a, b = build_item(pair), build_item(pair)
    assert a["id"] == b["id"] == pair.item_id
    assert all(c.isalnum() or c in "._-" for c in a["id"])
    assert a == b  # pure: same inputs, same document


def test_without_tiepoints_sources_or_sar_metadata(products: dict[str, Path]) -> None:
    del products["residuals"]
    pair = published_pair(products, score=None, sar={"sar:frequency_band": "X"})
    pair = dataclasses.replace(pair, optical=optical_scene(item_href=None))
    doc = build_item(pair)
    schemas.validate(doc)
    assert not any(k.startswith("coalign:score") for k in doc["properties"])
    # sar v1.0 needs four fields: with one, the extension is not declared and nothing is carried
    assert schemas.EXTENSIONS["sar"] not in doc["stac_extensions"]
    assert not any(k.startswith("sar:") for k in doc["properties"])
    assert [link["href"] for link in doc["links"] if link["rel"] == "derived_from"] == [
        pair.sar.item_href
    ]


@pytest.mark.parametrize(
    "local_href", ["umbra/stac/5b2a/5b2a.json", "/data/umbra/5b2a.json", "file:///data/5b2a.json"]
)
def test_local_source_items_are_not_linked(pair: PublishedPair, local_href: str) -> None:
    local = dataclasses.replace(pair, sar=dataclasses.replace(pair.sar, item_href=local_href))
    doc = build_item(local)
    hrefs = [link["href"] for link in doc["links"] if link["rel"] == "derived_from"]
    assert hrefs == [pair.optical.item_href]  # the public one only
    assert doc["properties"]["coalign:sar_id"] == pair.sar.id
    s3 = dataclasses.replace(
        pair, sar=dataclasses.replace(pair.sar, item_href="s3://bucket/5b2a.json")
    )
    hrefs = [link["href"] for link in build_item(s3)["links"] if link["rel"] == "derived_from"]
    assert hrefs == [pair.optical.item_href, "s3://bucket/5b2a.json"]


def test_activation_becomes_a_safe_collection_id(pair: PublishedPair) -> None:
    doc = build_item(dataclasses.replace(pair, activation="Türkiye / Syria (2023)"))
    assert doc["collection"] == "T-rkiye-Syria-2023"
    assert doc["properties"]["coalign:activation"] == "Türkiye / Syria (2023)"


def test_unscorable_pair_records_null_not_nan(pair: PublishedPair) -> None:
    pair = dataclasses.replace(pair, score={"tiepoints": 10, "mean_px": math.inf, "median_px": 3.0})
    doc = build_item(pair)
    assert doc["properties"]["coalign:score_mean_px"] is None
    assert doc["properties"]["coalign:score_median_px"] == 3.0


def test_api_document_has_public_hrefs_and_the_api_collection_link(pair: PublishedPair) -> None:
    folder = next(iter(pair.outputs.values())).parent
    public = PublicFolder(folder.parent, "https://data.example.org/x/")
    doc = api_document(build_item(pair), "http://127.0.0.1:1/stac/", public)
    schemas.validate(doc)
    prefix = f"https://data.example.org/x/{folder.name}/"
    assert all(a["href"].startswith(prefix) for a in doc["assets"].values())
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    assert rels["collection"] == "http://127.0.0.1:1/stac/collections/turkey-2023"
    assert "self" not in rels and "root" not in rels


def test_api_document_refuses_local_asset_paths(pair: PublishedPair, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a local file .*needs a public URL"):
        api_document(build_item(pair), "http://127.0.0.1:1/stac/")
    elsewhere = PublicFolder(tmp_path / "another-folder", "https://data.example.org/x")
    with pytest.raises(InputError, match="outside the published folder"):
        api_document(build_item(pair), "http://127.0.0.1:1/stac/", elsewhere)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda p, d: dataclasses.replace(
                p, outputs={k: v for k, v in p.outputs.items() if k != "displacement"}
            ),
            InputError,
            "no 'displacement' output",
        ),
        (
            lambda p, d: dataclasses.replace(
                p, outputs={**p.outputs, "confidence": d / "missing.tif"}
            ),
            InputError,
            "does not exist",
        ),
        (
            lambda p, d: dataclasses.replace(
                p, sar=dataclasses.replace(p.sar, datetime=SAR_TIME.replace(tzinfo=None))
            ),
            InputError,
            "no time zone",
        ),
        (
            lambda p, d: dataclasses.replace(
                p, outputs={**p.outputs, "displacement": p.outputs["confidence"]}
            ),
            InputError,
            "2 float bands",
        ),
        (
            lambda p, d: dataclasses.replace(
                p, outputs={**p.outputs, "displacement": p.outputs["residuals"]}
            ),
            InputError,
            "must be a GeoTIFF",
        ),
        (
            lambda p, d: (
                (d / "broken.tif").write_bytes(b"II*\x00 truncated")
                and dataclasses.replace(p, outputs={**p.outputs, "confidence": d / "broken.tif"})
            ),
            InputError,
            "cannot read .*broken.tif",
        ),
        (lambda p, d: dataclasses.replace(p, activation="  "), InputError, "no letters or digits"),
        (lambda p, d: dataclasses.replace(p, score={"mean_px": "2.5"}), InputError, "not a number"),
        (
            lambda p, d: dataclasses.replace(
                p, optical=dataclasses.replace(p.optical, view_off_nadir=120.0)
            ),
            CatalogError,
            "view:off_nadir",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(
    pair: PublishedPair, tmp_path: Path, change, error, message: str
) -> None:
    with pytest.raises(error, match=message):
        build_item(change(pair, tmp_path))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_products_without_crs_are_refused(tmp_path: Path, pair: PublishedPair) -> None:
    plain = tmp_path / "plain.tif"
    with rasterio.open(
        plain, "w", driver="GTiff", width=8, height=8, count=2, dtype="float32"
    ) as ds:
        ds.write(np.zeros((2, 8, 8), np.float32))
    bad = dataclasses.replace(pair, outputs={"displacement": plain})
    with pytest.raises(InputError, match="has no CRS"):
        build_item(bad)


def test_rotated_sar_like_grid_footprint(tmp_path: Path) -> None:
    # a displacement on a rotated grid (as in Umbra GEC products): the footprint follows the
    # rotation
    from rasterio.transform import Affine

    path = tmp_path / "displacement.tif"
    t = Affine.translation(377000, 4106000) @ Affine.rotation(30) @ Affine.scale(0.5, -0.5)
    write_geotiff(path, np.ones((2, 40, 40), np.float32), t, nodata=float("nan"))
    products = write_products(tmp_path / "p")
    pair = published_pair({"displacement": path, "confidence": products["confidence"]})
    item = build_item(pair)
    assert len(item["geometry"]["coordinates"][0]) == 5  # a rotated rectangle, not its bounding box
    footprint = shape(item["geometry"])
    assert footprint.area < 0.999 * (item["bbox"][2] - item["bbox"][0]) * (
        item["bbox"][3] - item["bbox"][1]
    )
    assert item["properties"]["gsd"] == pytest.approx(0.5)
    schemas.validate(item)
