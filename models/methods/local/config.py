"""Settings of the ``local`` method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.methods.base import setting
from models.methods.global_affine import MIN_MATCH_SIDE_PX


@dataclass(frozen=True)
class LocalConfig:
    """Settings of ``local``; pixels are working pixels of a level unless said otherwise.

    docs/methods.md describes each step these settings steer.
    """

    # offer the global-affine fit as the first prior
    global_prior: bool = setting(True)
    # with a height model and the SAR geometry, offer the terrain prior (fitted layover) first
    terrain_prior: bool = setting(True)
    # with a height model and the SAR geometry, reject vectors on structures, layover or shadow
    structures: bool = setting(True)
    # share of a template on structures, layover or shadow above which its vector is rejected
    structure_max_share: float = setting(0.5, ge=0, le=1)
    # without a height model, take bright SAR returns and dark SAR or optical shadows as structures
    structure_cues: bool = setting(False)
    # the first prior, in order, whose first-level evidence reaches this share of the best is kept
    prior_margin: float = setting(0.7, ge=0, le=1)
    # first-level tiles each prior is tried on at most, those covering the most of the overlap
    # (0: all); the kept prior's other tiles are matched after the choice
    prior_tiles: int = setting(2, ge=0)
    # a finer level whose share of consistent templates is below this is skipped
    min_accept_fraction: float = setting(0.2, ge=0, le=1)
    # one more level at the finer image's pixel when it is over 10 % finer than the last level's
    optical_level: bool = setting(True)
    # extra passes at the finest level, search radius one less (the optical level counts as one)
    refine_passes: int = setting(1, ge=0, le=10)
    # share of consistent vectors on the search-window border that makes a level run again
    repeat_saturated: float = setting(0.1, ge=0, le=1)
    # border vectors a repeat also needs
    repeat_min_vectors: int = setting(16, ge=1)
    # repeats per level (0: none)
    max_level_repeats: int = setting(1, ge=0, le=10)
    # pixels all repeat passes of a run may match, in scenes (the overlap at the native pixel; a
    # pass at f × the native pixel matches 1/f² of it); 0: no repeats
    repeat_budget: float = setting(1.5, ge=0)
    # keypoint extractor(s) of the global prior
    features: Literal["aliked", "disk", "aliked+disk"] = setting("aliked")
    # largest working-grid side of the global prior, pixels
    global_max_side: int = setting(1024, ge=MIN_MATCH_SIDE_PX, le=16384)
    # MAGSAC inlier threshold of the global prior, metres on the ground
    inlier_threshold_m: float = setting(6.0, gt=0)
    # working pixel of each level over the native (coarser image's) pixel, coarse to fine
    levels: tuple[float, ...] = setting((4.0, 2.0, 1.0), gt=0, le=64)
    # search radius of each level, one per level
    radius_px: tuple[int, ...] = setting((12, 6, 3), ge=1, le=128)
    # template side
    template_px: int = setting(48, ge=8, le=512)
    # dense descriptor the templates are matched on: CFOG, or a trained network (``model``)
    descriptor: Literal["cfog", "learned"] = setting("cfog")
    # weights file of the learned descriptor (coalign train writes one); needed when learned
    model: str = setting("", text="a descriptor weights file (.pt), or empty")
    # registered model version the weights came from (models:/NAME/VERSION; set by commands
    # that resolve a model URI), recorded in the method version
    model_uri: str = setting("", text="a models:/NAME/VERSION URI, or empty")
    # CFOG spatial smoothing
    descriptor_sigma_px: float = setting(1.2, gt=0, le=10)
    # template grid step
    spacing_px: int = setting(16, ge=4, le=512)
    # tile core side
    tile_px: int = setting(1024, ge=64, le=8192)
    # smallest correlation peak kept
    min_peak: float = setting(0.15, ge=-1, le=1)
    # smallest lead of the peak over the second peak
    min_margin: float = setting(0.01, ge=0, le=2)
    # largest disagreement of a vector with its neighbours' median
    consistency_px: float = setting(1.5, gt=0)
    # sparse-to-dense scheme: Gaussian normalised convolution or thin-plate-spline RBF
    interpolation: Literal["gaussian", "tps"] = setting("gaussian")
    # candidate Gaussian scales in template sides, chosen per level by held-out prediction
    sigma_templates: tuple[float, ...] = setting((0.5, 1.0, 2.0), gt=0, le=100)
    # TPS smoothing of a vector of quality 1 (``tps`` only)
    smoothing: float = setting(1e-3, ge=0)
    # field pixel, metres (0: half the template spacing of the last of ``levels``)
    field_resolution_m: float = setting(0.0, ge=0)
    # keep the final field only when it matches the images better than zero shift
    verify: bool = setting(True)
    # standard errors of the paired correlation test the checks need
    verify_z: float = setting(2.0, ge=0)
    # mean correlation gain over zero shift a field needs
    verify_min_gain: float = setting(0.03, ge=0, le=1)
    # templates the checks need in common
    verify_min_templates: int = setting(16, ge=2)
    # least mean correlation through a field that moves the pair by more than two pixels
    verify_min_ncc: float = setting(0.05, ge=-1, le=1)
    # templates per field a check samples at most (whole tiles drawn evenly; 0: no limit)
    verify_max_templates: int = setting(16384, ge=0)
    # tile processes (0: one per CPU core, at most 4; 1: in this process)
    workers: int = setting(0, ge=0, le=1024)
    # run tile jobs on this Dask scheduler (host:port) instead
    dask_address: str = setting("", text="a Dask scheduler address (host:port), or empty")

    def inconsistency(self) -> str | None:
        """What makes the settings contradict each other (None when they fit together)."""
        if len(self.radius_px) != len(self.levels):
            return (
                f"radius_px needs one value per level ({len(self.levels)} levels: "
                f"{','.join(map(str, self.levels))}), got {len(self.radius_px)}"
            )
        if self.descriptor == "learned" and not self.model:
            return (
                "descriptor=learned needs the weights: add --set model=FILE.pt "
                "(or model=models:/coalign-descriptor@champion)"
            )
        return None
