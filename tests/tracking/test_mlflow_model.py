"""The registration method as an MLflow pyfunc model: registered, aliased, loaded back, predicting."""

from __future__ import annotations

import pandas as pd
import rasterio

from tasks.tracking import log_pair_run, register_method_model, start_activation_run, tracking_uri


def test_method_model_round_trip(radar_pair, tmp_path):
    uri = tracking_uri(tmp_path)
    mv = register_method_model(uri, "zero", "1.0.0", {"resolution_m": 25.0}, alias="champion")
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    assert client.get_model_version_by_alias("coalign-zero", "champion").version == mv.version
    assert mv.tags["coalign.method_version"] == "1.0.0"
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/coalign-zero@champion")
    out = tmp_path / "pred.tif"
    df = model.predict(pd.DataFrame([{"optical": str(radar_pair.optical), "sar": str(radar_pair.sar), "output": str(out)}]))
    assert df.loc[0, "method"] == "zero"
    with rasterio.open(out) as ds:
        assert ds.count == 2 and float(abs(ds.read()).max()) == 0.0


def test_child_run_from_another_process(tmp_path):
    import multiprocessing as mp

    uri = tracking_uri(tmp_path)
    parent = start_activation_run(uri=uri, experiment="ev", activation="act-1", params={"methods": ["zero"]}, tags={})
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply(_child, (uri, parent, str(tmp_path)))
    from mlflow.tracking import MlflowClient

    run = MlflowClient(uri).get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics["mean_m"] == 1.25 and run.data.params["config.levels"] == "[4, 2]"


def _child(uri: str, parent: str, tmp: str) -> str:
    from pathlib import Path

    csv = Path(tmp) / "residuals.csv"
    csv.write_text("a\n1\n")
    return log_pair_run(uri=uri, parent_run_id=parent, run_name="p zero", method="zero", method_version="1.0.0",
                        config={"levels": [4, 2]}, metrics={"mean_m": 1.25}, tags={"coalign.pair": "p"}, artifacts={"residuals": csv})
