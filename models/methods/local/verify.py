"""Checks of a field by template correlation: through it versus with no shift, per template."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.displacement import DisplacementField
from models.methods.base import Progress, RegistrationInput, RegistrationResult, no_progress
from models.methods.local.budgets import verify_tiles
from models.methods.local.config import LocalConfig
from models.methods.local.context import LocalRun, filled
from models.methods.local.levels import level_jobs
from models.methods.local.pool import TilePool, run_tiles
from models.methods.local.schedule import (
    level_layout,
    pass_resolutions,
    resolution_with_templates,
)
from models.methods.local.tiles import TileJob, TileResult

# template centre in decimetres, so two passes over one grid pair up
TemplateKey = tuple[int, int]
Scores = dict[TemplateKey, float]


@dataclass(frozen=True)
class VerifyCheck:
    """The final check of a field against zero shift (the result's ``details["verify"]``)."""

    resolution_m: float  # working pixel it was judged at
    templates: int  # templates in common
    mean_gain: float | None  # mean correlation gain over zero shift (two templates or more)
    z: float | None  # the gain in standard errors
    mean_ncc: float  # mean correlation through the field
    median_shift_m: float  # median length of the field's vectors
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        """The fields that apply, in declaration order."""
        return filled(self)


def _template_scores(tiles: list[TileResult]) -> Scores:
    """Correlation per template, keyed by its centre."""
    return {
        (int(round(x * 10)), int(round(y * 10))): float(p)
        for t in tiles
        for x, y, p in zip(t.x, t.y, t.peak, strict=False)
    }


def template_correlations(
    pair: RegistrationInput,
    conf: LocalConfig,
    fields: list[DisplacementField],
    res: float,
    progress: Progress = no_progress,
    pool: TilePool | None = None,
    max_tiles: int = 0,
    stage: str = "verify",
) -> list[Scores] | None:
    """Per field, every template's CFOG correlation with the SAR seen through it (no search).

    Keyed by template centre (decimetres), so the fields' scores pair up
    template by template; all fields' tiles go to the pool in one batch.

    Args:
        pair: The pair.
        conf: The settings (templates, tiles, workers).
        fields: The fields to score.
        res: Working pixel, metres.
        progress: Called as ``(stage, done, total)``.
        pool: The run's tile pool, if any.
        max_tiles: At most that many tiles, evenly spread over the overlap (0: all), each
            holding thousands of templates, so a comparison on a whole scene stays cheap.
        stage: The progress stage of the tiles.

    Returns:
        One score dict per field, or None when the overlap is too small for a template at
        ``res``.
    """
    batches: list[list[TileJob]] = []
    for fld in fields:
        jobs = level_jobs(pair, conf, fld, res, 0)[1]
        if jobs is None:
            return None
        if max_tiles and len(jobs) > max_tiles:
            jobs = [jobs[int(i)] for i in np.linspace(0, len(jobs) - 1, max_tiles).round()]
        batches.append(jobs)
    tiles = run_tiles([job for jobs in batches for job in jobs], conf, progress, stage, pool)
    out, at = [], 0
    for jobs in batches:
        out.append(_template_scores(tiles[at : at + len(jobs)]))
        at += len(jobs)
    return out


def paired_gain(better: Scores, base: Scores, keys: list[TemplateKey]) -> tuple[float, float]:
    """Mean per-template correlation gain of ``better`` over ``base`` on ``keys``, and its z
    score (paired test)."""
    if len(keys) < 2:
        return 0.0, 0.0
    gain = np.array([better[k] - base[k] for k in keys])
    z = gain.mean() / max(gain.std(ddof=1) / math.sqrt(len(gain)), 1e-9)
    return float(gain.mean()), float(z)


def structural_agreement(
    pair: RegistrationInput,
    fld: DisplacementField,
    conf: LocalConfig | None = None,
    max_side: int = 1024,
) -> tuple[float, int]:
    """Mean CFOG correlation of optical and SAR templates with the SAR seen through ``fld`` (no
    search), and the number of templates.

    A method-independent check of a field, reference fields included: pairs
    that line up score well above zero, a field that leaves them misaligned
    scores near zero. The grid is the native pixel, coarsened so the overlap is
    at most ``max_side`` pixels across.

    Args:
        pair: The pair.
        fld: The field to check.
        conf: Template settings (``LocalConfig()`` when None).
        max_side: Largest grid side across the overlap, pixels.
    """
    conf = conf or LocalConfig()
    side_m = max(
        pair.overlap.bounds[2] - pair.overlap.bounds[0],
        pair.overlap.bounds[3] - pair.overlap.bounds[1],
    )
    scores = template_correlations(
        pair, conf, [fld], max(pair.native_resolution(), side_m / max_side)
    )
    if not scores or not scores[0]:
        return float("nan"), 0
    return float(np.mean(list(scores[0].values()))), len(scores[0])


def _scores(
    run: LocalRun, zero: DisplacementField, res: float, moved: float
) -> tuple[float, list[Scores] | None]:
    """The working pixel the field is judged at, and the scores of the field and of zero there.

    A field that barely moves the pair corrects by a pixel or less: it is judged at the finest
    pass, where such a shift shows, given enough templates there.
    """
    both = [run.result.field, zero]
    finest = pass_resolutions(run.pair, run.conf)[-1]
    if moved <= 2 * res and finest < res:
        fine = template_correlations(
            run.pair,
            run.conf,
            both,
            finest,
            run.progress,
            run.pool,
            max_tiles=verify_tiles(run, finest, 4),
            stage="verify (finest pass)",
        )
        if fine is not None and len(set(fine[0]) & set(fine[1])) >= run.conf.verify_min_templates:
            return finest, fine
    return res, template_correlations(
        run.pair, run.conf, both, res, run.progress, run.pool, verify_tiles(run, res)
    )


def ground_templates(run: LocalRun, keys: list[TemplateKey], res: float) -> list[TemplateKey]:
    """The templates at ``keys`` that lie off structures, their layover and shadow (at most
    ``structure_max_share`` on them), where the field is meant to hold; all of them without a
    structure map or when fewer than ``verify_min_templates`` are left.

    Args:
        run: The run (its structure map).
        keys: Template centres (decimetres).
        res: Working pixel of the templates, metres.
    """
    if run.structures is None or not keys:
        return keys
    side_m = level_layout(run.pair, run.conf, res, 0).template * res
    centres = np.array(keys, float) / 10.0
    share = run.structures.share(centres[:, 0], centres[:, 1], side_m)
    ground = [k for k, s in zip(keys, share, strict=True) if s <= run.conf.structure_max_share]
    return ground if len(ground) >= run.conf.verify_min_templates else keys


def _judge(
    conf: LocalConfig, scores: list[Scores], res: float, moved: float, common: list[TemplateKey]
) -> VerifyCheck:
    """The check of a field's scores (``scores[0]``) against zero shift's (``scores[1]``) on
    the templates ``common`` to both."""
    gain, z = paired_gain(scores[0], scores[1], common)
    field_ncc = float(np.mean([scores[0][k] for k in common])) if common else 0.0
    if len(common) < conf.verify_min_templates:
        passed = False
    elif moved <= 2 * res:
        # near zero either way: keep the field unless it is significantly worse
        passed = z > -conf.verify_z
    else:
        # a fitted field gains a little even on unrelated images (about 0.01 on synthetic
        # pairs): demand more; and the images must line up through it at all: a gain over no
        # shift through which they still barely correlate is not an alignment
        passed = (
            z >= conf.verify_z and gain >= conf.verify_min_gain and field_ncc >= conf.verify_min_ncc
        )
    paired = len(common) >= 2
    return VerifyCheck(
        resolution_m=round(res, 3),
        templates=len(common),
        mean_gain=round(gain, 4) if paired else None,
        z=round(z, 2) if paired else None,
        mean_ncc=round(field_ncc, 4),
        median_shift_m=round(moved, 2),
        passed=bool(passed),
    )


def verify_field(run: LocalRun) -> DisplacementField:
    """The run's field, or zero when it does not explain the images better than no shift.

    Every template's CFOG correlation through the field is paired with its
    correlation with no shift. A field that moves the pair by more than two
    verification pixels is kept only when the mean gain is at least
    ``verify_min_gain`` and ``verify_z`` standard errors (a one-sided paired
    test; the field was fitted to these correlations, so it gains a little
    even on unrelated images) and the images correlate through it by at least
    ``verify_min_ncc``; a field that barely moves it is kept unless it is
    significantly worse, judged at the finest pass. So a wrong prior or a level
    fooled by repetitive texture cannot leave the pair worse than it came. With a
    structure map only templates off structures are judged (:func:`ground_templates`):
    the field describes the ground, and buildings' layover, which does not follow it, would
    dilute the gain over zero shift.
    """
    result, conf = run.result, run.conf
    if not (np.any(result.field.dx) or np.any(result.field.dy)):
        return result.field  # nothing moved: nothing to check
    # screening drops many templates: ask for plenty
    res = resolution_with_templates(run.pair, conf, 16 * conf.verify_min_templates)
    zero = DisplacementField.constant(result.field.grid)
    moved = float(np.median(np.hypot(result.field.dx, result.field.dy)))
    with result.timed("verify"):
        res, scores = _scores(run, zero, res, moved)
    if scores is None:
        return result.field
    common = ground_templates(run, sorted(set(scores[0]) & set(scores[1])), res)
    check = _judge(conf, scores, res, moved, common)
    result.details["verify"] = check.as_dict()
    if check.passed:
        return result.field
    gain = 0.0 if check.mean_gain is None else check.mean_gain
    z = 0.0 if check.z is None else check.z
    result.warnings.append(
        f"the local field does not match the images better than no shift ({check.templates} "
        f"templates, mean correlation gain {gain}, z = {z}, mean correlation through it "
        f"{check.mean_ncc}); returning zero displacement with zero confidence"
    )
    return zero


def nothing_measured(result: RegistrationResult) -> str:
    """The warning of a run that ends with zero shift without a field to verify."""
    accepted = sum(info.get("accepted", 0) for info in result.details.get("levels", []))
    return (
        f"local measured no displacement ({accepted} consistent template vectors over "
        f"{len(result.details.get('levels', []))} passes, {result.matches} feature matches): "
        "returning zero shift with confidence 0"
    )
