"""``zero``: no shift anywhere; the reference every method must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.displacement import DisplacementField
from models.methods.base import (
    Progress,
    RegistrationInput,
    RegistrationResult,
    config_dict,
    field_grid,
    no_progress,
    setting,
)


@dataclass(frozen=True)
class ZeroConfig:
    """Grid spacing of the (constant) field, metres."""

    resolution_m: float = setting(50.0, gt=0)


class ZeroMethod:
    """No shift anywhere. It measures nothing, so it takes any pair that overlaps, however small."""

    name: ClassVar[str] = "zero"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "Zero shift everywhere (confidence 0): the baseline the SN9 scores start from."
    )
    Config: ClassVar[type] = ZeroConfig

    def run(
        self, pair: RegistrationInput, conf: ZeroConfig, progress: Progress = no_progress
    ) -> RegistrationResult:
        grid = field_grid(pair, conf.resolution_m)
        return RegistrationResult(
            self.name, self.version, config_dict(conf), DisplacementField.constant(grid)
        )
