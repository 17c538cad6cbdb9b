"""The ``local`` method: priors, the levels coarse to fine, and the check against zero shift."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.errors import InputError
from core.grid import Grid
from models.displacement import DisplacementField
from models.methods.base import (
    Progress,
    RegistrationInput,
    RegistrationResult,
    check_extent,
    config_dict,
    field_grid,
    no_progress,
)
from models.methods.local.config import LocalConfig
from models.methods.local.context import LocalRun
from models.methods.local.descriptor import descriptor_record, descriptor_version
from models.methods.local.levels import level_jobs, repeat_saturated, run_level
from models.methods.local.pool import TilePool, worker_count
from models.methods.local.priors import Prior, candidate_priors, first_level
from models.methods.local.schedule import level_layout, level_schedule, min_overlap
from models.methods.local.structures import StructureMap, structure_map
from models.methods.local.tiles import tile_kernels
from models.methods.local.verify import nothing_measured, verify_field
from models.progress import OVERALL, Steps


def _levels(run: LocalRun, priors: list[Prior]) -> DisplacementField:
    """Every pass of the schedule from the priors on: the field after the last one.

    Leading passes whose overlap cannot hold one template plus its search are recorded as
    skipped; the first that fits decides between the priors (:func:`first_level`).
    """
    pair, conf = run.pair, run.conf
    levels: list[dict[str, Any]] = []
    native = pair.native_resolution()
    run.result.details["levels"] = levels
    schedule = level_schedule(conf, pair.finest_resolution() / native)
    first = next(
        (
            i
            for i, p in enumerate(schedule)
            if level_layout(pair, conf, native * p.factor, p.radius).fits
        ),
        0,
    )
    for p in schedule[:first]:
        info = level_jobs(pair, conf, priors[-1].field, native * p.factor, p.radius)[0]
        levels.append(info.as_dict())
        run.overall.step()
    schedule = schedule[first:]
    trial = first_level(run, priors, schedule)
    levels.append(trial.info.as_dict())
    run.overall.step()
    fld = repeat_saturated(run, trial.field, trial.info, 0, len(schedule))
    for level, p in enumerate(schedule[1:], start=1):
        fld, info = run_level(run, fld, native * p.factor, p.radius, level, len(schedule))
        levels.append(info.as_dict())
        run.overall.step()
        fld = repeat_saturated(run, fld, info, level, len(schedule))
    return fld


def _structures(
    pair: RegistrationInput, conf: LocalConfig, grid: Grid, result: RegistrationResult
) -> StructureMap | None:
    """The structure map of the pair when it can have one; the result's details say which
    (``structures``)."""
    found = structure_map(pair, grid) if conf.structures else "switched off (structures=off)"
    if isinstance(found, str):
        result.details["structures"] = f"not used: {found}"
        return None
    result.details["structures"] = found.record()
    return found


class LocalMethod:
    """Coarse-to-fine local alignment; the steps and settings are in docs/methods.md."""

    name: ClassVar[str] = "local"
    version: ClassVar[str] = "1.9.0"
    description: ClassVar[str] = (
        "Priors (terrain layover from a height model fitted to the first level's vectors, "
        "global LightGlue affine, coarse CFOG translation, zero) decided at the first "
        "level, then coarse-to-fine tiled template matching (CFOG, or a learned descriptor) "
        "through the current field with adaptive SAR preprocessing, rejection of vectors on "
        "elevated structures, their layover and shadow (with a height model), "
        "neighbour-consistency screening, Gaussian normalised-convolution sparse-to-dense "
        "(thin-plate spline optional), repeats of levels whose vectors hit the search border, "
        "and a final check against zero shift. For non-rigid misalignment (terrain, look "
        "geometry, buildings): the default."
    )
    Config: ClassVar[type] = LocalConfig

    def run(
        self, pair: RegistrationInput, conf: LocalConfig, progress: Progress = no_progress
    ) -> RegistrationResult:
        """Register the pair coarse to fine and verify the field against zero shift.

        Degenerate inputs: an image or an overlap narrower than the least the schedule needs
        (one template plus its search at the pass where that is smallest in metres,
        :func:`~models.methods.local.schedule.min_overlap`) is refused with an InputError
        before any work. A pair that is large enough but where no field is measured or
        verified (featureless ground, too few consistent templates) gives zero shift with
        confidence 0 and a warning in the result.

        Args:
            pair: The pair to register.
            conf: The method's settings.
            progress: Called as ``(stage, done, total)``.

        Raises:
            InputError: Settings that contradict each other, or a pair too small to register.
        """
        problem = conf.inconsistency()
        if problem:
            raise InputError(f"{self.name} settings: {problem}")
        descriptor = descriptor_record(conf)
        check_extent(pair, self.name, *min_overlap(pair, conf))
        native = pair.native_resolution()
        last_level = native * conf.levels[-1]
        resolution = conf.field_resolution_m or max(last_level * conf.spacing_px / 2, native)
        grid = field_grid(pair, resolution)
        result = RegistrationResult(
            self.name,
            descriptor_version(self.version, descriptor),
            config_dict(conf),
            DisplacementField.constant(grid),
        )
        result.details["descriptor"] = descriptor
        result.details["kernels"] = tile_kernels(pair.device)
        # the priors, each pass of the schedule (a repeat adds one), the verification
        passes = len(level_schedule(conf, pair.finest_resolution() / native))
        overall = Steps(progress, OVERALL, 1 + passes + int(conf.verify))
        priors = candidate_priors(pair, conf, grid, result, progress)
        with result.timed("structures"):
            structures = _structures(pair, conf, grid, result)
        overall.step()
        # the pool starts on first use and is kept for every level
        with TilePool(worker_count(conf)) as pool:
            run = LocalRun(pair, conf, result, progress, pool, overall, structures)
            result.field = _levels(run, priors)
            if conf.verify:
                result.field = verify_field(run)
        overall.finish()
        rejected = not result.details.get("verify", {}).get("passed", True)  # already warned
        if not rejected and not (np.any(result.field.dx) or np.any(result.field.dy)):
            result.warnings.append(nothing_measured(result))
        return result
