"""The starting fields of ``local`` and the first level, which decides between them."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

from core.grid import Grid
from models.areamatch import cfog, ncc_surface, second_peak
from models.displacement import DisplacementField
from models.methods.base import Progress, RegistrationInput, RegistrationResult
from models.methods.global_affine import GlobalAffineConfig, coarse_resolution, fit_global_affine
from models.methods.local.config import LocalConfig
from models.methods.local.context import LocalRun
from models.methods.local.levels import (
    LevelInfo,
    Vectors,
    _screen,
    finish_level,
    level_jobs,
    level_steps,
    stage_name,
    structure_screen,
)
from models.methods.local.pool import run_tiles
from models.methods.local.schedule import Pass, resolution_with_templates
from models.methods.local.terrain import (
    fit_terrain,
    template_mean,
    terrain_field,
    terrain_shift,
    unavailable,
)
from models.methods.local.tiles import TileJob, TileResult
from models.methods.local.trial_tiles import trial_tiles
from models.methods.local.verify import paired_gain, template_correlations
from models.preprocess import prepare_optical, sar_to_db
from models.progress import Steps, ignore_steps
from models.raster import read_on_grid
from models.sar_adaptive import adaptive_sar

# a coarse translation whose correlation peak stands this far above the best other local maximum
# is distinct
DISTINCT_PEAK = 0.02


@dataclass(frozen=True)
class Prior:
    """A candidate starting field."""

    name: str
    field: DisplacementField


@dataclass(frozen=True)
class CoarseTranslation:
    """The whole overlap's CFOG correlation peak as a translation."""

    dx: float  # map metres
    dy: float
    distinctness: float  # how far the peak stands above the best other local maximum


@dataclass(frozen=True)
class Trial:
    """A prior after the first level: its evidence, the field it led to and the level's record."""

    evidence: float  # summed quality of the first level's consistent templates
    name: str
    field: DisplacementField
    info: LevelInfo
    # the consistent vectors' positions and whole displacement (map metres), when kept
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    start: DisplacementField | None = None  # the prior's field (None: the level is complete)
    tiles: tuple[TileResult, ...] = ()  # the tiles it was tried on, when not on every tile
    rest: tuple[TileJob, ...] = ()  # the jobs of the tiles it was not tried on


def coarse_translation(
    pair: RegistrationInput, result: RegistrationResult, steps: Steps | None = None
) -> CoarseTranslation | None:
    """Whole-overlap CFOG correlation at a coarse scale: a translation for when learned matching
    fails, with its peak's distinctness; None when the overlap is too small for the search.

    ``steps`` counts the optical and the SAR read (two steps)."""
    steps = steps or ignore_steps()
    res = coarse_resolution(pair, 256)
    grid = pair.grid_over(pair.overlap, res)
    optical = cfog(prepare_optical(read_on_grid(pair.optical, grid)))
    steps.step()
    sar, _ = adaptive_sar(sar_to_db(read_on_grid(pair.sar, grid)[0], "auto", pair.sar.dtype))
    sar_d = cfog(sar)
    steps.step()
    h, w = grid.shape
    radius = max(4, int(0.2 * min(h, w)))
    tpl = min(h, w) - 2 * radius - 2
    if tpl < 16:
        return None
    y0, x0 = (h - tpl) // 2, (w - tpl) // 2
    surface = ncc_surface(
        sar_d[:, y0 - radius : y0 + tpl + radius, x0 - radius : x0 + tpl + radius],
        optical[:, y0 : y0 + tpl, x0 : x0 + tpl],
    )
    _, peak, _, (pc, pr) = cv2.minMaxLoc(surface)
    distinct = float(peak - second_peak(surface, pr, pc))
    result.details["coarse_translation_peak"] = round(float(peak), 4)
    result.details["coarse_translation_distinctness"] = round(distinct, 4)
    sx, sy = pc - radius, pr - radius
    return CoarseTranslation(float(sx * res), float(-sy * res), distinct)


