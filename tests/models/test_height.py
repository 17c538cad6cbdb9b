"""Height input: DSM/DTM rasters on another CRS and grid, read by windows onto a working grid."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.io
import requests
from affine import Affine
from pyproj import CRS, Transformer

from core.errors import InputError
from core.grid import Grid, north_up_grid
from models.height import HeightModel, height_above_terrain, open_height, read_height
from tests.conftest import free_port, stop_process, write_geotiff

UTM = CRS.from_epsg(32637)
LON0, LAT0 = 37.5, 37.2  # upper-left corner of the generated geographic DEM
ARCSEC = 1.0 / 3600.0


def plane(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The generated terrain: a plane in lon/lat (bilinear resampling reproduces it exactly)."""
    return 800.0 + 2000.0 * (lon - LON0) - 3000.0 * (lat - LAT0)


def write_dem(path, size: int = 1200, step: float = ARCSEC, bands: int = 1, **kw):
    """A geographic (EPSG:4326) DEM of ``plane`` with ``size``² pixels of ``step`` degrees."""
    transform = Affine(step, 0.0, LON0, 0.0, -step, LAT0)
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    lon, lat = LON0 + cols * step, LAT0 - rows * step
    data = np.repeat(plane(lon, lat)[None].astype(np.float32), bands, axis=0)
    return write_geotiff(path, data, transform, crs="EPSG:4326", **kw)


def utm_grid(lon: float, lat: float, side_px: int, res: float) -> Grid:
    """A north-up UTM 37N grid of ``side_px``² pixels of ``res`` m centred on a lon/lat."""
    x, y = Transformer.from_crs(4326, UTM, always_xy=True).transform(lon, lat)
    half = side_px * res / 2
    return north_up_grid(UTM, (x - half, y - half, x + half, y + half), res)


def expected(grid: Grid) -> np.ndarray:
    x, y = grid.pixel_centres()
    lon, lat = Transformer.from_crs(UTM, 4326, always_xy=True).transform(x, y)
    return plane(lon, lat)


