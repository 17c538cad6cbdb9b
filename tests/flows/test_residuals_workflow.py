"""The register-pair flow writes the residual GeoPackage beside the CSV, publishes and tracks it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyogrio
import rasterio

from flows.commands.demo import SAR_ID
from flows.register_pair import register_pair
from models.residuals_gpkg import FIELDS, LAYER, MEDIA_TYPE
from stac.readers import discover, load_json


def test_register_pair_publishes_the_residual_geopackage(sample, new_workdir):
    from mlflow.tracking import MlflowClient

    work = new_workdir("gpkg")
    scenes = discover(sample["catalogs"])
    optical = next(s for s in scenes if s.sensor == "optical")
    sar = next(s for s in scenes if s.id.endswith(SAR_ID))
    record = register_pair(
        optical.to_record(),
        sar.to_record(),
        method="zero",
        tiepoints=sample["tiepoints"][SAR_ID],
        workdir=str(work),
        activation="gpkg-quake",
    )

    gpkg = Path(record["outputs"]["residual_points"])
    assert gpkg == Path(record["outputs"]["residuals"]).with_suffix(".gpkg") and gpkg.is_file()
    with open(record["outputs"]["residuals"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    info = pyogrio.read_info(gpkg, layer=LAYER)
    with rasterio.open(record["outputs"]["displacement"]) as ds:
        assert info["crs"] == ds.crs.to_string() and info["features"] == len(rows)
    _, _, _, values = pyogrio.raw.read(gpkg, layer=LAYER)
    got = dict(zip(FIELDS, values, strict=True))
    np.testing.assert_allclose(got["error_m"], [float(r["error_m"]) for r in rows], atol=5e-5)
    with rasterio.open(record["outputs"]["confidence"]) as ds:
        conf = ds.read(1)
    r = np.floor(got["optical_row"]).astype(int)
    c = np.floor(got["optical_col"]).astype(int)
    np.testing.assert_array_equal(got["confidence"], conf[r, c].astype(np.float64))

    item = load_json(record["item"])
    asset = item["assets"]["residual_points"]
    assert asset["type"] == MEDIA_TYPE and asset["roles"] == ["data"]
    published = (Path(record["item"]).parent / asset["href"]).resolve()
    assert pyogrio.read_info(published, layer=LAYER)["features"] == len(rows)

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    tracked = {a.path for a in client.list_artifacts(record["mlflow_run_id"])}
    assert "residual_points" in tracked
