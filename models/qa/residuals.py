"""The tiepoint residuals as a histogram with the mean, median and 90th percentile."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.errors import InputError
from models.qa.figure import PathLike, figure, save


def read_residuals(residuals_csv: PathLike) -> np.ndarray:
    """The ``error_m`` column of a residual CSV (:meth:`models.scoring.Score.write_residuals`)."""
    p = Path(residuals_csv)
    if not p.is_file():
        raise InputError(f"residual file not found: {p}")
    with open(p, newline="") as fh:
        reader = csv.DictReader(fh)
        if "error_m" not in (reader.fieldnames or []):
            raise InputError(
                f"residual file {p} has no error_m column (header {reader.fieldnames}); "
                "give the CSV written by `coalign score --residuals`"
            )
        try:
            err = np.array([float(r["error_m"]) for r in reader], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"residual file {p}: non-numeric error_m ({exc})") from None
    if err.size == 0:
        raise InputError(f"residual file {p} holds no tiepoints")
    return err


def residual_histogram_png(residuals_csv: PathLike, out_png: PathLike) -> Path:
    """Histogram of tiepoint errors (m) with the mean, median and 90th percentile marked."""
    err = read_residuals(residuals_csv)
    finite = err[np.isfinite(err)]
    fig = figure(760, 400)
    ax = fig.add_axes((0.09, 0.13, 0.88, 0.78))
    ax.hist(finite, bins=int(np.clip(len(finite) // 3, 5, 40)), color="#4477aa", edgecolor="white")
    for name, value, style in (
        ("mean", finite.mean(), "-"),
        ("median", np.median(finite), "--"),
        ("p90", np.percentile(finite, 90), ":"),
    ):
        ax.axvline(value, color="k", linestyle=style, label=f"{name} {value:.2f} m")
    ax.set_xlabel("tiepoint error (m)")
    ax.set_ylabel("tiepoints")
    extra = f", {len(err) - len(finite)} not finite" if len(finite) < len(err) else ""
    ax.set_title(f"residuals at {len(err)} tiepoints{extra}", fontsize=10)
    ax.legend()
    return save(fig, out_png)
