"""A coalign registration method as an MLflow pyfunc model ("models from code", MLflow 3).

:func:`tracking.registry.register_method_model` logs this file as the model's code, with the
``models`` and ``core`` packages bundled beside it (``code_paths``) and the method's name,
version and full config as the ``config`` JSON artifact. MLflow executes the file when the model
is loaded; ``set_model`` at the bottom names the model object. Nothing is pickled.

``predict`` takes a DataFrame with columns ``optical``, ``sar``, ``output`` (paths; optional
``confidence``, ``tiepoints``, ``device``) and returns one summary row per pair, after running
:func:`models.registration.run_pipeline`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


def as_setting(value: Any) -> str:
    """A config value as the string ``--set`` takes (tuples/lists comma-joined), parsed back by
    type."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


class CoalignMethodModel(PythonModel):
    """One registration method with a fixed config."""

    def __init__(self) -> None:
        self.method, self.version, self.config = "", "", {}

    def load_context(self, context) -> None:  # noqa: ANN001 - pyfunc signature
        spec = json.loads(Path(context.artifacts["config"]).read_text())
        self.method, self.version, self.config = (
            spec["method"],
            spec["version"],
            dict(spec["config"]),
        )

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:  # noqa: ANN001
        from core.errors import InputError

        missing = {"optical", "sar", "output"} - set(model_input.columns)
        if missing:
            raise InputError(
                f"model input lacks column(s) {sorted(missing)}; give optical, sar, output paths"
            )
        overrides = {k: as_setting(v) for k, v in self.config.items()}
        return pd.DataFrame(
            [self._predict_row(r, overrides) for r in model_input.to_dict("records")]
        )

    def _predict_row(self, r: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
        """One pair through :func:`models.registration.run_pipeline`: its summary row."""
        from models.registration import run_pipeline
        from models.scoring import read_tiepoints

        tiepoints = _text(r.get("tiepoints"))
        done = run_pipeline(
            r["optical"],
            r["sar"],
            r["output"],
            self.method,
            overrides,
            _text(r.get("device")) or "auto",
            confidence=_text(r.get("confidence")),
            tiepoints=read_tiepoints(tiepoints) if tiepoints else None,
        )
        result = done.result
        row = {
            "output": str(done.products.displacement),
            "method": result.method,
            "version": result.version,
            "device": done.pair.device,
            "matches": int(result.matches),
            "inliers": int(result.inliers),
            "runtime_s": float(result.runtime_s.get("register_total", float("nan"))),
            "warnings": "; ".join(result.warnings),
        }
        if done.score is not None:
            summary = done.score.summary()
            row.update({k: v for k, v in summary.items() if k in ("mean_m", "mean_px")})
        return row


def _text(value: Any) -> str | None:
    """A path cell, None when empty (pandas gives NaN for missing optional cells)."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    return str(value)


mlflow.models.set_model(CoalignMethodModel())
