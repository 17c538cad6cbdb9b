"""``coalign register --dsm/--dtm``: the height model is checked, put on the pair and recorded."""

from __future__ import annotations

import json

import numpy as np
from affine import Affine

from flows.cli import main
from tests.conftest import write_geotiff

LON0, LAT0, STEP = 37.6, 37.1, 1.0 / 3600.0  # covers the radar pair near 37.617 E, 37.091 N


def write_dem(path, lon0: float = LON0, lat0: float = LAT0, bands: int = 1):
    """A 100″ × 100″ geographic DEM (EPSG:4326) of a slope, ``bands`` copies."""
    cols, rows = np.meshgrid(np.arange(100), np.arange(100))
    data = np.repeat((500.0 + cols - rows)[None].astype(np.float32), bands, axis=0)
    return write_geotiff(path, data, Affine(STEP, 0.0, lon0, 0.0, -STEP, lat0), crs="EPSG:4326")


def register(capsys, pair, out, *extra: str) -> tuple[int, str, str]:
    argv = ["register", str(pair.optical), str(pair.sar), "-o", str(out), "--method", "zero"]
    code = main([*argv, "--no-progress", *extra])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_dsm_and_dtm_are_recorded_in_the_result(radar_pair, tmp_path, capsys):
    dsm, dtm = write_dem(tmp_path / "dsm.tif"), write_dem(tmp_path / "dtm.tif")
    out = tmp_path / "d.tif"
    code, stdout, _ = register(
        capsys, radar_pair, out, "--dsm", str(dsm), "--dtm", str(dtm), "--json"
    )
    assert code == 0
    height = json.loads(stdout)["height"]
    assert height["vertical_unit"] == "metre"
    assert height["dsm"]["path"] == str(dsm) and height["dsm"]["crs"] == "EPSG:4326"
    assert height["dsm"]["coverage"] == 1.0
    assert height["dtm"]["path"] == str(dtm)

    code, stdout, _ = register(capsys, radar_pair, out, "--dsm", str(dsm), "--overwrite")
    assert code == 0
    assert f"dsm           {dsm} (EPSG:4326, covers 100% of the optical image)" in stdout


def test_without_a_dsm_nothing_is_recorded(radar_pair, tmp_path, capsys):
    code, stdout, _ = register(capsys, radar_pair, tmp_path / "d.tif", "--json")
    assert code == 0 and "height" not in json.loads(stdout)


def test_dsm_errors_exit_2_with_the_reason(radar_pair, tmp_path, capsys):
    out = tmp_path / "d.tif"
    far = write_dem(tmp_path / "far.tif", lon0=20.0, lat0=50.0)
    cases = {
        "does not overlap the optical image": ["--dsm", str(far)],
        "has 3 bands; expected 1": ["--dsm", str(write_dem(tmp_path / "rgb.tif", bands=3))],
        "DSM file not found": ["--dsm", str(tmp_path / "missing.tif")],
        "give the surface model with --dsm too": ["--dtm", str(far)],
    }
    for reason, extra in cases.items():
        code, _, stderr = register(capsys, radar_pair, out, *extra)
        assert code == 2, reason
        assert stderr.startswith("coalign register: error: ") and reason in stderr, stderr
        assert not out.exists()
