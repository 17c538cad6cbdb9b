"""Prefect tasks over ``models/``: register a pair, warp the optical, score, draw the QA pictures.

Each takes and returns file paths and small records; the rasters stay on disk. Registration
progress (the models callback ``(stage, done, total)``) is shown as a Prefect progress artifact.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from models.progress import OVERALL
from tasks.caching import cached

# pyplot keeps global state: pictures drawn by concurrent pair runs in one process take turns
_PYPLOT = threading.Lock()


class ProgressArtifact:
    """A models progress callback feeding one Prefect progress artifact: the overall percentage
    and the current stage, at most one update per ``min_interval_s`` (and the end).

    The percentage counts the ``overall`` stage's phases done plus the share of the phase under
    way that its stages report (never going back within a phase); without an ``overall`` stage
    it is the current stage's share.
    """

    def __init__(self, description: str, min_interval_s: float = 1.0) -> None:
        self.artifact: UUID = create_progress_artifact(0.0, description=description)
        self.description = description
        self.min_interval_s = min_interval_s
        self._stage = ""
        self._text = ""
        self._last = -float("inf")
        self._overall: tuple[int, int] | None = None
        self._share = 0.0  # of the phase under way (or of the stage, without phases)

    def percent(self) -> float:
        """The percentage shown now."""
        if self._overall is None:
            return round(100.0 * self._share, 1)
        done, total = self._overall
        return round(min(100.0, 100.0 * (done + self._share) / max(total, 1)), 1)

    def __call__(self, stage: str, done: int, total: int) -> None:
        share = min(done / total, 1.0) if total > 0 else 1.0
        if stage == OVERALL:
            if self._overall is None or self._overall[0] != done:
                self._share = 0.0
            self._overall = (done, total)
            force = done >= total
        else:
            force = self._overall is None and (stage != self._stage or done >= total)
            self._stage, self._text = stage, f"{stage}: {done}/{total}"
            self._share = share if self._overall is None else max(self._share, share)
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        text = f"{self.description} — {self._text}" if self._text else self.description
        update_progress_artifact(self.artifact, self.percent(), description=text)


@task(name="register", **cached("optical", "sar", "dsm"))
def register(
    optical: str,
    sar: str,
    method: str,
    settings: dict[str, str],
    out_dir: str,
    device: str = "auto",
    dsm: str | None = None,
    sar_geometry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register optical to SAR and write the SN9 displacement and confidence COGs
    (:func:`models.registration.run_pipeline`; ``dsm``, a DSM/DEM path, becomes the pair's height
    model); a summary record, with the height sources under ``height`` when a DSM is given, the
    method's ``descriptor`` and ``verify`` details (when it has them) and the ``inputs`` paths.
    ``sar_geometry`` is the SAR acquisition geometry record (``SarGeometry.to_record()``, from the
    STAC item); none = the SAR file's tags, else unknown (the record's ``sar_geometry``)."""
    from models.registration import run_pipeline
    from models.sar_geometry import SarGeometry

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # out_dir is <workdir>/pairs/<pair>/<method>/<key>
    done = run_pipeline(
        optical,
        sar,
        out / "displacement.tif",
        method,
        settings,
        device,
        confidence=out / "confidence.tif",
        progress=ProgressArtifact(f"{method} registration of {out.parent.parent.name}"),
        on_warning=get_run_logger().warning,
        dsm=dsm,
        sar_geometry=SarGeometry.from_record(sar_geometry),
    )
    result = done.result
    return {
        "method": result.method,
        "version": result.version,
        "config": result.config,
        "device": done.pair.device,
        "matches": result.matches,
        "inliers": result.inliers,
        "runtime_s": result.runtime_s,
        "warnings": result.warnings,
        "displacement": str(done.products.displacement),
        "confidence": str(done.products.confidence),
        "height": result.details.get("height"),
        "sar_geometry": result.details.get("sar_geometry"),
        "descriptor": result.details.get("descriptor"),
        "verify": result.details.get("verify"),
        "inputs": {"optical": optical, "sar": sar},
    }


@task(name="warp-optical", **cached("optical", "displacement"))
def warp(optical: str, displacement: str, out: str) -> str:
    """The aligned optical COG (``models.warp.warp_optical``)."""
    from models.warp import warp_optical

    return str(warp_optical(optical, displacement, out))


@task(name="score", **cached("displacement", "optical", "sar", "tiepoints", "confidence"))
def score(
    displacement: str,
    optical: str,
    sar: str,
    tiepoints: str,
    residuals: str,
    confidence: str | None = None,
) -> dict[str, float]:
    """SN9 score of the displacement at the tiepoints, beside the zero-shift score; writes the
    residual CSV and, beside it, the residual GeoPackage (confidence sampled from
    ``confidence``)."""
    import numpy as np

    from models.raster import open_raster
    from models.scoring import read_tiepoints, score_displacement, score_shifts

    tp = read_tiepoints(tiepoints)
    o, s = open_raster(optical, "optical").grid, open_raster(sar, "sar").grid
    result = score_displacement(displacement, tp, o, s)
    result.write_residuals(residuals, tp, o, confidence)
    zero = score_shifts(np.zeros(len(tp)), np.zeros(len(tp)), tp, o, s).summary()
    return {**result.summary(), "zero_mean_px": zero["mean_px"], "zero_mean_m": zero["mean_m"]}


@task(name="qa-pictures", **cached("optical", "sar", "displacement", "aligned", "residuals"))
def qa(
    optical: str,
    sar: str,
    displacement: str,
    out_dir: str,
    aligned: str | None,
    residuals: str | None,
) -> dict[str, str]:
    """Checkerboards before/after, flow colour, quiver and residual histogram PNGs
    (``models.qa``)."""
    from models.qa import qa_pictures

    with _PYPLOT:
        return {
            k: str(v)
            for k, v in qa_pictures(optical, sar, displacement, out_dir, aligned, residuals).items()
        }
