"""One level of ``local``: tiles matched through the field, vectors screened, residual composed."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from core.memory import freed_after
from models.areamatch import consistent, neighbour_median
from models.displacement import DisplacementField
from models.methods.base import RegistrationInput, inlier_confidence
from models.methods.local.budgets import repeat_fits
from models.methods.local.config import LocalConfig
from models.methods.local.context import LocalRun, filled
from models.methods.local.dense import choose_sigma, dense_residual, dense_steps
from models.methods.local.pool import run_tiles
from models.methods.local.schedule import level_layout
from models.methods.local.tiles import TileJob, TileResult, crop_field, level_tiles, tile_kernels
from models.progress import Steps, ignore_steps


@dataclass
class LevelInfo:
    """What one pass did; filled in as it runs, recorded in the result's ``details["levels"]``."""

    resolution_m: float  # working pixel
    radius_px: int  # search radius
    template_px: int  # template side
    spacing_px: int  # template grid step
    tiles: int | None = None
    templates: int | None = None  # templates laid on the tile cores
    candidates: int | None = None  # template vectors found
    sar_modes: dict[str, int] | None = None  # tiles per adaptive SAR preprocessing
    structures_rejected: float | None = None  # share of vectors on structures, layover, shadow
    accepted: int | None = None  # vectors that passed the screening
    saturated: float | None = None  # share of accepted vectors on the search-window border
    skipped: str | None = None  # why the pass left the field as it was
    evidence: float | None = None  # summed quality of the accepted vectors
    sigma_m: float | None = None  # chosen smoothing scale of the dense residual
    repeat: str | None = None  # a repeat's outcome: kept, or dropped and why

    def as_dict(self) -> dict[str, Any]:
        """The fields that were filled in, in declaration order."""
        return filled(self)


@dataclass(frozen=True)
class Vectors:
    """Template vectors: centres and shifts (map metres), correlation peak and peak margin."""

    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    peak: np.ndarray
    margin: np.ndarray
    cue: np.ndarray  # share of the template on image cues of structures

    def __len__(self) -> int:
        return len(self.x)

    def select(self, keep: np.ndarray) -> Vectors:
        """The vectors where ``keep`` is true."""
        return Vectors(*(getattr(self, f.name)[keep] for f in fields(self)))


def image_cues(pair: RegistrationInput, conf: LocalConfig) -> bool:
    """Whether the run takes image cues for structures (``structure_cues``, no height model)."""
    return conf.structure_cues and pair.height is None


def level_jobs(
    pair: RegistrationInput, conf: LocalConfig, fld: DisplacementField, res: float, radius: int
) -> tuple[LevelInfo, list[TileJob] | None]:
    """The tile jobs of one level (None when the overlap is too small for it).

    Args:
        pair: The pair.
        conf: The settings.
        fld: The current field; each tile reads the SAR through it.
        res: Working pixel, metres.
        radius: Search radius, working pixels.
    """
    layout = level_layout(pair, conf, res, radius)
    margin = layout.template // 2 + radius + 2
    info = LevelInfo(res, radius, layout.template, layout.spacing)
    if not layout.fits:
        info.skipped = "overlap smaller than one template plus search"
        return info, None
    jobs = [
        TileJob(
            pair.optical,
            pair.sar,
            tile.grid,
            tile.core,
            crop_field(fld, tile.grid),
            layout.template,
            layout.spacing,
            radius,
            conf.descriptor_sigma_px,
            conf.descriptor,
            conf.model,
            image_cues(pair, conf),
            device=pair.device,
        )
        for tile in level_tiles(layout.grid, conf.tile_px, margin)
    ]
    return info, jobs


def stage_name(level: int, n_levels: int, part: str, repeat: bool = False) -> str:
    """A level's progress stage, e.g. ``level 2/4 tiles`` or ``level 2/4 dense (repeat)``."""
    return f"level {level + 1}/{n_levels} {part}" + (" (repeat)" if repeat else "")


def level_steps(conf: LocalConfig, fld: DisplacementField) -> int:
    """Steps :func:`finish_level` reports: the screening, each candidate smoothing scale, the
    dense residual's steps and the composition."""
    return 1 + len(conf.sigma_templates) + dense_steps(fld.grid, conf.interpolation) + 1


def run_level(
    run: LocalRun,
    fld: DisplacementField,
    res: float,
    radius: int,
    level: int,
    n_levels: int,
    repeat: bool = False,
) -> tuple[DisplacementField, LevelInfo]:
    """Match one level through ``fld`` and compose its residual with it.

    Args:
        run: The run.
        fld: The current field.
        res: Working pixel, metres.
        radius: Search radius, working pixels.
        level: The pass's index (0: the first).
        n_levels: Passes in the schedule (for progress).
        repeat: Whether this runs the level again (for progress).
    """
    info, jobs = level_jobs(run.pair, run.conf, fld, res, radius)
    if jobs is None:
        return fld, info
    timer = f"level{level}_repeat" if repeat else f"level{level}"  # runtime_s keys
    with run.result.timed(f"{timer}_match"):
        stage = stage_name(level, n_levels, "tiles", repeat)
        tiles = run_tiles(jobs, run.conf, run.progress, stage, run.pool)
    steps = Steps(
        run.progress, stage_name(level, n_levels, "dense", repeat), level_steps(run.conf, fld)
    )
    return finish_level(run, fld, res, level, info, tiles, steps, timer)


