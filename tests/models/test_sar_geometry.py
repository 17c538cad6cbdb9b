"""SAR acquisition geometry: ranges, look vector, layover, GeoTIFF tags, precedence, recording."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine

from core.errors import InputError
from models.methods.base import RegistrationInput
from models.registration import register
from models.sar_geometry import (
    GEOMETRY_UNKNOWN,
    SarGeometry,
    geometry_from_options,
    geometry_from_tags,
    map_to_pixels,
)
from tests.conftest import write_geotiff

RES, X0, Y0 = 0.5, 500000.0, 4100000.0


def _tif(path, count=1, tags=None):
    rng = np.random.default_rng(count)
    data = rng.integers(1, 255, (count, 128, 128), dtype=np.uint8)
    write_geotiff(path, data, Affine(RES, 0, X0, 0, -RES, Y0))
    if tags:
        with rasterio.open(path, "r+") as ds:
            ds.update_tags(**tags)
    return str(path)


@pytest.mark.parametrize(
    ("incidence", "azimuth", "message"),
    [
        (0.0, 90.0, r"--sar-incidence 0.0 \(option\): .* must be in \(0, 90\)"),
        (90.0, 90.0, r"--sar-incidence 90.0 .* must be in \(0, 90\)"),
        (float("nan"), 90.0, r"--sar-incidence nan"),
        (35.0, -1.0, r"--sar-look-azimuth -1.0 \(option\): .* must be in \[0, 360\]"),
        (35.0, 361.0, r"--sar-look-azimuth 361.0"),
    ],
)
def test_angles_out_of_range_name_the_option(incidence, azimuth, message):
    with pytest.raises(InputError, match=message):
        geometry_from_options(incidence, azimuth)


def test_options_need_both_angles():
    with pytest.raises(InputError, match="--sar-incidence given without --sar-look-azimuth"):
        geometry_from_options(38.5, None)
    with pytest.raises(InputError, match="--sar-look-azimuth given without --sar-incidence"):
        geometry_from_options(None, 97.0)
    with pytest.raises(InputError, match="--sar-slant describes the SAR geometry"):
        geometry_from_options(None, None, False)
    assert geometry_from_options(None, None) is None
    g = geometry_from_options(38.5, 360.0, False)
    assert (g.incidence_deg, g.look_azimuth_deg, g.ground_projected, g.source) == (
        38.5,
        0.0,
        False,
        "option",
    )


def test_look_vector_and_layover_point_the_right_way():
    east = SarGeometry(45.0, 90.0)  # looking east: the sensor is west of the scene
    assert east.look_vector() == pytest.approx((1.0, 0.0))
    # a 10 m high point at 45 degrees moves 10 m towards the sensor (west)
    assert east.layover_shift_m(10.0) == pytest.approx((-10.0, 0.0))
    steep = SarGeometry(30.0, 180.0)  # looking south
    dx, dy = steep.layover_shift_m(np.array([0.0, 10.0]))
    assert dx == pytest.approx([0.0, 0.0], abs=1e-9)
    assert dy == pytest.approx([0.0, 10.0 / math.tan(math.radians(30.0))])


def test_look_vector_follows_true_north_in_a_utm_grid():
    """Away from the central meridian grid north is not true north: the vector turns by the
    meridian convergence (about 2.3 degrees 3 degrees east of the meridian at 45 N)."""
    g = SarGeometry(40.0, 0.0)
    x, y = g.look_vector("EPSG:32637", (735000.0, 4990000.0))
    turn = math.degrees(math.atan2(x, y))
    assert math.hypot(x, y) == pytest.approx(1.0)
    assert -3.0 < turn < -1.5  # true north points west of grid north east of the meridian
    assert g.look_vector("EPSG:32637", (500000.0, 4990000.0)) == pytest.approx((0.0, 1.0))


def test_map_offsets_become_pixels_of_a_rotated_grid():
    rotated = Affine.rotation(30.0) @ Affine.scale(0.5, -0.5)
    col, row = map_to_pixels(
        rotated, *(rotated.a * 3 + rotated.b * 4, rotated.d * 3 + rotated.e * 4)
    )
    assert (col, row) == pytest.approx((3.0, 4.0))


def test_geotiff_tags_give_the_geometry(tmp_path):
    sar = _tif(
        tmp_path / "s.tif",
        tags={
            "SAR_INCIDENCE_ANGLE": "41.5",
            "SAR_LOOK_AZIMUTH": "263",
            "SAR_GROUND_PROJECTED": "false",
        },
    )
    g = geometry_from_tags(sar)
    assert (g.incidence_deg, g.look_azimuth_deg, g.ground_projected) == (41.5, 263.0, False)
    assert g.source == "geotiff tags" and g.detail == sar
    assert geometry_from_tags(_tif(tmp_path / "plain.tif")) is None


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"SAR_INCIDENCE_ANGLE": "41.5"}, "has tag SAR_INCIDENCE_ANGLE but no SAR_LOOK_AZIMUTH"),
        ({"SAR_LOOK_AZIMUTH": "10"}, "has tag SAR_LOOK_AZIMUTH but no SAR_INCIDENCE_ANGLE"),
        (
            {"SAR_INCIDENCE_ANGLE": "steep", "SAR_LOOK_AZIMUTH": "10"},
            r"tag SAR_INCIDENCE_ANGLE steep \(geotiff tags: .*bad.tif\)",
        ),
        (
            {"SAR_INCIDENCE_ANGLE": "30", "SAR_LOOK_AZIMUTH": "10", "SAR_GROUND_PROJECTED": "y"},
            "tag SAR_GROUND_PROJECTED='y' is not true or false",
        ),
    ],
)
def test_bad_tags_name_the_file_and_tag(tmp_path, tags, message):
    with pytest.raises(InputError, match=message):
        geometry_from_tags(_tif(tmp_path / "bad.tif", tags=tags))


def test_given_geometry_wins_over_tags_and_is_recorded(tmp_path):
    o = _tif(tmp_path / "o.tif", count=3)
    s = _tif(tmp_path / "s.tif", tags={"SAR_INCIDENCE_ANGLE": "30", "SAR_LOOK_AZIMUTH": "80"})
    from_tags = RegistrationInput.open(o, s, "cpu")
    assert from_tags.geometry.source == "geotiff tags"
    given = SarGeometry(38.5, 277.0, True, "stac", "item.json")
    pair = RegistrationInput.open(o, s, "cpu", geometry=given)
    assert pair.geometry == given
    result = register(pair, "zero")
    assert result.details["sar_geometry"] == {
        "incidence_deg": 38.5,
        "look_azimuth_deg": 277.0,
        "ground_projected": True,
        "source": "stac",
        "detail": "item.json",
    }
    assert GEOMETRY_UNKNOWN not in result.warnings


def test_missing_geometry_is_null_and_a_warning_when_a_height_model_needs_it(tmp_path):
    o, s = _tif(tmp_path / "o.tif", 3), _tif(tmp_path / "s.tif")
    result = register(RegistrationInput.open(o, s, "cpu"), "zero")
    assert result.details["sar_geometry"] is None and result.warnings == []
    assert not np.any(result.field.dx)  # the method ran as before
    with_height = RegistrationInput.open(o, s, "cpu", dsm=_tif(tmp_path / "dsm.tif"))
    assert with_height.geometry is None and with_height.height is not None
    assert register(with_height, "zero").warnings == [GEOMETRY_UNKNOWN]


def test_the_urban_bench_tags_read_back_with_the_same_layover(tmp_path):
    """The urban bench writes its SAR geometry as tags; read back, the layover this module
    predicts is the displacement the simulation applied (less its constant offset)."""
    from samples.urban import UrbanSpec, sar_tags

    spec = UrbanSpec(incidence_deg=42.0, look_azimuth_deg=233.0)
    g = geometry_from_tags(_tif(tmp_path / "urban.tif", tags=sar_tags(spec)))
    heights = np.array([0.0, 3.0, 60.0])
    dx, dy = spec.shift(np.zeros(3), np.zeros(3), heights)
    half = spec.size_px * spec.optical_res / 2
    centre = (spec.origin[0] + half, spec.origin[1] - half)  # where the simulator takes it
    ex, ey = g.layover_shift_m(heights, spec.crs, centre)
    assert ex == pytest.approx(dx - spec.offset_m[0]) and ey == pytest.approx(dy - spec.offset_m[1])