def candidate_priors(
    pair: RegistrationInput,
    conf: LocalConfig,
    grid: Grid,
    result: RegistrationResult,
    progress: Progress,
) -> list[Prior]:
    """Starting fields on ``grid`` in priority order: global affine, coarse translation, zero.

    A coarse translation whose peak is not distinct comes after zero.
    """
    priors: list[Prior] = []
    if conf.global_prior:
        ga = GlobalAffineConfig(
            features=conf.features,
            max_side=conf.global_max_side,
            inlier_threshold_m=conf.inlier_threshold_m,
        )
        fit, _, _ = fit_global_affine(pair, ga, result, progress)
        if fit is not None:
            result.inliers = fit.n_inliers
            affine = DisplacementField.from_function(grid, fit.displacement, 0.0)
            priors.append(Prior("global-affine", affine))
    with result.timed("coarse_translation"):
        steps = Steps(progress, "coarse translation", 3)
        t = coarse_translation(pair, result, steps)
        steps.finish()
    zero = Prior("zero", DisplacementField.constant(grid))
    if t is None:
        return priors + [zero]
    translation = DisplacementField.constant(grid, t.dx, t.dy, 0.0)
    if t.distinctness >= DISTINCT_PEAK:
        return priors + [Prior("coarse-translation", translation), zero]
    # an ambiguous peak (another almost as high elsewhere) is tried after zero: it is kept only
    # when the first level's evidence or the images' correlation through it clearly favours it
    return priors + [zero, Prior("coarse-translation-ambiguous", translation)]


