"""``--set model=URI`` of the commands: a learned descriptor's file or ``models:/`` URI resolved to
a local weights file before the method runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flows.workdir import Workdir

MODEL_SETTING = "model"


def resolve_model_option(
    settings: Mapping[str, str] | None,
    mlflow_uri: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Method settings with ``model`` (a weights file or ``models:/NAME@ALIAS``) resolved: the
    file's absolute path, and ``model_uri`` the registered version it names; unchanged without
    a ``model`` setting.

    A registered model is read from ``mlflow_uri`` (default: the working directory's store,
    ``tracking.store.tracking_uri``) and downloaded once into ``<workdir>/cache/descriptors``.

    Args:
        settings: One method's settings as ``--set`` gives them.
        mlflow_uri: The MLflow tracking URI holding the model registry.
        workdir: The working directory (default ``$COALIGN_WORKDIR`` or ``./coalign-work``).

    Raises:
        InputError: A missing file, an unknown model, alias or version.
    """
    if not settings or not str(settings.get(MODEL_SETTING, "")).strip():
        return dict(settings or {})
    from tracking.descriptor import resolve_model_settings
    from tracking.store import tracking_uri

    work = Workdir.of(workdir)
    model = str(settings[MODEL_SETTING]).strip()
    uri = mlflow_uri or (tracking_uri(work.root) if model.startswith("models:/") else "")
    return resolve_model_settings(settings, uri, Path(work.cache))


def resolve_model_triples(
    settings: tuple[tuple[str, str, str], ...],
    mlflow_uri: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> tuple[tuple[str, str, str], ...]:
    """(method, key, value) settings with each method's ``model`` resolved
    (:func:`resolve_model_option`).

    Args:
        settings: ``--set [METHOD:]KEY=VALUE`` options as triples.
        mlflow_uri: The MLflow tracking URI holding the model registry.
        workdir: The working directory (store and download cache).
    """
    per_method: dict[str, dict[str, str]] = {}
    for method, key, value in settings:
        per_method.setdefault(method, {})[key] = value
    return tuple(
        (method, key, value)
        for method, kv in per_method.items()
        for key, value in resolve_model_option(kv, mlflow_uri, workdir).items()
    )


def pin_model_options(
    settings: Mapping[str, Mapping[str, str]], workdir: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, str]]:
    """Per-method settings whose ``model`` is checked now and pinned: a registry URI becomes the
    version it names now (``models:/NAME/VERSION``, so every pair of a run uses the same one),
    a file its absolute path. The pairs resolve the pinned value again where they run.

    Args:
        settings: Settings by method (``parse_set_options``).
        workdir: The working directory (its MLflow store, unless ``$COALIGN_MLFLOW_URI``).

    Raises:
        InputError: A missing file, an unknown model, alias or version.
    """
    out = {m: dict(kv) for m, kv in settings.items()}
    for kv in out.values():
        model = str(kv.get(MODEL_SETTING, "")).strip()
        if model:
            from tracking.descriptor import resolve_model
            from tracking.store import tracking_uri

            work = Workdir.of(workdir)
            uri = tracking_uri(work.root) if model.startswith("models:/") else ""
            resolved = resolve_model(model, uri, work.cache)
            kv[MODEL_SETTING] = resolved.pinned or str(resolved.path)
    return out
