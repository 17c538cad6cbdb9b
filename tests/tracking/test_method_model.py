"""The registration method as an MLflow pyfunc model: registered, tagged, aliased, loaded back,
predicting."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import rasterio
from mlflow.tracking import MlflowClient

from core.errors import InputError
from models.scoring import read_tiepoints, score_shifts
from tracking.registry import register_method_model


def test_method_model_round_trip(uri, workdir, radar_pair, tmp_path, monkeypatch):
    import mlflow.pyfunc

    first = register_method_model(uri, "zero", "1.0.0", {"resolution_m": 25.0}, alias="champion")
    second = register_method_model(uri, "zero", "1.0.0", {"resolution_m": 100.0})
    client = MlflowClient(uri, registry_uri=uri)
    assert (first.name, str(first.version), str(second.version)) == ("coalign-zero", "1", "2")
    assert first.tags["coalign.method_version"] == "1.0.0" and first.tags["coalign.git_sha"]
    assert str(client.get_model_version_by_alias("coalign-zero", "champion").version) == "1"
    client.set_registered_model_alias("coalign-zero", "champion", second.version)  # promote

    run = client.get_run(second.run_id)
    assert (
        run.data.params["config.resolution_m"] == "100.0"
        and run.data.params["method_version"] == "1.0.0"
    )
    config = json.loads(
        open(client.download_artifacts(second.run_id, "config.json", str(tmp_path))).read()
    )
    assert config == {"method": "zero", "version": "1.0.0", "config": {"resolution_m": 100.0}}
    assert (
        str(workdir / "mlartifacts")
        in client.get_experiment(run.info.experiment_id).artifact_location
    )

    assert (
        "MLFLOW_TRACKING_URI" not in os.environ
    )  # registering left MLflow's process state as it was
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    (tmp_path / "model").mkdir()
    model = mlflow.pyfunc.load_model(
        "models:/coalign-zero@champion", dst_path=str(tmp_path / "model")
    )
    out = tmp_path / "predicted.tif"
    df = model.predict(
        pd.DataFrame(
            [
                {
                    "optical": str(radar_pair.optical),
                    "sar": str(radar_pair.sar),
                    "output": str(out),
                    "tiepoints": str(radar_pair.tiepoints),
                }
            ]
        )
    )
    assert (
        list(df["method"]) == ["zero"]
        and list(df["version"]) == ["1.0.0"]
        and list(df["output"]) == [str(out)]
    )
    with rasterio.open(out) as ds:
        assert (
            ds.count == 2
            and ds.descriptions == ("dx", "dy")
            and float(np.abs(ds.read()).max()) == 0.0
        )
    pair = radar_pair.open()
    tp = read_tiepoints(radar_pair.tiepoints)
    zero = score_shifts(
        np.zeros(len(tp)), np.zeros(len(tp)), tp, pair.optical.grid, pair.sar.grid
    ).summary()
    assert df.loc[0, "mean_m"] == pytest.approx(zero["mean_m"]) and zero["mean_m"] > 5
    assert (
        tmp_path / "model" / "code" / "models" / "registration.py"
    ).is_file()  # the code travels with the model


def test_register_method_model_checks_its_input(uri):
    with pytest.raises(InputError, match="unknown method"):
        register_method_model(uri, "no-such-method", "1.0.0", {})
    with pytest.raises(InputError, match="version 1.0.0 in this checkout"):
        register_method_model(uri, "zero", "9.9.9", {})
    with pytest.raises(InputError, match="unknown setting"):
        register_method_model(uri, "zero", "1.0.0", {"no_such_setting": 1})
    assert MlflowClient(uri, registry_uri=uri).search_registered_models() == []
