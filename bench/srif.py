"""SRIF ground-truth check: the rotation a pair's images agree on, against its shipped matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from models.areamatch import cfog, subpixel_peak
from models.preprocess import lee_filter, percentile_stretch

CHIP_PX = 256  # SRIF's SAR chips and the frame of its matrices


@dataclass(frozen=True)
class SrifCheckConfig:
    """How the rotation is searched and when it counts as verified."""

    step_deg: float = 2.0  # coarse sweep over the whole circle
    fine_step_deg: float = 0.25  # refinement around the coarse peak
    max_shift_px: int = 6  # residual shift searched at every angle (chip pixels)
    agree_deg: float = 4.0  # CFOG and mutual-information peaks at most this far apart
    distinct: float = 1.5  # CFOG peak ≥ this × the best correlation more than ``far_deg`` away
    far_deg: float = 10.0
    min_radius_px: int = 64  # the compared disc (inside the SAR's valid area)
    mi_bins: int = 32


@dataclass(frozen=True)
class SrifCheck:
    """The outcome for one pair: the angle the matrix claims, the angles the images show, the matrix
    to use."""

    gt_deg: float
    found_deg: float  # CFOG correlation peak (refined)
    mi_deg: float  # mutual-information peak (coarse)
    shift_px: tuple[float, float]  # residual shift at the peak, chip pixels
    peak: float  # CFOG correlation at the peak
    runner_up: float  # best CFOG correlation more than ``far_deg`` from the peak
    verified: bool
    reason: str
    matrix: tuple[
        tuple[float, float, float], tuple[float, float, float]
    ]  # chip → SAR pixels, to use when verified

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SrifCheck:
        """The inverse of :meth:`to_dict` (JSON turns tuples into lists)."""
        return cls(
            **{
                **d,
                "shift_px": tuple(d["shift_px"]),
                "matrix": tuple(tuple(r) for r in d["matrix"]),
            }
        )


def sar_chip_valid(sar: np.ndarray) -> np.ndarray:
    """Valid pixels of a SRIF SAR chip: inside the convex hull of its non-dark pixels, JPEG ringing
    eroded away.

    The black corners are outside; dark speckle inside the hull stays data.
    """
    hull = cv2.convexHull(np.argwhere(sar > 10)[:, ::-1].astype(np.int32))
    inside = cv2.fillConvexPoly(np.zeros(sar.shape, np.uint8), hull, 1)
    return cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0


def gt_angle_deg(gt: np.ndarray) -> float:
    """The rotation angle of a SRIF matrix (degrees, image axes: x right, y down)."""
    return float(np.degrees(np.arctan2(gt[1, 0], gt[0, 0])))


def rotation_about_centre(
    angle_deg: float, shift: tuple[float, float] = (0.0, 0.0), size: int = CHIP_PX
) -> np.ndarray:
    """SRIF's model, chip → SAR pixels: ``p_sar = R(angle) (p - c) + c + shift``, ``c`` the chip
    centre (2×3)."""
    t = np.radians(angle_deg)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    c = np.array([size / 2.0, size / 2.0])
    return np.column_stack([r, c - r @ c + np.asarray(shift, float)])


def mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Mutual information (nats) of two equally long samples in [0, 1]."""
    qa = np.clip((a * bins).astype(np.int64), 0, bins - 1)
    qb = np.clip((b * bins).astype(np.int64), 0, bins - 1)
    joint = (
        np.bincount(qa * bins + qb, minlength=bins * bins).reshape(bins, bins).astype(np.float64)
    )
    joint /= max(joint.sum(), 1.0)
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def _masked_ncc(window: np.ndarray, template: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """NCC of a masked multi-channel template ``(C, h, w)`` at every offset in ``window`` ``(C, H,
    W)``.

    Means and energies are taken under the mask only, at every offset (Padfield's masked NCC).
    """
    m = mask.astype(np.float32)
    n = float(m.sum())
    num = 0.0
    energy = 0.0
    t_norm2 = 0.0
    for w, t in zip(window, template, strict=False):
        tz = (t - (t * m).sum() / n) * m
        t_norm2 += float((tz * tz).sum())
        num = num + cv2.matchTemplate(w, tz, cv2.TM_CCORR)
        s1 = cv2.matchTemplate(w, m, cv2.TM_CCORR)
        s2 = cv2.matchTemplate(w * w, m, cv2.TM_CCORR)
        energy = energy + np.maximum(s2 - s1 * s1 / n, 0.0)
    return num / np.maximum(np.sqrt(energy * t_norm2), 1e-9)


class _Sweep:
    """Everything that does not change with the angle: the chip's CFOG on the disc, the SAR, the
    disc."""

    def __init__(self, optical_gray: np.ndarray, sar: np.ndarray, conf: SrifCheckConfig) -> None:
        self.conf = conf
        h, w = optical_gray.shape
        q = CHIP_PX / w
        # the chip exactly as the SRIF convention samples the optical: chip(p) = optical(p / q)
        blurred = (
            cv2.GaussianBlur(optical_gray.astype(np.float32), (0, 0), max(0.5 / q, 0.5))
            if q < 1
            else optical_gray
        )
        to_opt = np.array([[1 / q, 0, 0], [0, 1 / q, 0]], np.float64)
        chip = cv2.warpAffine(
            blurred.astype(np.float32),
            to_opt,
            (CHIP_PX, CHIP_PX),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderValue=float("nan"),
        )
        valid = sar_chip_valid(sar)
        self.sar = np.where(
            valid,
            percentile_stretch(lee_filter(np.where(valid, sar, np.nan).astype(np.float32))),
            np.nan,
        )
        # a disc about the centre, inside the SAR's valid area with room for the shift search
        dist = cv2.distanceTransform(np.pad(valid, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        c = CHIP_PX // 2
        s = conf.max_shift_px
        self.radius = int(min(dist[c - 1 : c + 1, c - 1 : c + 1].min(), c - s - 2) - s - 2)
        if self.radius < conf.min_radius_px:
            return
        r = self.radius
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        self.disc = (xx * xx + yy * yy) <= r * r
        self.box = slice(c - r, c + r + 1)
        self.search = slice(c - r - s, c + r + s + 1)
        optical = percentile_stretch(chip)
        self.optical_disc = np.nan_to_num(optical[self.box, self.box][self.disc], nan=0.5)
        self.template = cfog(optical)[:, self.box, self.box]

    def at(self, angle_deg: float) -> tuple[float, tuple[float, float], float]:
        """CFOG correlation peak (value, sub-pixel shift) and mutual information at one angle."""
        m = rotation_about_centre(angle_deg)
        sar = cv2.warpAffine(
            self.sar.astype(np.float32),
            m,
            (CHIP_PX, CHIP_PX),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderValue=float("nan"),
        )
        window = cfog(sar[self.search, self.search])
        ncc = _masked_ncc(window, self.template, self.disc)
        i, j = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        s = self.conf.max_shift_px
        ox, oy = subpixel_peak(ncc, int(i), int(j))
        dx, dy = float(j - s) + ox, float(i - s) + oy
        sar_disc = cv2.GaussianBlur(np.nan_to_num(sar, nan=0.5), (0, 0), 1.0)[self.box, self.box][
            self.disc
        ]
        mi = mutual_information(self.optical_disc, sar_disc, self.conf.mi_bins)
        return float(ncc[i, j]), (dx, dy), mi


def _circular(a: np.ndarray | float) -> np.ndarray | float:
    """Angle differences wrapped to (-180, 180]."""
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def _find_rotation(
    sweep: _Sweep, gt_deg: float, conf: SrifCheckConfig
) -> tuple[float, float, float]:
    """The refined CFOG peak angle, the coarse mutual-information peak, and the best CFOG
    correlation more than ``far_deg`` from the peak."""
    angles = gt_deg + np.arange(0.0, 360.0, conf.step_deg)
    coarse = [sweep.at(a) for a in angles]
    ncc = np.array([c[0] for c in coarse])
    mi = np.array([c[2] for c in coarse])
    k = int(np.argmax(ncc))
    mi_deg = float(angles[int(np.argmax(mi))])
    far = np.abs(_circular(angles - angles[k])) > conf.far_deg
    runner = float(ncc[far].max())
    # refine: fine steps around the coarse peak, then a parabola through the best three
    fine = angles[k] + np.arange(-conf.step_deg, conf.step_deg + 1e-9, conf.fine_step_deg)
    found = [sweep.at(a) for a in fine]
    f = np.array([c[0] for c in found])
    b = int(np.argmax(f))
    angle = float(fine[b]) + subpixel_peak(f[None, :], 0, b)[0] * conf.fine_step_deg
    return angle, mi_deg, runner


def _doubts(
    angle: float,
    mi_deg: float,
    peak: float,
    runner: float,
    shift: tuple[float, float],
    conf: SrifCheckConfig,
) -> str:
    """Why the found rotation is not verified ("" when it is)."""
    reasons = []
    if abs(float(_circular(mi_deg - angle))) > conf.agree_deg:
        reasons.append(
            f"mutual information peaks at {_circular(mi_deg):.0f}°, structure at {angle:.1f}°"
        )
    if peak < conf.distinct * max(runner, 1e-3):
        reasons.append(f"structure peak {peak:.3f} not distinct from {runner:.3f} elsewhere")
    if max(abs(shift[0]), abs(shift[1])) >= conf.max_shift_px - 0.5:
        reasons.append(f"residual shift {shift[0]:.1f}, {shift[1]:.1f} px at the search limit")
    return "; ".join(reasons)


def _outcome(
    gt_deg: float,
    found: float,
    mi_deg: float,
    shift: tuple[float, float],
    peak: float,
    runner: float,
    reason: str,
) -> SrifCheck:
    m = rotation_about_centre(found, shift)
    return SrifCheck(
        round(gt_deg, 3),
        round(found, 3),
        round(mi_deg, 3),
        (round(shift[0], 3), round(shift[1], 3)),
        round(peak, 4),
        round(runner, 4),
        not reason,
        reason,
        tuple(tuple(float(v) for v in row) for row in m),  # type: ignore[arg-type]
    )


def check_srif_gt(
    optical_gray: np.ndarray,
    sar: np.ndarray,
    gt: np.ndarray,
    conf: SrifCheckConfig = SrifCheckConfig(),
) -> SrifCheck:
    """Re-estimate a SRIF pair's rotation and say whether it is verified.

    SRIF (LJY-RS/SRIF) gives each pair's truth as a 2×3 matrix ``G``: a rotation about the
    centre of the 256-px chip, ``p_sar = G @ [p_chip, 1]`` (``p_chip = p_opt * 256 / W_opt``);
    such a matrix need not line its pair up. The rotation is re-estimated with SRIF's model
    (a rotation about the chip centre, plus a residual shift of a few pixels) and verified
    only where two independent similarity measures agree on the angle: the correlation of
    CFOG structure (:func:`models.areamatch.cfog`) and the mutual information of the
    intensities. Both are compared on one disc about the centre, which every rotation maps
    onto itself, so no angle is favoured by how much of the chip the SAR covers.

    Args:
        optical_gray: The optical image (H, W), any size.
        sar: The 256² SAR chip (uint8-like amplitude, black corners = no data).
        gt: The shipped 2×3 matrix.
        conf: How the rotation is searched and when it counts as verified.
    """
    gt_deg = gt_angle_deg(gt)
    sweep = _Sweep(optical_gray, sar, conf)
    if sweep.radius < conf.min_radius_px:
        return _outcome(
            gt_deg,
            gt_deg,
            gt_deg,
            (0.0, 0.0),
            float("nan"),
            float("nan"),
            f"SAR valid area too small to compare (disc radius {sweep.radius} px "
            f"< {conf.min_radius_px})",
        )
    angle, mi_deg, runner = _find_rotation(sweep, gt_deg, conf)
    peak, shift, _ = sweep.at(angle)
    angle = float(_circular(angle))
    reason = _doubts(angle, mi_deg, peak, runner, shift, conf)
    return _outcome(gt_deg, angle, float(_circular(mi_deg)), shift, peak, runner, reason)
