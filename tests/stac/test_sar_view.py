"""SAR acquisition geometry of STAC Items: real Umbra JSON, sample Umbra catalogs, conventions."""

from __future__ import annotations

import json
import math

import pytest

from core.errors import InputError
from models.sar_geometry import SarGeometry
from samples.catalog import SampleScene, write_umbra_catalog
from samples.catalog.umbra import write_umbra_sidecar
from stac.readers import crawl_static, scene_from_item
from stac.sar_view import look_azimuth, sar_geometry_record
from tests.conftest import shared_path
from tests.stac.conftest import T0

UMBRA_PROPS = {"constellation": "umbra", "view:incidence_angle": 40.0, "view:azimuth": 100.0}


def _real_umbra_item() -> dict:
    return json.loads(shared_path("stac", "umbra_stac_extension", "item.json").read_text())


def _check_real_umbra(geometry: dict | None, why: str | None) -> SarGeometry:
    """Umbra-09, descending, right-looking: the satellite east of the scene, looking west; its
    view:azimuth 119.6 is the azimuth of the satellite seen from the scene."""
    assert why is None
    g = SarGeometry.from_record(geometry)
    assert g.incidence_deg == pytest.approx(39.934, abs=1e-3)
    assert g.look_azimuth_deg == pytest.approx(299.631, abs=1e-3)
    assert g.look_vector()[0] < -0.8  # looking west, as a right-looking descending pass does
    assert g.ground_projected and g.source == "stac"
    assert "view:azimuth + 180" in g.detail and "sar:product_type GEC" in g.detail
    return g


def test_real_umbra_v2_sidecar_gives_the_geometry():
    scene = scene_from_item(_real_umbra_item(), "")
    g = _check_real_umbra(*scene.sar_geometry())
    assert g.detail.startswith(scene.id)


def test_real_umbra_properties_in_the_static_catalog_layout(tmp_path):
    """The same recorded properties laid out as an Open Data static-catalog item (asset-GEC)."""
    item = _real_umbra_item()
    item["assets"] = {
        "asset-GEC": {"href": "./scene_GEC.tif", "type": "image/tiff", "roles": ["data"]}
    }
    path = tmp_path / "item.json"
    scene = scene_from_item(item, str(path))
    assert scene.asset_key == "asset-GEC"
    g = _check_real_umbra(*scene.sar_geometry())
    assert g.detail.startswith(str(path))


def test_sample_umbra_catalog_and_sidecar_give_the_geometry(tmp_path, sample_catalogs):
    view = {"view:incidence_angle": 38.5, "view:azimuth": 97.0}  # as the demo's Umbra item
    sar = SampleScene(
        sample_catalogs["a"].sar, "00000000-0000-4000-8000-0000000000c1", T0, "Umbra-05", 0.65, view
    )
    found = {
        "catalog": list(crawl_static(str(write_umbra_catalog(tmp_path / "umbra", [sar])))),
        "sidecar": list(crawl_static(str(write_umbra_sidecar(tmp_path / "bucket", sar)))),
    }
    for layout, scenes in found.items():
        assert len(scenes) == 1, layout
        record, why = scenes[0].sar_geometry()
        g = SarGeometry.from_record(record)
        assert why is None and (g.incidence_deg, g.look_azimuth_deg) == (38.5, 277.0), layout
    # geometry-free sample items say why nothing was read
    plain = list(crawl_static(str(sample_catalogs["umbra"])))
    assert plain and all(s.sar_geometry() == (None, plain_why(s)) for s in plain)


def plain_why(scene) -> str:
    return f"STAC item {scene.item_href}: SAR geometry not read (view:incidence_angle)"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        # as the view extension defines it: ascending + right looks east, and 100 is east
        ({"sat:orbit_state": "ascending", "sar:observation_direction": "right"}, 100.0),
        ({"sat:orbit_state": "descending", "sar:observation_direction": "left"}, 100.0),
        # the other way round: the azimuth points from the scene to the satellite
        ({"sat:orbit_state": "descending", "sar:observation_direction": "right"}, 280.0),
        ({"sat:orbit_state": "ascending", "sar:observation_direction": "left"}, 280.0),
    ],
)
def test_view_azimuth_is_checked_against_the_orbit(props, expected):
    az, how = look_azimuth({"view:azimuth": 100.0, **props})
    assert az == pytest.approx(expected) and props["sat:orbit_state"] in how


def test_an_ambiguous_view_azimuth_is_not_guessed():
    az, how = look_azimuth({"view:azimuth": 100.0})
    assert az is None and "does not say whether it points to or from the sensor" in how
    # looking almost north or south, the orbit cannot tell: Umbra's convention for Umbra only
    near_north = {"view:azimuth": 5.0, "sat:orbit_state": "ascending"}
    near_north["sar:observation_direction"] = "right"
    assert look_azimuth(near_north)[0] is None
    assert look_azimuth({**near_north, "constellation": "umbra"})[0] == pytest.approx(185.0)
    record, why = sar_geometry_record({"view:azimuth": 100.0, "view:incidence_angle": 30}, "x")
    assert record is None and why.startswith("STAC item x: SAR geometry not read (view:azimuth")


def test_grazing_angle_and_slant_products():
    props = {**UMBRA_PROPS, "umbra:grazing_angle_degrees": 55.0, "sar:product_type": "SICD"}
    del props["view:incidence_angle"]
    record, _ = sar_geometry_record(props, "item")
    g = SarGeometry.from_record(record)
    assert g.incidence_deg == pytest.approx(35.0) and not g.ground_projected
    assert "90 - umbra:grazing_angle_degrees" in g.detail
    ground, _ = sar_geometry_record(UMBRA_PROPS, "item")
    assert ground["ground_projected"] and "no sar:product_type: map grid" in ground["detail"]


def test_out_of_range_item_values_name_the_field_and_item():
    record, _ = sar_geometry_record({**UMBRA_PROPS, "view:incidence_angle": 95.0}, "a/item.json")
    with pytest.raises(InputError, match=r"view:incidence_angle 95.0 \(stac: a/item.json"):
        SarGeometry.from_record(record)


def test_an_optical_scene_has_no_sar_geometry():
    item = json.loads(shared_path("stac", "maxar_static_catalog_hotosm", "item.json").read_text())
    assert scene_from_item(item, "x/item.json").sar_geometry() == (None, None)


def test_the_look_direction_is_perpendicular_to_a_polar_track():
    """A descending, right-looking pass at 34 N flies about 190 degrees: the look direction from
    the real item is within the squint (19.3 degrees off broadside) of heading + 90."""
    g = SarGeometry.from_record(scene_from_item(_real_umbra_item(), "").sar_geometry()[0])
    broadside = 190.0 + 90.0
    off = (g.look_azimuth_deg - broadside + 180.0) % 360.0 - 180.0
    assert abs(off) < 19.3 + 5.0
    assert math.isclose(g.incidence_deg + 50.0657, 90.0, abs_tol=1e-3)  # 90 - grazing angle
