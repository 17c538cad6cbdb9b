"""Fixtures for publishing tests: tiny real GeoTIFF/PNG products, scene records, a real STAC API
server."""

from __future__ import annotations

import csv
import datetime as dt
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from shapely.geometry import box

from core.ids import pair_id
from stac.publish import PublishedPair
from stac.scene import Scene

from .stac_server import StacApiServer, missing_prerequisites, start_stac_api

CRS = "EPSG:32637"  # UTM 37N, the SN9 Turkey AOIs
ORIGIN = (377000.0, 4106000.0)
PIXEL = 0.5
SIZE = 48

OPTICAL_TIME = dt.datetime(2023, 1, 24, 8, 21, 5, tzinfo=dt.UTC)
SAR_TIME = dt.datetime(2023, 2, 9, 19, 2, 41, tzinfo=dt.UTC)


def _profile(
    count: int, dtype: str, nodata: float | None, shift: tuple[float, float] = (0.0, 0.0)
) -> dict:
    return dict(
        driver="GTiff",
        width=SIZE,
        height=SIZE,
        count=count,
        dtype=dtype,
        crs=CRS,
        nodata=nodata,
        transform=Affine(PIXEL, 0, ORIGIN[0] + shift[0], 0, -PIXEL, ORIGIN[1] + shift[1]),
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="deflate",
    )


def write_products(folder: Path, dx: float = 3.0, with_residuals: bool = True) -> dict[str, Path]:
    """The outputs of one registered pair, as small real files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    out = {
        "aligned_optical": folder / "aligned_optical.tif",
        "displacement": folder / "displacement.tif",
        "confidence": folder / "confidence.tif",
        "qa_flow": folder / "qa" / "qa_flow.png",
    }
    with rasterio.open(out["aligned_optical"], "w", **_profile(3, "uint8", 0)) as ds:
        ds.write(rng.integers(1, 255, (3, SIZE, SIZE), dtype=np.uint8))
    with rasterio.open(out["displacement"], "w", **_profile(2, "float32", float("nan"))) as ds:
        field = np.stack(
            [np.full((SIZE, SIZE), dx, np.float32), np.full((SIZE, SIZE), -2.0, np.float32)]
        )
        field[:, :4, :4] = np.nan
        ds.write(field)
        ds.set_band_description(1, "dx")
        ds.set_band_description(2, "dy")
        ds.update_tags(1, units="pixel")
        ds.update_tags(2, units="pixel")
    with rasterio.open(out["confidence"], "w", **_profile(1, "float32", float("nan"))) as ds:
        ds.write(rng.random((1, SIZE, SIZE), dtype=np.float32))
    out["qa_flow"].parent.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a QA picture has no geotransform
        with rasterio.open(
            out["qa_flow"], "w", driver="PNG", width=32, height=24, count=3, dtype="uint8"
        ) as ds:
            ds.write(rng.integers(0, 255, (3, 24, 32), dtype=np.uint8))
    if with_residuals:
        out["residuals"] = folder / "residuals.csv"
        with open(out["residuals"], "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "sar_row",
                    "sar_col",
                    "optical_row",
                    "optical_col",
                    "dx_ref",
                    "dy_ref",
                    "dx",
                    "dy",
                    "error_px",
                ]
            )
            w.writerow([10, 12, 11, 9, 3, -1, 3.0, -2.0, 1.0])
    return out


MAXAR_ITEM = (
    "https://maxar-opendata.s3.amazonaws.com/events/x/ard/37/120022303302/2023-01-24/"
    "10300100E1E9D100.json"
)


def optical_scene(item_href: str | None = MAXAR_ITEM) -> Scene:
    footprint = box(37.56, 37.08, 37.57, 37.09)
    return Scene(
        id="37/120022303302/10300100E1E9D100",
        sensor="optical",
        platform="WV02",
        datetime=OPTICAL_TIME,
        footprint=footprint,
        href="https://example.invalid/visual.tif",
        crs=CRS,
        gsd=0.5,
        collection="Kahramanmaras-turkey-earthquake-23",
        item_href=item_href,
        view_off_nadir=21.3,
        view_incidence_angle=24.1,
        view_azimuth=190.5,
        properties={"view:sun_azimuth": 158.2, "view:sun_elevation": 31.0, "view:off_nadir": 21.3},
    )


def sar_scene(
    item_href: str | None = (
        "https://umbra-open-data-catalog.s3.amazonaws.com/stac/2023/2023-02/2023-02-09/5b2a/"
        "5b2a.json"
    ),
    sar: dict | None = None,
) -> Scene:
    footprint = box(37.558, 37.078, 37.572, 37.092)
    return Scene(
        id="5b2a0b4e-8f40-4b9d-9d3e-3c1f6e0d6a51",
        sensor="sar",
        platform="Umbra-05",
        datetime=SAR_TIME,
        footprint=footprint,
        href="https://example.invalid/GEC.tif",
        crs=CRS,
        gsd=0.45,
        collection="umbra-sar",
        item_href=item_href,
        view_incidence_angle=39.9,
        view_azimuth=119.6,
        sar=sar
        if sar is not None
        else {
            "sar:instrument_mode": "SPOTLIGHT",
            "sar:frequency_band": "X",
            "sar:center_frequency": 9.6,
            "sar:polarizations": ["VV"],
            "sar:product_type": "GEC",
            "sar:resolution_range": 0.5,
            "sar:resolution_azimuth": 0.125,
            "sar:looks_range": 1,
            "sar:looks_azimuth": 4,
            "sar:observation_direction": "right",
            "sar:beam_ids": ["not-in-v1.0"],
        },
    )


SCORE = {
    "tiepoints": 151,
    "mean_px": 2.5,
    "median_px": 2.0,
    "p90_px": 4.5,
    "mean_m": 1.25,
    "median_m": 1.0,
    "p90_m": 2.25,
}


def published_pair(
    outputs: dict[str, Path],
    activation: str = "turkey-2023",
    method_version: str = "1.0",
    score: dict | None = SCORE,
    pair_suffix: str = "",
    **scene_kwargs,
) -> PublishedPair:
    o, s = optical_scene(), sar_scene(**scene_kwargs)
    return PublishedPair(
        pair_id(o.id, s.id) + pair_suffix,
        o,
        s,
        outputs,
        "local",
        method_version,
        activation,
        score,
    )


@pytest.fixture
def products(tmp_path: Path) -> dict[str, Path]:
    return write_products(tmp_path / "pair")


@pytest.fixture
def pair(products: dict[str, Path]) -> PublishedPair:
    return published_pair(products)


@pytest.fixture(scope="session")
def stac_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StacApiServer]:
    """stac-fastapi-pgstac with the Transaction extension on PostgreSQL/PostGIS, on 127.0.0.1."""
    missing = missing_prerequisites()
    if missing:
        reason = f"real STAC API server unavailable ({missing}); run .ci/install-stac-server.sh"
        if os.environ.get("COALIGN_REQUIRE_STAC_SERVER") == "1":
            pytest.fail(reason + " (COALIGN_REQUIRE_STAC_SERVER=1)")
        pytest.skip(reason)
    with start_stac_api(tmp_path_factory.mktemp("stac-api-logs")) as server:
        yield server
