"""Descriptor weight files: atomic save, checked load with weights only, cached per file version."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from core.errors import InputError
from core.files import atomic_path
from models.learned.net import DescriptorNet

FORMAT = "coalign-descriptor/1"


def save_descriptor(net: DescriptorNet, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` to ``path`` (never a partial file): ``{"format", "conf", "state_dict"}``.

    Tensors are saved contiguous on the CPU, so the file loads anywhere with
    ``weights_only=True``. The folder is created when missing.

    Args:
        net: The network to save.
        path: The weights file to write.
    """
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    payload = {"format": FORMAT, "conf": dict(net.conf), "state_dict": state}
    with atomic_path(dst) as tmp:
        torch.save(payload, tmp)
    return dst


def load_descriptor(path: str | os.PathLike[str]) -> DescriptorNet:
    """The descriptor network saved in ``path`` (on the CPU, in eval mode).

    Loaded with ``weights_only=True``; nets are cached per (resolved path,
    modification time, size), so tile workers calling this per tile read each
    file once and see a rewritten file. Callers share the cached net: do not
    train it.

    Args:
        path: A weights file written by :func:`save_descriptor`.

    Raises:
        InputError: The file is missing, unreadable, not a coalign descriptor or
            its weights do not fit its settings.
    """
    p = Path(path).expanduser()
    try:
        st = p.resolve().stat()
    except OSError:
        raise InputError(
            f"descriptor weights {p}: no such file; give the path of a file written by "
            "`coalign train` (or a models:/ URI where the command accepts one)"
        ) from None
    if not p.is_file():
        raise InputError(f"descriptor weights {p}: not a file; give a weights file (.pt)")
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> DescriptorNet:
    """Load and check one file version (the key's ``mtime_ns`` and ``size`` only key the cache)."""
    payload = _read_payload(path)
    try:
        net = DescriptorNet(payload["conf"])
        net.load_state_dict(payload["state_dict"], strict=True)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"descriptor weights {path}: the weights do not fit their settings ({first}); "
            "retrain or use a file written by this coalign version"
        ) from None
    return net.eval()


def _read_payload(path: str) -> dict[str, Any]:
    """The checked dictionary of a weights file."""
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise InputError(
            f"descriptor weights {path}: not a readable torch weights file "
            f"({type(exc).__name__}); give a file written by `coalign train`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(
            f"descriptor weights {path}: not a coalign descriptor (format {found!r}, "
            f"expected {FORMAT!r}); give a file written by `coalign train`"
        )
    if not isinstance(payload.get("conf"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise InputError(
            f"descriptor weights {path}: the file lacks its settings or weights; "
            "give a file written by `coalign train`"
        )
    return payload
