"""The state one run of ``local`` hands from step to step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from models.methods.base import Progress, RegistrationInput, RegistrationResult, no_progress
from models.methods.local.config import LocalConfig
from models.methods.local.pool import TilePool
from models.methods.local.structures import StructureMap
from models.progress import Steps, ignore_steps


@dataclass(frozen=True)
class LocalRun:
    """One run: the pair, its settings, the result being filled in, progress, the tile pool and
    the count of passes done (the ``overall`` stage) and where structures lie."""

    pair: RegistrationInput
    conf: LocalConfig
    result: RegistrationResult
    progress: Progress = no_progress
    pool: TilePool | None = None  # None: each batch of tiles starts its own pool
    overall: Steps = field(default_factory=ignore_steps)
    structures: StructureMap | None = None  # None: no height model, geometry, or switched off


def filled(record: Any) -> dict[str, Any]:
    """A dataclass record's fields that are not None, by name, in declaration order."""
    values = ((f.name, getattr(record, f.name)) for f in dataclasses.fields(record))
    return {name: value for name, value in values if value is not None}
