"""``global-affine``: one robust affine from learned matches on a coarse working grid."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from models.displacement import DisplacementField
from models.matchers import MatcherConfig, match_images, match_steps
from models.methods.base import (
    Progress,
    RegistrationInput,
    RegistrationResult,
    check_extent,
    config_dict,
    field_grid,
    inlier_confidence,
    no_progress,
    setting,
)
from models.preprocess import SarPreprocessing, prepare_optical, prepare_sar
from models.progress import Steps, ignore_steps
from models.raster import read_on_grid
from models.robust import RobustFit, fit_robust

log = logging.getLogger(__name__)

# the matcher's working grid must be at least this many pixels across the overlap
MIN_MATCH_SIDE_PX = 64


@dataclass(frozen=True)
class GlobalAffineConfig:
    """Settings of ``global-affine``.

    max_side: working-grid size bound (pixels) for the matcher; the grid's pixel is
    the coarser of the two images' pixels or the overlap extent / max_side.
    inlier_threshold_m: MAGSAC threshold in metres on the ground.
    """

    features: Literal["aliked", "disk", "aliked+disk"] = setting("aliked")
    max_side: int = setting(1024, ge=MIN_MATCH_SIDE_PX, le=16384)
    max_keypoints: int = setting(2048, ge=8, le=100000)
    detection_threshold: float = setting(0.01, ge=0, le=1)
    filter_threshold: float = setting(0.1, ge=0, le=1)
    inlier_threshold_m: float = setting(6.0, gt=0)
    min_inliers: int = setting(8, ge=3)
    speckle_size: int = setting(5, ge=0, le=31)
    field_resolution_m: float = setting(0.0, ge=0)  # 0: the working-grid pixel


def match_on_grid(
    pair: RegistrationInput,
    grid,
    matcher: MatcherConfig,
    sar_conf: SarPreprocessing,
    steps: Steps | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Matches between optical and SAR resampled onto ``grid``, as map points (optical, SAR).

    Args:
        pair: The pair.
        grid: The working grid both images are resampled onto.
        matcher: The matcher's settings.
        sar_conf: The SAR preprocessing.
        steps: Counts one step per image read and each matcher step
            (``2 + match_steps(matcher.features)`` in all).
    """
    steps = steps or ignore_steps()
    optical = prepare_optical(read_on_grid(pair.optical, grid))
    steps.step()
    sar = prepare_sar(read_on_grid(pair.sar, grid)[0], sar_conf, pair.sar.dtype)
    steps.step()
    m = match_images(optical, sar, matcher, steps.step)
    xo, yo = grid.pixel_to_map(m.points0[:, 0] + 0.5, m.points0[:, 1] + 0.5)
    xs, ys = grid.pixel_to_map(m.points1[:, 0] + 0.5, m.points1[:, 1] + 0.5)
    return np.column_stack([xo, yo]), np.column_stack([xs, ys]), len(m)


def coarse_resolution(pair: RegistrationInput, max_side: int) -> float:
    minx, miny, maxx, maxy = pair.overlap.bounds
    return max(pair.native_resolution(), max(maxx - minx, maxy - miny) / max_side)


def fit_global_affine(
    pair: RegistrationInput,
    conf: GlobalAffineConfig,
    result: RegistrationResult,
    progress: Progress,
) -> tuple[RobustFit | None, np.ndarray, np.ndarray]:
    """Match on the coarse grid and fit the affine; returns the fit and the inlier map points."""
    resolution = coarse_resolution(pair, conf.max_side)
    grid = pair.grid_over(pair.overlap, resolution)
    matcher = MatcherConfig(
        conf.features,
        conf.max_keypoints,
        conf.detection_threshold,
        conf.filter_threshold,
        conf.max_side,
        pair.device,
    )
    # the images read, each extraction and matching, the robust fit
    steps = Steps(progress, "global match", 2 + match_steps(conf.features) + 1)
    with result.timed("global_match"):
        src, dst, n = match_on_grid(
            pair, grid, matcher, SarPreprocessing(speckle_size=conf.speckle_size), steps
        )
    result.matches += n
    result.details["global_grid_resolution_m"] = resolution
    with result.timed("global_fit"):
        fit = fit_robust(src, dst, conf.inlier_threshold_m, "affine", conf.min_inliers)
    steps.finish()
    if fit is None:
        return None, src[:0], dst[:0]
    return fit, src[fit.inliers], dst[fit.inliers]


class GlobalAffineMethod:
    name: ClassVar[str] = "global-affine"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "ALIKED+LightGlue on a coarse common grid, one MAGSAC affine in map coordinates. "
        "Fast; right when the misalignment is close to rigid."
    )
    Config: ClassVar[type] = GlobalAffineConfig

    def run(
        self, pair: RegistrationInput, conf: GlobalAffineConfig, progress: Progress = no_progress
    ) -> RegistrationResult:
        """Match on the coarse working grid and fit one affine; zero shift when it cannot.

        An image or overlap narrower than ``MIN_MATCH_SIDE_PX`` pixels of the working grid is
        refused with an InputError before matching (the matcher finds nothing on it). When the
        matches are too few for an affine, the field is zero shift with confidence 0 and the
        result carries a warning.

        Args:
            pair: The pair to register.
            conf: The method's settings.
            progress: Called as ``(stage, done, total)``.
        """
        res = coarse_resolution(pair, conf.max_side)
        check_extent(
            pair,
            self.name,
            MIN_MATCH_SIDE_PX * res,
            f"the matcher's working grid, {MIN_MATCH_SIDE_PX} pixels of {res:.2f} m",
        )
        result = RegistrationResult(
            self.name,
            self.version,
            config_dict(conf),
            DisplacementField.constant(field_grid(pair, 50.0)),
        )
        fit, src, _ = fit_global_affine(pair, conf, result, progress)
        resolution = conf.field_resolution_m or result.details["global_grid_resolution_m"]
        grid = field_grid(pair, resolution)
        if fit is None:
            result.warnings.append(
                f"too few matches for an affine ({result.matches} matches, need {conf.min_inliers} "
                "inliers): "
                "falling back to zero shift with confidence 0"
            )
            result.field = DisplacementField.constant(grid)
            return result
        result.inliers = fit.n_inliers
        support = inlier_confidence(grid, src[:, 0], src[:, 1], radius_m=10 * resolution)
        ratio = fit.n_inliers / max(result.matches, 1)
        result.field = DisplacementField.from_function(
            grid, fit.displacement, support * min(1.0, 2 * ratio)
        )
        result.details["affine"] = fit.matrix.tolist()
        return result