def _gather(tiles: list[TileResult], info: LevelInfo) -> Vectors:
    """All tiles' vectors in one set; the tile counts go into ``info``."""
    vectors = Vectors(
        *(np.concatenate([getattr(t, f.name) for t in tiles]) for f in fields(Vectors))
    )
    modes = [t.sar_mode for t in tiles]
    info.tiles = len(tiles)
    info.templates = int(sum(t.templates for t in tiles))
    info.candidates = int(len(vectors))
    info.sar_modes = {m: modes.count(m) for m in set(modes)}
    return vectors


def structure_screen(run: LocalRun, v: Vectors, side_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Which vectors' templates lie mostly on structures, their layover or shadow (more than
    ``structure_max_share``), and each vector's weight: the share of its template off them.

    Rejection needs at least twice ``verify_min_templates`` vectors left (a level's large
    templates in a dense city may all touch structures); with fewer, vectors are only weighted.

    Args:
        run: The run (its structure map, when it has one).
        v: The vectors.
        side_m: Template side, metres.
    """
    if (run.structures is None and not image_cues(run.pair, run.conf)) or not len(v):
        return np.zeros(len(v), bool), np.ones(len(v))
    share = run.structures.share(v.x, v.y, side_m) if run.structures is not None else v.cue
    exclude = share > run.conf.structure_max_share
    if len(v) - exclude.sum() < 2 * run.conf.verify_min_templates:
        exclude[:] = False
    return exclude, np.clip(1.0 - share, 0.0, 1.0)


def _screen(conf: LocalConfig, v: Vectors, res: float, exclude: np.ndarray) -> np.ndarray:
    """Which vectors, not excluded, have a clear peak and agree with their neighbours."""
    keep = (v.peak >= conf.min_peak) & (v.margin >= conf.min_margin) & ~exclude
    pts = np.column_stack([v.x, v.y])
    ok = np.zeros(len(v), bool)
    if keep.sum() >= 4:
        ok[np.flatnonzero(keep)] = consistent(
            pts[keep], np.column_stack([v.dx, v.dy])[keep], tolerance=conf.consistency_px * res
        )
    return ok


def _compose(
    conf: LocalConfig,
    fld: DisplacementField,
    v: Vectors,
    quality: np.ndarray,
    info: LevelInfo,
    res: float,
    steps: Steps,
    torch_device: str | None,
) -> DisplacementField:
    """The field updated by the dense residual of the accepted vectors ``v`` (its Gaussian sums
    by torch on ``torch_device``, or by SciPy when None)."""
    sigma_m = choose_sigma(
        fld.grid,
        v.x,
        v.y,
        v.dx,
        v.dy,
        quality,
        [f * info.template_px * res for f in conf.sigma_templates],
        info.template_px * res,
        steps.step,
        torch_device,
    )
    info.sigma_m = round(sigma_m, 2)
    rdx, rdy = dense_residual(
        fld.grid,
        v.x,
        v.y,
        v.dx,
        v.dy,
        quality,
        sigma_m,
        conf.interpolation,
        conf.smoothing,
        steps.step,
        torch_device,
    )
    # the residual was measured after warping by the field: d'(X) = r(X) + d(X + r(X))
    gx, gy = fld.grid.pixel_centres()
    pdx, pdy, _ = fld.sample(gx + rdx, gy + rdy)
    spacing_m = info.spacing_px * res
    support = inlier_confidence(fld.grid, v.x, v.y, radius_m=2 * spacing_m)
    confidence = np.clip(support * (0.5 + float(np.median(quality))), 0, 1)
    return DisplacementField(
        fld.grid,
        (rdx + pdx).astype(np.float32),
        (rdy + pdy).astype(np.float32),
        confidence.astype(np.float32),
    )


def finish_level(
    run: LocalRun,
    fld: DisplacementField,
    res: float,
    level: int,
    info: LevelInfo,
    tiles: list[TileResult],
    steps: Steps | None = None,
    timer: str = "",
) -> tuple[DisplacementField, LevelInfo]:
    """Screen a level's vectors and compose their dense residual with the field.

    Args:
        run: The run.
        fld: The field the tiles were matched through.
        res: Working pixel, metres.
        level: The pass's index (0: the first).
        info: The level's record so far.
        tiles: The level's tile results.
        steps: Counts :func:`level_steps` steps: the screening, each smoothing scale tried,
            the dense residual and the composition (all of them also when the level ends
            early).
        timer: The ``runtime_s`` key prefix of the pass (default ``level<level>``), whose
            ``_dense`` entry takes its time.
    """
    conf, result = run.conf, run.result
    steps = steps or ignore_steps()
    timer = timer or f"level{level}"
    with result.timed(f"{timer}_dense"), steps.part(level_steps(conf, fld)), freed_after():
        good, quality, screened = _screen_level(run, _gather(tiles, info), info, res)
        steps.step()
        if level > 0 and len(good) < conf.min_accept_fraction * max(screened, 1):
            # most templates disagree: this level is finer than the images' real detail
            result.warnings.append(
                f"level {level + 1}: only {len(good)}/{screened} templates consistent; "
                "level skipped"
            )
            info.skipped = "too few consistent templates"
            return fld, info
        if len(good) < 4:
            info.evidence = 0.0
            if level > 0:
                result.warnings.append(
                    f"level {level + 1}: only {len(good)} reliable templates; field kept"
                )
            return fld, info
        info.evidence = float(quality.sum())
        # the Gaussian sums run where the tiles' kernels do
        torch_device = "cuda" if tile_kernels(run.pair.device) == "torch-cuda" else None
        updated = _compose(conf, fld, good, quality, info, res, steps, torch_device)
        result.inliers = max(result.inliers, len(good))
        return updated, info


def _screen_level(
    run: LocalRun, v: Vectors, info: LevelInfo, res: float
) -> tuple[Vectors, np.ndarray, int]:
    """A level's vectors screened (structures, peak, consistency): the kept ones, their quality
    (peak height × margin × share off structures) and how many were off structures; the counts
    go into ``info``."""
    conf = run.conf
    exclude, weight = structure_screen(run, v, info.template_px * res)
    if run.structures is not None or image_cues(run.pair, conf):
        info.structures_rejected = round(float(exclude.mean()), 3) if len(v) else 0.0
    ok = _screen(conf, v, res, exclude)
    good = v.select(ok)
    info.accepted = int(ok.sum())
    info.saturated = saturated_share(good.x, good.y, good.dx, good.dy, info.radius_px * res)
    run.result.matches += int(len(v))
    quality = (
        np.clip((good.peak - conf.min_peak) / (1 - conf.min_peak), 0, 1)
        * np.clip(good.margin / 0.1, 0.2, 1)
        * weight[ok]
    )
    return good, quality, len(v) - int(exclude.sum())


def saturated_share(
    x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, limit: float
) -> float:
    """Share of vectors on the border of their search window (``±limit``) whose neighbours lean
    the same way.

    Such a vector is a lower bound: the residual there is at least the radius.
    A peak that lands on the border by chance (most of a small window is
    border) has neighbours near zero and does not count; it must be beyond
    half the radius, on the same side, in the neighbours' median.
    """
    if len(x) < 4:
        return 0.0
    med, _ = neighbour_median(np.column_stack([x, y]), np.column_stack([dx, dy]))
    edge = limit * (1 - 1e-6)
    lean = [
        (np.abs(v) >= edge) & (np.sign(m) == np.sign(v)) & (np.abs(m) >= 0.5 * limit)
        for v, m in ((dx, med[:, 0]), (dy, med[:, 1]))
    ]
    return round(float((lean[0] | lean[1]).mean()), 3)


def repeat_saturated(
    run: LocalRun, fld: DisplacementField, info: LevelInfo, level: int, n_levels: int
) -> DisplacementField:
    """Run a level again while too many of its consistent vectors sit on the border of the
    search window.

    Such a vector is a lower bound: the residual there exceeds the search
    radius (a strongly non-rigid field the coarser level smoothed over). Its
    direction is right, so the field moved that way, and matching again
    through it measures the rest (given enough such vectors to tell: a share of a
    handful is noise). A repeat that does not at least halve that
    share did not converge (the border peaks were not a residual beyond the
    radius but a pull of ambiguous texture), so its field is dropped. Costs
    nothing where levels converge; the run's repeats together match at most
    ``repeat_budget`` scenes of pixels (:func:`~models.methods.local.budgets.repeat_fits`).

    Args:
        run: The run.
        fld: The field after the level.
        info: The level's record.
        level: The pass's index.
        n_levels: Passes in the schedule (for progress).
    """
    conf = run.conf
    for _ in range(conf.max_level_repeats):
        share = info.saturated or 0.0
        if (
            info.skipped is not None
            or share <= conf.repeat_saturated
            or share * (info.accepted or 0) < conf.repeat_min_vectors
            or not repeat_fits(run, level, info.resolution_m)
        ):
            break
        inliers = run.result.inliers
        run.overall.grow()
        again, info = run_level(run, fld, info.resolution_m, info.radius_px, level, n_levels, True)
        converged = info.skipped is None and (info.saturated or 0.0) <= 0.5 * share
        info.repeat = "kept" if converged else "dropped: did not converge"
        run.overall.step()
        run.result.details["levels"].append(info.as_dict())
        if not converged:
            run.result.inliers = inliers  # the dropped field's support does not count
            break
        fld = again
    return fld