def _vectors(
    run: LocalRun, prior: DisplacementField, tiles: list[TileResult], res: float, side_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The consistent vectors of a first level matched through ``prior``, off structures:
    positions and whole displacement ``r(X) + prior(X + r(X))``, map metres."""
    v = Vectors(*(np.concatenate([getattr(t, f.name) for t in tiles]) for f in fields(Vectors)))
    good = v.select(_screen(run.conf, v, res, structure_screen(run, v, side_m)[0]))
    px, py, _ = prior.sample(good.x + good.dx, good.y + good.dy)
    return good.x, good.y, good.dx + px, good.dy + py


def _trials(
    run: LocalRun,
    priors: list[Prior],
    first: Pass,
    n_levels: int,
    keep_vectors: bool = False,
    what: str = "",
) -> list[Trial]:
    """The first level matched from every prior, all their tiles in one batch (at most
    ``prior_tiles`` tiles each, :func:`~models.methods.local.trial_tiles.trial_tiles`).

    Args:
        run: The run.
        priors: The starting fields.
        first: The first pass.
        n_levels: Passes in the schedule (for progress).
        keep_vectors: Keep each trial's consistent vectors.
        what: The priors in progress stage names (default: how many).
    """
    what = what or f"{len(priors)} priors"
    res = run.pair.native_resolution() * first.factor
    staged = [level_jobs(run.pair, run.conf, p.field, res, first.radius) for p in priors]
    some = next((jobs for _, jobs in staged if jobs), [])
    tried = trial_tiles(some, run.pair.overlap, run.conf.prior_tiles)
    all_jobs = [jobs[i] for _, jobs in staged if jobs for i in tried]
    tried_set = set(tried)
    stage = stage_name(0, n_levels, f"tiles ({what})")
    with run.result.timed("level0_match"):
        tiles = run_tiles(all_jobs, run.conf, run.progress, stage, run.pool) if all_jobs else []
    measured = [p.field for p, (_, jobs) in zip(priors, staged, strict=True) if jobs is not None]
    dense = stage_name(0, n_levels, f"dense ({what})")
    steps = Steps(run.progress, dense, sum(level_steps(run.conf, f) for f in measured))
    trials, at = [], 0
    partial = len(tried) < len(some)
    for prior, (info, jobs) in zip(priors, staged, strict=True):
        fld, vectors, part = prior.field, None, []
        if jobs is not None:
            part = tiles[at : at + len(tried)]
            fld, info = finish_level(run, prior.field, res, 0, info, part, steps)
            if keep_vectors and part:
                vectors = _vectors(run, prior.field, part, res, info.template_px * res)
            at += len(tried)
        trial = Trial(info.evidence or 0.0, prior.name, fld, info, vectors)
        if partial and jobs is not None:
            rest = tuple(job for i, job in enumerate(jobs) if i not in tried_set)
            trial = replace(trial, start=prior.field, tiles=tuple(part), rest=rest)
        trials.append(trial)
    return trials


def complete_trial(run: LocalRun, trial: Trial, n_levels: int) -> Trial:
    """The kept trial's first level over every tile: the tiles the priors were not tried on
    (:func:`~models.methods.local.trial_tiles.trial_tiles`) are matched through its prior and
    the level is finished on all of them; a trial made on every tile is returned as it is.

    Args:
        run: The run.
        trial: The kept trial.
        n_levels: Passes in the schedule (for progress).
    """
    if trial.start is None:
        return trial
    res = trial.info.resolution_m
    stage = stage_name(0, n_levels, "tiles (kept prior)")
    with run.result.timed("level0_match"):
        tiles = run_tiles(list(trial.rest), run.conf, run.progress, stage, run.pool)
    dense = stage_name(0, n_levels, "dense (kept prior)")
    steps = Steps(run.progress, dense, level_steps(run.conf, trial.start))
    # a fresh record: the tried tiles' finish filled the trial's
    info = LevelInfo(res, trial.info.radius_px, trial.info.template_px, trial.info.spacing_px)
    fld, info = finish_level(run, trial.start, res, 0, info, [*trial.tiles, *tiles], steps)
    run.result.details["prior_tiles"] = {
        "tried": len(trial.tiles),
        "tiles": len(trial.tiles) + len(trial.rest),
    }
    return Trial(info.evidence or 0.0, trial.name, fld, info)


def terrain_trial(
    run: LocalRun, terrain: DisplacementField, trials: list[Trial], first: Pass, n_levels: int
) -> tuple[Trial | None, str | dict[str, object]]:
    """The first level from the terrain prior, and what the result records about it.

    The model ``A·[x, y, 1] + gain·T(x)`` is fitted to the consistent vectors of the trial
    with the most evidence, ``T`` averaged over the level's templates as the vectors measure
    it; the first level is then matched from the model with ``T`` itself, like any other prior.

    Args:
        run: The run.
        terrain: The terrain shift ``T`` on the field grid.
        trials: The other priors' first-level trials, with their vectors.
        first: The first pass.
        n_levels: Passes in the schedule (for progress).
    """
    best = max(trials, key=lambda t: t.evidence)
    x, y, dx, dy = best.vectors if best.vectors is not None else (np.empty(0),) * 4
    if len(x) < run.conf.verify_min_templates:
        return None, (
            f"not used: {len(x)} consistent first-level vectors to fit, "
            f"{run.conf.verify_min_templates} needed"
        )
    tx, ty, _ = template_mean(terrain, best.info.template_px * best.info.resolution_m).sample(x, y)
    fit = fit_terrain(x, y, dx, dy, tx, ty)
    prior = Prior("terrain", terrain_field(fit, terrain))
    trial = _trials(run, [prior], first, n_levels, what="terrain prior")[0]
    return trial, {**fit.record(), "fitted_to": best.name}


def _terrain_shift(run: LocalRun, grid: Grid) -> tuple[DisplacementField, str] | str:
    """The terrain shift on ``grid`` and its heights' source, or why the run has none."""
    if not run.conf.terrain_prior:
        return "switched off (terrain_prior=off)"
    reason = unavailable(run.pair)
    if reason:
        return reason
    with run.result.timed("terrain_shift"):
        return terrain_shift(run.pair, grid)


def _with_terrain(run: LocalRun, priors: list[Prior], schedule: list[Pass]) -> list[Trial]:
    """The first-level trials of ``priors``, led by the terrain prior's when the pair has one;
    the result's details say what the terrain prior did (``terrain_prior``)."""
    first, n = schedule[0], len(schedule)
    shift = _terrain_shift(run, priors[0].field.grid)
    trials = _trials(run, priors, first, n, keep_vectors=not isinstance(shift, str))
    if isinstance(shift, str):
        run.result.details["terrain_prior"] = f"not used: {shift}"
        return trials
    trial, note = terrain_trial(run, shift[0], trials, first, n)
    details = note if isinstance(note, str) else {**note, "heights": shift[1]}
    run.result.details["terrain_prior"] = details
    return ([trial] if trial is not None else []) + trials


def first_level(run: LocalRun, priors: list[Prior], schedule: list[Pass]) -> Trial:
    """The first pass from every prior, and the trial kept.

    With a height model and the SAR geometry the terrain prior (:func:`terrain_trial`) leads
    the order. The first prior in order whose evidence reaches ``prior_margin`` of the best is
    kept, unless too few templates fit the first level to decide (small overlaps) or several
    priors come close: then the images' correlation through each first-level field decides (see
    :func:`prior_by_correlation`), judged at the next pass (the first level's own templates
    fitted these fields) or, where too few templates fit there, at the pass with the most.
    On a level of more than ``prior_tiles`` tiles the priors are tried on that many, and the
    kept one's level is then completed on the others (:func:`complete_trial`).

    Args:
        run: The run.
        priors: The candidate starting fields, in priority order.
        schedule: The passes from the first that fits the overlap on.
    """
    conf = run.conf
    trials = _with_terrain(run, priors, schedule)
    best = max(t.evidence for t in trials)
    close = [t for t in trials if t.evidence >= conf.prior_margin * best]
    chosen = close[0]
    few = max(t.info.accepted or 0 for t in trials) < conf.verify_min_templates
    if few or len(close) > 1:
        judge = [
            run.pair.native_resolution() * schedule[min(1, len(schedule) - 1)].factor,
            resolution_with_templates(run.pair, conf, 16 * conf.verify_min_templates),
        ]
        chosen = prior_by_correlation(run, trials, chosen.name, judge)
    run.result.details["prior"] = chosen.name
    run.result.details["prior_evidence"] = {t.name: round(t.evidence, 2) for t in trials}
    return complete_trial(run, chosen, len(schedule))


def prior_by_correlation(
    run: LocalRun, trials: list[Trial], default: str, resolutions: list[float]
) -> Trial:
    """The ``default`` trial, unless the images correlate significantly better through another's
    field.

    Mean template CFOG correlation with no search at the first working pixel of
    ``resolutions`` where at least ``verify_min_templates`` templates are kept by
    every field (else at the last one, given four); the best trial
    replaces the default when it is better template by template by
    ``verify_z`` standard errors and by ``verify_min_gain`` on average, as in
    the final verification (so noise between fields that agree does not
    overturn the priority order; a wrong prior loses by far more). Templates on
    structures count here: they weigh on every trial alike.

    Args:
        run: The run.
        trials: The first-level trials.
        default: Name of the trial the evidence chose.
        resolutions: Working pixels to judge at, in order of preference.
    """
    conf = run.conf
    chosen = next(i for i, t in enumerate(trials) if t.name == default)
    for res in dict.fromkeys(resolutions):  # each distinct pass once
        with run.result.timed("prior_correlation"):
            scores = template_correlations(
                run.pair,
                conf,
                [t.field for t in trials],
                res,
                run.progress,
                run.pool,
                max_tiles=4,
                stage="prior check",
            )
        common = sorted(set.intersection(*(set(s) for s in scores))) if scores else []
        if len(common) >= conf.verify_min_templates:
            break
    if len(common) < 4:
        return trials[chosen]
    means = [float(np.mean([s[k] for k in common])) for s in scores]
    best = int(np.argmax(means))
    gain, z = paired_gain(scores[best], scores[chosen], common)
    run.result.details["prior_correlation"] = {
        "resolution_m": round(res, 3),
        "templates": len(common),
        "z": round(z, 2),
        **{t.name: round(m, 4) for t, m in zip(trials, means, strict=False)},
    }
    return trials[best] if z >= conf.verify_z and gain >= conf.verify_min_gain else trials[chosen]
