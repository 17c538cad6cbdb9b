"""The working directory: every output of a run lives under one folder.

``<workdir>/catalog/catalog.json`` (published static STAC catalog), ``<workdir>/mlflow.db`` (+
``mlartifacts/``, the MLflow store), ``<workdir>/cache`` (fetched assets),
``<workdir>/pairs/<pair>/<method>``
(products of one registration), ``<workdir>/prefect-results`` (task results: the rerun cache).
Chosen by ``--workdir`` / the ``workdir`` flow parameter, else ``COALIGN_WORKDIR``, else
``./coalign-work``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT = "coalign-work"


def default_workdir() -> str:
    return os.environ.get("COALIGN_WORKDIR") or DEFAULT


@dataclass(frozen=True)
class Workdir:
    root: Path

    @classmethod
    def of(cls, value: str | os.PathLike[str] | None) -> Workdir:
        return cls(Path(value or default_workdir()).expanduser().resolve())

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def pair(self, pair_id: str, method: str) -> Path:
        return self.root / "pairs" / pair_id / method
