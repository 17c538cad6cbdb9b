"""The register-pair flow reads the SAR geometry from the SAR scene's STAC Item and records it."""

from __future__ import annotations

import json
from pathlib import Path

from flows.commands.demo import SAR_ID
from flows.register_pair import register_pair
from stac.readers import discover


def test_the_stac_geometry_reaches_the_record_and_mlflow(sample, new_workdir):
    from mlflow.tracking import MlflowClient

    work = new_workdir("pair-geometry")
    scenes = discover(sample["catalogs"])
    optical = next(s for s in scenes if s.sensor == "optical")
    sar = next(s for s in scenes if s.id.endswith(SAR_ID))
    record = register_pair(
        optical.to_record(),
        sar.to_record(),
        method="zero",
        workdir=str(work),
        activation="geometry-quake",
    )
    # the demo's Umbra Item: view:incidence_angle 38.5, view:azimuth 97 (scene to satellite,
    # descending and right-looking), so the SAR looks west
    geometry = record["sar_geometry"]
    assert (geometry["incidence_deg"], geometry["look_azimuth_deg"]) == (38.5, 277.0)
    assert geometry["source"] == "stac" and geometry["ground_projected"] is True
    assert geometry["detail"].startswith(sar.item_href)
    assert not any(w.startswith("SAR acquisition geometry unknown") for w in record["warnings"])
    out = Path(record["outputs"]["displacement"]).parent
    assert json.loads((out / "record.json").read_text())["sar_geometry"] == geometry
    params = MlflowClient(f"sqlite:///{work / 'mlflow.db'}").get_run(record["mlflow_run_id"])
    params = params.data.params
    assert params["sar_geometry.incidence_deg"] == "38.5"
    assert params["sar_geometry.look_azimuth_deg"] == "277.0"
    assert params["sar_geometry.source"] == "stac"
