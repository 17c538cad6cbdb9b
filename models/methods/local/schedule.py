"""The passes of ``local``: working pixel and search radius of each, and what fits the overlap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.grid import Grid, north_up_grid
from models.methods.base import RegistrationInput
from models.methods.local.config import LocalConfig


@dataclass(frozen=True)
class Pass:
    """One pass of the schedule."""

    factor: float  # working pixel over the native pixel
    radius: int  # search radius, working pixels


@dataclass(frozen=True)
class LevelLayout:
    """A level's grid over the overlap and its templates."""

    grid: Grid
    template: int  # template side, working pixels
    spacing: int  # template grid step, working pixels
    fits: bool  # whether one template plus its search fits across the overlap


def level_templates(
    side: int, template_px: int, spacing_px: int, min_template: int = 24
) -> tuple[int, int]:
    """Template side and grid step for a level whose overlap is ``side`` pixels across.

    The configured template when two fit across; on smaller overlaps (whose templates
    would hang over the no-data border) a third of the side, down to ``min_template``,
    in multiples of 8 so templates stay on a block lattice.
    """
    if side >= 2 * template_px:
        return template_px, spacing_px
    template = max(min_template, min(template_px, side // 3 // 8 * 8))
    return template, max(8, spacing_px * template // template_px // 8 * 8)


def level_schedule(conf: LocalConfig, finest_factor: float) -> list[Pass]:
    """Every pass, coarse to fine, the optical level and refine passes included.

    Args:
        conf: The settings.
        finest_factor: The finer image's pixel over the native pixel.
    """
    schedule = [Pass(f, r) for f, r in zip(conf.levels, conf.radius_px, strict=False)]
    refine = conf.refine_passes
    if conf.optical_level and finest_factor < 0.9 * conf.levels[-1]:
        # it re-matches after warping, at a finer pixel: it stands in for the first refine pass
        schedule.append(Pass(finest_factor, max(2, conf.radius_px[-1] - 1)))
        refine = max(0, refine - 1)
    last = schedule[-1]
    return schedule + [Pass(last.factor, max(2, last.radius - 1))] * refine


def level_layout(
    pair: RegistrationInput, conf: LocalConfig, res: float, radius: int
) -> LevelLayout:
    """A level's grid over the overlap at working pixel ``res``, its templates, whether they fit."""
    level_grid = north_up_grid(pair.crs, pair.overlap.bounds, res)
    template, spacing = level_templates(min(level_grid.shape), conf.template_px, conf.spacing_px)
    return LevelLayout(
        level_grid, template, spacing, min(level_grid.shape) >= template + 2 * radius
    )


def min_level_side(conf: LocalConfig, radius: int) -> int:
    """Fewest working pixels across the overlap for a level with search ``radius`` to fit one
    template (shrunk on small overlaps as :func:`level_templates` does) plus its search."""
    side = 1
    while side < level_templates(side, conf.template_px, conf.spacing_px)[0] + 2 * radius:
        side += 1
    return side


def min_overlap(pair: RegistrationInput, conf: LocalConfig) -> tuple[float, str]:
    """The narrowest overlap (metres) on which some pass of the schedule fits, and that pass in
    words (its template and search in working pixels)."""
    native = pair.native_resolution()
    needs = []
    for p in level_schedule(conf, pair.finest_resolution() / native):
        side = min_level_side(conf, p.radius)
        template = level_templates(side, conf.template_px, conf.spacing_px)[0]
        needs.append((side * native * p.factor, template, p.radius, native * p.factor))
    metres, template, radius, res = min(needs)
    return metres, f"one {template}-pixel template plus its +-{radius}-pixel search at {res:.2f} m"


def template_count(pair: RegistrationInput, conf: LocalConfig, res: float) -> int:
    """Templates a level at ``res`` would have over the overlap (before screening)."""
    layout = level_layout(pair, conf, res, 0)
    if not layout.fits:
        return 0
    return (layout.grid.width // layout.spacing) * (layout.grid.height // layout.spacing)


def pass_resolutions(pair: RegistrationInput, conf: LocalConfig) -> list[float]:
    """The distinct working pixels of the schedule's passes (metres), coarse to fine."""
    native = pair.native_resolution()
    schedule = level_schedule(conf, pair.finest_resolution() / native)
    return [native * f for f in sorted({p.factor for p in schedule}, reverse=True)]


def resolution_with_templates(pair: RegistrationInput, conf: LocalConfig, minimum: int) -> float:
    """Working pixel of the coarsest pass with at least ``minimum`` templates over the overlap.

    Cheap, and gross failures show at any scale. On small overlaps: the pass with the most
    templates (the optical level included), so a small chip is still judged on as many as it has.
    """
    resolutions = pass_resolutions(pair, conf)
    counts = [template_count(pair, conf, res) for res in resolutions]
    plenty = next((res for res, n in zip(resolutions, counts, strict=False) if n >= minimum), None)
    return plenty if plenty is not None else resolutions[int(np.argmax(counts))]
