"""Degenerate inputs: pairs too small to register are refused with the least size, results that
measured nothing say so, and a tiepoint CSV saved by Excel (UTF-8 with a byte-order mark) reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from core.errors import InputError
from flows.cli import main
from models.methods.base import RegistrationInput
from models.methods.local import LocalConfig
from models.methods.local.schedule import level_layout, min_level_side, min_overlap
from models.registration import register
from models.scoring import read_tiepoints
from tests.conftest import write_geotiff

RES = 0.5
X0, Y0 = 377000.0, 4106000.0


def _tif(
    path: Path, width: int, height: int, count: int = 1, dx_m: float = 0.0, value: int = 0
) -> str:
    """A north-up uint8 GeoTIFF at 0.5 m, ``dx_m`` east of the common origin; noise, or
    ``value`` everywhere when given."""
    rng = np.random.default_rng(width * 7 + height)
    data = rng.integers(1, 255, (count, height, width), dtype=np.uint8)
    if value:
        data[:] = value
    write_geotiff(path, data, Affine(RES, 0, X0 + dx_m, 0, -RES, Y0))
    return str(path)


def _pair(tmp_path: Path, optical: tuple[int, int], sar: tuple[int, int], dx_m: float = 0.0):
    o = _tif(tmp_path / "o.tif", *optical, count=3)
    s = _tif(tmp_path / "s.tif", *sar, dx_m=dx_m)
    return RegistrationInput.open(o, s, "cpu")


@pytest.mark.parametrize("method", ["local", "global-affine"])
def test_tiny_images_are_refused_with_the_least_size(tmp_path, method):
    pair = _pair(tmp_path, (16, 16), (16, 16))
    with pytest.raises(InputError) as err:
        register(pair, method)
    message = str(err.value)
    assert f"optical image {pair.optical.path} is 16x16 pixels (8.0 x 8.0 m)" in message
    assert f"too small to register with {method}" in message
    least = re.search(r"needs at least (\d+) pixels \(([\d.]+) m\) across", message)
    assert least, message
    pixels, metres = int(least[1]), float(least[2])
    assert pixels > 16 and pixels == pytest.approx(metres / RES, abs=1)


def test_a_one_pixel_wide_image_is_refused(tmp_path):
    pair = _pair(tmp_path, (1, 64), (64, 64))
    with pytest.raises(InputError, match=r"optical image .* is 1x64 pixels .* needs at least"):
        register(pair, "local")


@pytest.mark.parametrize("method", ["local", "global-affine"])
def test_an_overlap_too_narrow_for_the_method_is_refused(tmp_path, method):
    # 64 x 32 m images side by side, 4 m (8 pixels) in common
    pair = _pair(tmp_path, (128, 64), (128, 64), dx_m=60.0)
    with pytest.raises(InputError) as err:
        register(pair, method)
    message = str(err.value)
    assert "overlap by only 4.0 x 32.0 m" in message
    assert f"too little for {method}, which needs an overlap at least" in message
    assert "give a pair that overlaps more" in message


@pytest.mark.parametrize("template_px, radius", [(48, 2), (48, 12), (16, 3), (96, 5)])
def test_the_least_side_is_the_narrowest_overlap_on_which_a_level_fits(
    tmp_path, template_px, radius
):
    conf = LocalConfig(template_px=template_px)
    side = min_level_side(conf, radius)
    for n, fits in ((side, True), (side - 1, False)):
        pair = _pair(tmp_path, (n, n), (n, n))
        assert level_layout(pair, conf, RES, radius).fits is fits, (n, fits)


def test_local_least_overlap_is_that_of_its_finest_pass(tmp_path):
    pair = _pair(tmp_path, (64, 64), (64, 64))
    conf = LocalConfig()
    metres, need = min_overlap(pair, conf)
    # at 0.5 m the last pass (radius 2) fits one 24-pixel template plus its search
    assert metres == pytest.approx(min_level_side(conf, 2) * RES)
    assert need == "one 24-pixel template plus its +-2-pixel search at 0.50 m"


def test_zero_takes_any_overlap(tmp_path):
    pair = _pair(tmp_path, (16, 16), (16, 16))
    result = register(pair, "zero")
    assert not np.any(result.field.dx) and result.warnings == []


def test_a_strip_overlap_is_registered_with_a_warning(tmp_path, capsys):
    optical = _tif(tmp_path / "o.tif", 128, 128, count=3)
    sar = _tif(tmp_path / "s.tif", 128, 128, dx_m=58.0)  # 6 of 64 m in common
    out = tmp_path / "d.tif"
    argv = ["register", optical, sar, "-o", str(out), "--method", "zero", "--no-progress"]
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0 and out.exists()
    summary = json.loads(captured.out)
    assert summary["warnings"] == [
        "the SAR image covers only 9.4% of the optical image; the displacement outside the "
        "overlap is extrapolated, not measured",
    ]
    assert "warning: the SAR image covers only 9.4%" in captured.err


def test_a_wide_overlap_has_no_coverage_warning(tmp_path):
    pair = _pair(tmp_path, (128, 128), (128, 128), dx_m=50.0)  # 14 of 64 m: 22 %
    assert register(pair, "zero").warnings == []


def test_local_that_measures_nothing_says_so(tmp_path):
    o = _tif(tmp_path / "o.tif", 96, 96, count=3, value=120)
    s = _tif(tmp_path / "s.tif", 96, 96, value=90)
    pair = RegistrationInput.open(o, s, "cpu")
    result = register(pair, "local", {"global_prior": "false", "workers": "1"})
    assert not np.any(result.field.dx) and not np.any(result.field.dy)
    assert result.warnings[-1].startswith("local measured no displacement (0 consistent")
    assert result.warnings[-1].endswith("returning zero shift with confidence 0")


def test_a_tiepoint_csv_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "excel.csv"
    text = "sar_row,sar_col,optical_row,optical_col\r\n10,11,12,13\r\n20.5,21,22,23\r\n"
    path.write_text(text, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    tp = read_tiepoints(path)
    assert tp.sar_row.tolist() == [10.0, 20.5] and tp.optical_col.tolist() == [13.0, 23.0]
