"""What a case scores without registration: zero shift, oracle affine, exact field, agreement."""

from __future__ import annotations

import numpy as np

from bench.cases import Case, case_grids, case_shift
from core.grid import Grid, transform_points
from models.displacement import DisplacementField
from models.scoring import Tiepoints, read_tiepoints, reference_shift, score_shifts


def oracle_affine_shift(
    tiepoints: Tiepoints, optical: Grid, sar: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """The best affine (least squares, map coordinates) through the reference tiepoints, as SN9
    shifts (px).

    The limit of any global model: no single affine predicts the tiepoints better.
    """
    xo, yo = optical.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    xs, ys = sar.pixel_to_map(tiepoints.sar_col, tiepoints.sar_row)
    xs, ys = transform_points(sar.crs, optical.crs, xs, ys)
    a = np.column_stack([xo - xo.mean(), yo - yo.mean(), np.ones_like(xo)])
    coef, *_ = np.linalg.lstsq(a, np.column_stack([xs - xo, ys - yo]), rcond=None)
    fit = a @ coef
    return fit[:, 0] / optical.transform.a, fit[:, 1] / optical.transform.e


def reference_scores(tiepoints: Tiepoints, optical: Grid, sar: Grid) -> dict[str, dict[str, float]]:
    """Zero-shift, oracle-affine and exact-reference errors (SN9 rounding and exact) at the
    tiepoints.

    ``exact``: predicting the true shift itself; under SN9's rounding of the reference it
    still scores about 0.38 px (the mean distance to the nearest integer pair), the floor
    of every method.
    """
    zero = np.zeros(len(tiepoints))
    odx, ody = oracle_affine_shift(tiepoints, optical, sar)
    edx, edy = reference_shift(tiepoints, optical, sar, rounding=False)
    out = {}
    for name, (pdx, pdy) in {
        "zero": (zero, zero),
        "oracle_affine": (odx, ody),
        "exact": (edx, edy),
    }.items():
        out[name] = score_shifts(pdx, pdy, tiepoints, optical, sar, rounding=True).summary()
        out[f"{name}_exact"] = score_shifts(
            pdx, pdy, tiepoints, optical, sar, rounding=False
        ).summary()
    return out


def case_references(case: Case) -> dict[str, dict[str, dict[str, float]]]:
    """Zero and oracle-affine scores of every tiepoint set of a built case."""
    optical, sar = case_grids(case)
    return {
        k: reference_scores(read_tiepoints(p), optical, sar) for k, p in case.tiepoint_sets.items()
    }


def case_agreement(case: Case) -> dict[str, dict[str, float]]:
    """Structural agreement (:func:`models.methods.local.structural_agreement`) of the pair under
    its reference field and under no shift: a reference that scores no better than no shift
    does not line the images up."""
    from models.methods.base import RegistrationInput, field_grid
    from models.methods.local import structural_agreement

    pair = RegistrationInput.open(str(case.optical), str(case.sar), "cpu")
    grid = field_grid(pair, pair.native_resolution() * 2)
    shift = case_shift(case)
    zero = DisplacementField.constant(grid)
    reference = DisplacementField.from_function(grid, shift) if shift else zero
    out = {}
    for name, fld in {"reference": reference, "zero": zero}.items():
        value, n = structural_agreement(pair, fld)
        out[name] = {"ncc": value, "templates": n}
    return out


def field_shift_px(case: Case, tiepoints: Tiepoints) -> tuple[np.ndarray, np.ndarray]:
    """The true SN9 shift (optical px) of a warped case's field at the optical tiepoints."""
    optical, _ = case_grids(case)
    shift = case_shift(case)
    if shift is None:
        raise ValueError(f"{case.name} is not warped: it has no field")
    xo, yo = optical.pixel_to_map(tiepoints.optical_col, tiepoints.optical_row)
    dx, dy = shift(xo, yo)
    return dx / optical.transform.a, dy / optical.transform.e


__all__ = [
    "case_agreement",
    "case_references",
    "field_shift_px",
    "oracle_affine_shift",
    "reference_scores",
]