@pytest.fixture
def reads(monkeypatch):
    """Every window and output shape the height reads ask of rasterio (a spy: reads still run)."""
    seen: list[tuple[object, object]] = []
    original = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        seen.append((kwargs.get("window"), kwargs.get("out_shape")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return seen


def test_geographic_dsm_on_a_utm_grid_reads_only_the_window(tmp_path, reads):
    dem = open_height(write_dem(tmp_path / "dem.tif"))
    grid = utm_grid(37.6, 37.1, 120, 2.0)  # 240 m: about 9 × 8 arcsec of a 1200² DEM
    heights = read_height(dem, grid)
    assert heights.shape == grid.shape and heights.dtype == np.float32
    assert np.isfinite(heights).all()
    np.testing.assert_allclose(heights, expected(grid), atol=0.05)
    window, _ = reads[-1]
    assert window is not None and window.width < 30 and window.height < 30


def test_much_finer_dem_is_decimated_while_reading(tmp_path, reads):
    dem = open_height(write_dem(tmp_path / "dem.tif", size=2000, step=ARCSEC / 4))
    grid = utm_grid(37.57, 37.13, 40, 100.0)  # 4 km at 100 m over a DEM of about 7.7 m
    heights = read_height(dem, grid)
    np.testing.assert_allclose(heights, expected(grid), atol=0.5)
    window, out_shape = reads[-1]
    assert window.width > 500  # the window is large on the file ...
    assert out_shape[-1] * out_shape[-2] < window.width * window.height / 16  # ... read decimated


def test_no_data_outside_the_dem_is_nan(tmp_path):
    dem = open_height(write_dem(tmp_path / "dem.tif", size=400))  # 400" wide: to lon 37.611
    grid = utm_grid(37.611, 37.15, 100, 10.0)  # straddles the DEM's east edge
    heights = read_height(dem, grid)
    west, east = heights[:, :30], heights[:, -30:]
    assert np.isfinite(west).all() and np.isnan(east).all()
    np.testing.assert_allclose(west, expected(grid)[:, :30], atol=0.05)


def test_nodata_value_reads_as_nan(tmp_path):
    data = np.full((1, 50, 50), 12.5, np.float32)
    data[0, :, :25] = -9999.0
    path = write_geotiff(tmp_path / "dsm.tif", data, Affine(1, 0, 1000, 0, -1, 2000), "EPSG:32637")
    with rasterio.open(path, "r+") as ds:
        ds.nodata = -9999.0
    grid = Grid(UTM, Affine(1, 0, 1000, 0, -1, 2000), 50, 50)
    heights = read_height(open_height(path), grid)
    assert np.isnan(heights[:, :20]).all()
    np.testing.assert_allclose(heights[:, 30:], 12.5)


def test_coverage_counts_only_pixels_with_data(tmp_path):
    data = np.full((1, 100, 100), 30.0, np.float32)
    data[0, :, 60:] = -9999.0  # the east 40 % is no data
    transform = Affine(1, 0, 1000, 0, -1, 2000)
    path = write_geotiff(tmp_path / "dsm.tif", data, transform, "EPSG:32637", nodata=-9999.0)
    optical = Grid(UTM, transform, 100, 100).footprint()
    record = HeightModel.open(path, None, UTM, optical).record(UTM, optical)
    assert record["dsm"]["coverage"] == pytest.approx(0.6, abs=0.02)


def test_heights_in_feet_become_metres(tmp_path):
    path = write_geotiff(
        tmp_path / "ft.tif", np.full((1, 20, 20), 100.0, np.float32), Affine(1, 0, 0, 0, -1, 20)
    )
    with rasterio.open(path, "r+") as ds:
        ds.units = ("ft",)
    grid = Grid(UTM, Affine(1, 0, 0, 0, -1, 20), 20, 20)
    np.testing.assert_allclose(read_height(open_height(path), grid)[5:15, 5:15], 30.48)


def test_height_above_terrain_is_nan_safe():
    dsm = np.array([[110.0, np.nan, 99.0]], np.float32)
    dtm = np.array([[100.0, 100.0, 100.0]], np.float32)
    hat = height_above_terrain(dsm, dtm)
    assert hat[0, 0] == pytest.approx(10.0) and np.isnan(hat[0, 1]) and hat[0, 2] == 0.0
    with pytest.raises(ValueError):
        height_above_terrain(dsm, dtm[:, :2])


def test_model_reads_dsm_and_dtm_and_records_coverage(tmp_path):
    dsm = write_dem(tmp_path / "dsm.tif", size=400)
    dtm = write_dem(tmp_path / "dtm.tif", size=400)
    grid = utm_grid(37.611, 37.15, 100, 10.0)
    model = HeightModel.open(dsm, dtm, UTM, grid.footprint())
    top, bare = model.read(grid)
    assert bare is not None and np.nanmax(np.abs(height_above_terrain(top, bare))) < 1e-3
    record = model.record(UTM, grid.footprint())
    assert record["dsm"]["path"] == str(dsm) and record["dsm"]["crs"] == "EPSG:4326"
    assert record["dtm"]["path"] == str(dtm)
    assert 0.05 < record["dsm"]["coverage"] < 0.95  # the grid straddles the DEM's edge
    assert record["vertical_unit"] == "metre"


def test_missing_file_names_the_option(tmp_path):
    with pytest.raises(InputError, match=r"DSM file not found: .*nope.tif .*--dsm"):
        open_height(tmp_path / "nope.tif")
    with pytest.raises(InputError, match=r"DTM file not found: .*--dtm"):
        HeightModel.open(write_dem(tmp_path / "dsm.tif", size=20), tmp_path / "nope.tif")


def test_three_bands_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"DSM file .*rgb.tif has 3 bands; expected 1"):
        open_height(write_dem(tmp_path / "rgb.tif", size=20, bands=3))


def test_no_crs_is_refused(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32"
    ) as ds:
        ds.write(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"DSM file .*plain.tif has no CRS .*--dsm"):
        open_height(path)


def test_dem_that_misses_the_pair_is_refused(tmp_path):
    dem = write_dem(tmp_path / "dem.tif", size=100)
    far = utm_grid(38.9, 36.0, 50, 10.0)  # over 100 km away
    with pytest.raises(InputError, match=r"DSM file .*dem.tif does not overlap the optical"):
        HeightModel.open(dem, None, far.crs, far.footprint())


def test_not_a_raster_is_refused(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("not a raster")
    with pytest.raises(InputError, match=r"DSM file .*notes.tif is not a readable raster"):
        open_height(path)


@pytest.fixture
def served(tmp_path):
    """A folder served over http from 127.0.0.1 by a process of its own (GDAL's /vsicurl/ holds
    the GIL, so a server thread here could not answer it), with HTTP range requests."""
    port = free_port()
    root = str(Path(__file__).resolve().parents[2])
    code = (
        f"import functools, http.server, sys; sys.path.insert(0, {root!r});"
        "from tests.stac.conftest import RangeHandler;"
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), "
        f"functools.partial(RangeHandler, directory={str(tmp_path)!r})).serve_forever()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "up.txt").write_text("up")
    for _ in range(200):
        try:
            requests.get(url + "/up.txt", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield tmp_path, url
    stop_process(proc, timeout=10)


def test_dsm_url_is_read_by_range_requests(served):
    folder, url = served
    write_dem(folder / "dem.tif")
    dem = open_height(f"{url}/dem.tif")
    grid = utm_grid(37.6, 37.1, 60, 2.0)
    np.testing.assert_allclose(read_height(dem, grid), expected(grid), atol=0.05)
    with pytest.raises(InputError, match=r"DSM file http://127.0.0.1:\d+/gone.tif is not"):
        open_height(f"{url}/gone.tif")
