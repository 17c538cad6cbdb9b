"""``coalign register --sar-incidence/--sar-look-azimuth``: the geometry in the JSON and text."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from flows.cli import main
from models.sar_geometry import GEOMETRY_UNKNOWN
from tests.conftest import write_geotiff

RES, X0, Y0 = 0.5, 377000.0, 4106000.0


def _tif(path, count=1, tags=None):
    data = np.random.default_rng(count).integers(1, 255, (count, 96, 96), dtype=np.uint8)
    write_geotiff(path, data, Affine(RES, 0, X0, 0, -RES, Y0))
    if tags:
        with rasterio.open(path, "r+") as ds:
            ds.update_tags(**tags)
    return str(path)


def _register(tmp_path, capsys, *extra, tags=None):
    o, s = _tif(tmp_path / "o.tif", 3), _tif(tmp_path / "s.tif", tags=tags)
    argv = ["register", o, s, "-o", str(tmp_path / "d.tif"), "--method", "zero"]
    code = main([*argv, "--no-progress", "--overwrite", *extra])
    return code, capsys.readouterr()


def test_options_give_the_geometry_over_the_tags(tmp_path, capsys):
    tags = {"SAR_INCIDENCE_ANGLE": "30", "SAR_LOOK_AZIMUTH": "80"}
    options = ["--sar-incidence", "38.5", "--sar-look-azimuth", "277", "--sar-slant"]
    code, out = _register(tmp_path, capsys, *options, "--json", tags=tags)
    summary = json.loads(out.out)
    assert code == 0 and summary["sar_geometry"] == {
        "incidence_deg": 38.5,
        "look_azimuth_deg": 277.0,
        "ground_projected": False,
        "source": "option",
        "detail": "",
    }
    assert "warnings" not in summary
    code, out = _register(tmp_path, capsys, tags=tags)
    assert code == 0
    assert "sar geometry  incidence 30.0 deg, look azimuth 80.0 deg, ground-projected " in out.out
    assert "(geotiff tags)" in out.out


def test_unknown_geometry_is_null_and_warned_only_with_a_height_model(tmp_path, capsys):
    code, out = _register(tmp_path, capsys, "--json")
    summary = json.loads(out.out)
    assert code == 0 and summary["sar_geometry"] is None and "warnings" not in summary
    dsm = _tif(tmp_path / "dsm.tif")  # a 1-band raster over the pair: a height model
    code, out = _register(tmp_path, capsys, "--json", "--dsm", dsm)
    summary = json.loads(out.out)
    assert code == 0 and summary["sar_geometry"] is None
    assert summary["warnings"] == [GEOMETRY_UNKNOWN]
    assert f"warning: {GEOMETRY_UNKNOWN}" in out.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sar-incidence", "38.5"], "--sar-incidence given without --sar-look-azimuth"),
        (["--sar-incidence", "95", "--sar-look-azimuth", "10"], "--sar-incidence 95.0 (option)"),
        (["--sar-slant"], "--sar-slant describes the SAR geometry"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    code, out = _register(tmp_path, capsys, *extra)
    assert code == 2 and message in out.err and "coalign register: error:" in out.err
    assert not (tmp_path / "d.tif").exists()
