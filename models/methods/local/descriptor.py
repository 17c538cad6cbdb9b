"""Which dense descriptor a run of ``local`` matches on, and how its result records it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from core.errors import InputError
from models.methods.local.config import LocalConfig

MODEL_URI_PREFIX = "models:/"


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes.

    Args:
        path: The file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def descriptor_record(conf: LocalConfig) -> dict[str, Any]:
    """The descriptor of a run: ``{"name": "cfog"}``, or for ``learned`` the weights file, its
    sha256 and the model URI it was resolved from; the weights are loaded once here so a bad
    file is refused before any tile runs.

    Args:
        conf: The method's settings (``descriptor``, ``model``, ``model_uri``).

    Raises:
        InputError: ``model`` is a registry URI (commands resolve those to a file first), is
            missing, or is not a coalign descriptor.
    """
    if conf.descriptor != "learned":
        return {"name": "cfog"}
    if conf.model.startswith(MODEL_URI_PREFIX):
        raise InputError(
            f"local setting model={conf.model}: a model URI is resolved to a weights file by "
            "coalign register/activate/bench; through the Python API give the file "
            "(tracking.descriptor.resolve_descriptor downloads it)"
        )
    path = Path(conf.model).expanduser()
    if not path.is_file():
        raise InputError(
            f"local setting model={conf.model}: no such weights file; give a file that "
            "coalign train wrote (-o), or a models:/ URI"
        )
    from models.learned import load_descriptor

    load_descriptor(str(path))
    record = {"name": "learned", "model": str(path), "sha256": file_sha256(path)}
    if conf.model_uri:
        record["model_uri"] = conf.model_uri
    return record


def descriptor_version(version: str, record: dict[str, Any]) -> str:
    """The method version a result carries: ``version`` for CFOG; with a learned descriptor
    ``version+<name>/<n>`` of the registered model (``1.6.0+coalign-descriptor/3``), else
    ``version+learned-<first 12 hex of the weights' sha256>``.

    Args:
        version: The method's version.
        record: :func:`descriptor_record` of the run.
    """
    if record["name"] != "learned":
        return version
    uri = record.get("model_uri", "")
    if uri.startswith(MODEL_URI_PREFIX):
        return f"{version}+{uri[len(MODEL_URI_PREFIX) :]}"
    return f"{version}+learned-{record['sha256'][:12]}"
