"""The ``train`` flow: gather training pairs → train the learned descriptor → log the run in MLflow
and register the weights as a new version of ``coalign-descriptor``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from core.errors import InputError
from flows.workdir import Workdir
from tasks.training import gather_pairs, log_and_register, train
from tracking.descriptor import DESCRIPTOR_MODEL
from tracking.store import run_url, tracking_uri

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "pairs"
DEFAULT_SN9 = REPO.parent / "shared" / "data" / "sn9"


@flow(name="train", log_prints=True)
def train_flow(
    sources: list[str],
    steps: int | None = None,
    seed: int = 0,
    workdir: str | None = None,
    mlflow_uri: str | None = None,
    alias: str | None = "champion",
    output: str | None = None,
    pseudo_labels: str | None = None,
    min_confidence: float = 0.5,
    data: str | None = None,
    sn9: str | None = None,
    name: str = DESCRIPTOR_MODEL,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """Train the learned descriptor of ``local`` and register it in MLflow.

    Args:
        sources: Source kinds: benchmark kinds (cfog, vsff, srif, bigearthnet) and ``synth``.
        steps: Optimiser steps (none: ``TrainConfig``'s default).
        seed: Seeds the split, the weights and the patches.
        workdir: Working directory (default $COALIGN_WORKDIR or ./coalign-work).
        mlflow_uri: MLflow tracking URI and registry (default sqlite:///<workdir>/mlflow.db).
        alias: Alias moved to the new version (none: no alias).
        output: Also write the weights here (default <workdir>/descriptors/<name>-<version>.pt).
        pseudo_labels: A working directory whose verified registrations are added as pairs.
        min_confidence: Least confidence of a pseudo-label pixel.
        data: The benchmark pairs folder (default ../shared/data/pairs).
        sn9: The SN9 folder; its training sets with images are added (default
            ../shared/data/sn9).
        name: The registered model.
        progress_bar: Show the training steps as a bar on standard error (a terminal).
    """
    from models.learned import TrainConfig, save_descriptor

    work = Workdir.of(workdir)
    uri = mlflow_uri or tracking_uri(work.root)
    pairs = gather_pairs(
        sources,
        str(data or DEFAULT_DATA),
        str(work.root / "bench-cache"),
        seed=seed,
        pseudo_labels=pseudo_labels,
        min_confidence=min_confidence,
        sn9=str(sn9 or DEFAULT_SN9),
    )
    if len(pairs) < 2:
        raise InputError(
            f"{len(pairs)} training pair(s) from {', '.join(sources) or 'no sources'}; training "
            "needs at least 2 (one held out): add --sources or --pseudo-labels"
        )
    conf = TrainConfig(seed=seed, **({"steps": steps} if steps else {}))
    result = train(pairs, conf, _bar() if progress_bar else None)
    run_id, version = log_and_register(uri, result, conf, name, alias)
    weights = Path(output) if output else work.root / "descriptors" / f"{name}-{version}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_descriptor(result.net, weights)
    record = _record(result, uri, run_id, name, version, alias, weights)
    create_markdown_artifact(markdown=_markdown(record), description=f"{name} version {version}")
    return record


def _bar() -> Any:
    """A command-line bar for the training steps."""
    from flows.progress import CliProgress

    return CliProgress()


def _record(
    result: Any,
    uri: str,
    run_id: str,
    name: str,
    version: int,
    alias: str | None,
    weights: Path,
) -> dict[str, Any]:
    """What the flow returns: the model URIs, weights file, MLflow run, pairs, final metrics."""
    final = result.history[-1] if result.history else {}
    return {
        "model": name,
        "version": version,
        "uri": f"models:/{name}/{version}",
        "alias_uri": f"models:/{name}@{alias}" if alias else None,
        "weights": str(weights),
        "mlflow_uri": uri,
        "mlflow_run_id": run_id,
        "mlflow_run_url": run_url(uri, run_id),
        "train_pairs": len(result.split["train"]),
        "val_pairs": len(result.split["val"]),
        "sources": sorted(result.manifest.get("sources", {})),
        "final": {k: round(float(v), 4) for k, v in final.items()},
    }


def _markdown(record: dict[str, Any]) -> str:
    """The flow's summary artifact."""
    final = ", ".join(f"{k} {v}" for k, v in record["final"].items() if k != "step")
    alias = f" (`{record['alias_uri']}`)" if record["alias_uri"] else ""
    return (
        f"## {record['model']} version {record['version']}\n\n"
        f"`{record['uri']}`{alias}, weights `{record['weights']}`.\n\n"
        f"{record['train_pairs']} training / {record['val_pairs']} validation pairs from "
        f"{', '.join(record['sources'])}. Final: {final}.\n\n"
        f"MLflow: [training run]({record['mlflow_run_url']})\n"
    )
