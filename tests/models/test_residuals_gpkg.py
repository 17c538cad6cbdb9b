"""The residual GeoPackage beside the residual CSV: points, CRS, fields, confidence, file mode."""

from __future__ import annotations

import csv
import os

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS

from core.errors import InputError
from core.grid import Grid
from models.residuals_gpkg import FIELDS, LAYER, gpkg_path
from models.scoring import Tiepoints, score_displacement, score_shifts
from tests.conftest import write_geotiff

UTM = CRS.from_epsg(32637)
ROTATED_UTM = Grid(
    UTM,
    Affine.translation(377000, 4106000) @ Affine.rotation(20) @ Affine.scale(0.5, -0.5),
    300,
    200,
)
GEOGRAPHIC = Grid(CRS.from_epsg(4326), Affine(5e-6, 0.0, 37.0, 0.0, -4.5e-6, 37.1), 300, 200)


def _pair_files(tmp_path, optical: Grid, n: int = 25):
    """Tiepoints, a random displacement map and a confidence map (one NaN pixel under a tiepoint)
    on ``optical``."""
    rng = np.random.default_rng(7)
    orow = rng.integers(3, optical.height - 3, n).astype(float)
    ocol = rng.integers(3, optical.width - 3, n).astype(float)
    orow[3] += 0.5  # a fractional pixel position
    tp = Tiepoints(orow + rng.integers(-3, 4, n), ocol + rng.integers(-3, 4, n), orow, ocol)
    shape = (optical.height, optical.width)
    disp = rng.normal(0, 2, (2, *shape)).astype(np.float32)
    conf = rng.uniform(0, 1, (1, *shape)).astype(np.float32)
    conf[0, int(orow[5]), int(ocol[5])] = np.nan
    crs = optical.crs.to_string()
    d = write_geotiff(tmp_path / "d.tif", disp, optical.transform, crs, float("nan"))
    c = write_geotiff(tmp_path / "c.tif", conf, optical.transform, crs, float("nan"))
    return tp, d, c, conf[0]


