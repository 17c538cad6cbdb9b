"""The working directory: every output of a run lives under one folder.

``<workdir>/catalog/catalog.json`` (published static STAC catalog), ``<workdir>/mlflow.db`` (+
``mlartifacts/``, the MLflow store), ``<workdir>/cache`` (fetched assets),
``<workdir>/pairs/<pair>/<method>/<key>`` (products of one registration; ``key`` is
:func:`product_key` of the activation, method and method settings, so runs of other activations or
settings never share a folder), ``<workdir>/prefect-results`` (task results: the rerun cache).
Chosen by ``--workdir`` / the ``workdir`` flow parameter, else ``COALIGN_WORKDIR``, else
``./coalign-work``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DEFAULT = "coalign-work"
CATALOG_URL_DEFAULT = "http://127.0.0.1:8765"  # where `coalign open` serves <workdir>/catalog


def catalog_base_url() -> str:
    """The http address under which ``<workdir>/catalog`` is served.

    ``COALIGN_CATALOG_URL`` (a web server in front of a shared working directory), else
    ``http://127.0.0.1:8765``, where ``coalign open`` serves it.
    """
    return (os.environ.get("COALIGN_CATALOG_URL") or CATALOG_URL_DEFAULT).rstrip("/")


def default_workdir() -> str:
    return os.environ.get("COALIGN_WORKDIR") or DEFAULT


def product_key(activation: str, method: str, settings: Mapping[str, object] | None) -> str:
    """A short stable name for the products of one activation × method × method settings.

    The same activation, method and settings always give the same key (a rerun reuses its own
    folder); any other activation or setting gives another. Settings are compared as stripped
    strings, in any order.

    Args:
        activation: The activation (event) the products belong to.
        method: The registration method.
        settings: The method setting overrides; none = the method's defaults.
    """
    doc = {
        "activation": activation,
        "method": method,
        "settings": {str(k).strip(): str(v).strip() for k, v in (settings or {}).items()},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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

    def pair(self, pair_id: str, method: str, key: str) -> Path:
        """The products folder of one pair × method run (``key``: :func:`product_key`)."""
        return self.root / "pairs" / pair_id / method / key

    def catalog_url(self, path: str | os.PathLike[str]) -> str | None:
        """The http URL of a file of the published catalog; None for a file outside it.

        Args:
            path: A file under ``<workdir>/catalog``.
        """
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_relative_to(self.catalog):
            return None
        relative = resolved.relative_to(self.catalog).as_posix()
        return f"{catalog_base_url()}/{quote(relative)}"