def _read_csv(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("optical", [ROTATED_UTM, GEOGRAPHIC], ids=["rotated-utm", "geographic"])
def test_geopackage_points_fields_and_confidence(tmp_path, optical):
    tp, disp, conf_tif, conf = _pair_files(tmp_path, optical)
    score = score_displacement(disp, tp, optical, optical)
    written = score.write_residuals(tmp_path / "r.csv", tp, optical, conf_tif)
    assert written == gpkg_path(tmp_path / "r.csv") == tmp_path / "r.gpkg"

    assert pyogrio.list_layers(written)[:, 0].tolist() == [LAYER]
    info = pyogrio.read_info(written, layer=LAYER)
    assert info["crs"] == f"EPSG:{optical.crs.to_epsg()}"
    assert info["features"] == len(tp) and info["geometry_type"] == "Point"
    assert tuple(info["fields"]) == FIELDS

    _, _, geometry, values = pyogrio.raw.read(written, layer=LAYER)
    got = dict(zip(FIELDS, values, strict=True))
    points = shapely.from_wkb(geometry)
    xo, yo = optical.pixel_to_map(tp.optical_col, tp.optical_row)
    np.testing.assert_allclose(shapely.get_x(points), xo, rtol=0, atol=1e-9)
    np.testing.assert_allclose(shapely.get_y(points), yo, rtol=0, atol=1e-9)

    table = _read_csv(tmp_path / "r.csv")
    assert got["tiepoint"].tolist() == list(range(len(tp)))
    for name, column in table.items():
        np.testing.assert_allclose(got[name], column, rtol=0, atol=5e-5, err_msg=name)
    np.testing.assert_allclose(np.hypot(got["error_x_m"], got["error_y_m"]), score.error_m)

    expected = conf[np.floor(tp.optical_row).astype(int), np.floor(tp.optical_col).astype(int)]
    assert np.isnan(expected[5]) and np.isnan(got["confidence"][5])  # no-data is NULL
    np.testing.assert_array_equal(got["confidence"], expected.astype(np.float64))


def test_error_vector_points_along_map_axes(tmp_path):
    # north-up 0.5 m grid: 2 px too far right and 4 px too far down is 1 m east and 2 m south
    optical = Grid(UTM, Affine(0.5, 0, 377000, 0, -0.5, 4106000), 100, 100)
    tp = Tiepoints(
        np.array([10.0, 50.0]),
        np.array([10.0, 60.0]),
        np.array([10.0, 50.0]),
        np.array([10.0, 60.0]),
    )
    score = score_shifts(np.full(2, 2.0), np.full(2, 4.0), tp, optical, optical)
    path = score.write_residuals(tmp_path / "r.csv", tp, optical)
    _, _, _, values = pyogrio.raw.read(path, layer=LAYER)
    got = dict(zip(FIELDS, values, strict=True))
    np.testing.assert_allclose(got["error_x_m"], 1.0)
    np.testing.assert_allclose(got["error_y_m"], -2.0)
    assert np.isnan(got["confidence"]).all()  # no confidence raster: NULL


def test_geopackage_follows_the_umask_and_replaces_atomically(tmp_path, umask):
    tp, disp, conf_tif, _ = _pair_files(tmp_path, ROTATED_UTM)
    score = score_displacement(disp, tp, ROTATED_UTM, ROTATED_UTM)
    (tmp_path / "r.gpkg").write_text("an old file")
    umask(0o027)
    path = score.write_residuals(tmp_path / "r.csv", tp, ROTATED_UTM, conf_tif)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert pyogrio.read_info(path, layer=LAYER)["features"] == len(tp)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_confidence_on_another_grid_is_an_input_error(tmp_path):
    tp, disp, _, _ = _pair_files(tmp_path, ROTATED_UTM)
    small = write_geotiff(
        tmp_path / "small.tif", np.ones((1, 10, 10), np.float32), ROTATED_UTM.transform
    )
    score = score_displacement(disp, tp, ROTATED_UTM, ROTATED_UTM)
    with pytest.raises(InputError, match="confidence map .* is 10×10"):
        score.write_residuals(tmp_path / "r.csv", tp, ROTATED_UTM, small)
    assert not (tmp_path / "r.gpkg").exists() and not (tmp_path / "r.csv").exists()


def _layer(path) -> dict[str, np.ndarray]:
    _, _, _, values = pyogrio.raw.read(path, layer=LAYER)
    return dict(zip(FIELDS, values, strict=True))


def test_register_and_score_commands_write_the_geopackage(radar_pair, tmp_path, capsys):
    from flows.cli import main

    disp, conf = tmp_path / "d.tif", tmp_path / "c.tif"
    pair = [str(radar_pair.optical), str(radar_pair.sar)]
    assert (
        main(
            ["register", *pair, "-o", str(disp), "--method", "zero", "--no-progress"]
            + ["--tiepoints", str(radar_pair.tiepoints), "--confidence", str(conf)]
            + ["--residuals", str(tmp_path / "reg.csv")]
        )
        == 0
    )
    registered = _layer(tmp_path / "reg.gpkg")
    with rasterio.open(conf) as ds:
        raster = ds.read(1).astype(np.float64)
    r, c = registered["optical_row"].astype(int), registered["optical_col"].astype(int)
    np.testing.assert_array_equal(registered["confidence"], raster[r, c])

    scored = [str(disp), *pair, str(radar_pair.tiepoints)]
    assert main(["score", *scored, "--residuals", str(tmp_path / "s.csv"), "--confidence",
                 str(conf)]) == 0  # fmt: skip
    np.testing.assert_array_equal(_layer(tmp_path / "s.gpkg")["confidence"], raster[r, c])
    assert main(["score", *scored, "--residuals", str(tmp_path / "n.csv")]) == 0
    assert np.isnan(_layer(tmp_path / "n.gpkg")["confidence"]).all()
    capsys.readouterr()

    small = write_geotiff(
        tmp_path / "small.tif", np.ones((1, 10, 10), np.float32), Affine.identity()
    )
    assert main(["score", *scored, "--residuals", str(tmp_path / "x.csv"), "--confidence",
                 str(small)]) == 2  # fmt: skip
    assert "coalign score: error: confidence map" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.gpkg").exists()
