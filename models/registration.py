"""The public registration API: open a pair, run a method, write the SN9 products."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from core.grid import Grid
from models.cog import CogSpec, check_outputs, write_cog
from models.displacement import DisplacementField, sn9_lattice
from models.methods import get_method
from models.methods.base import (
    Progress,
    RegistrationInput,
    RegistrationResult,
    make_config,
    no_progress,
)
from models.progress import Phases, block_steps
from models.sar_geometry import GEOMETRY_UNKNOWN, SarGeometry
from models.scoring import Score, Tiepoints, score_displacement

DISPLACEMENT_SPEC = CogSpec(
    count=2,
    descriptions=("dx", "dy"),
    units=("pixel", "pixel"),
    tags=(("convention", "SpaceNet9: shift = (sar - optical) / optical gt[1], gt[5]"),),
)
CONFIDENCE_SPEC = CogSpec(count=1, descriptions=("confidence",), units=("1",))
# below this share of the optical footprint covered by the SAR, a result carries a warning
MIN_COVERAGE = 0.1


def register(
    pair: RegistrationInput,
    method: str,
    overrides: Mapping[str, Any] | None = None,
    progress: Progress = no_progress,
) -> RegistrationResult:
    """Run a named method with its defaults merged with ``overrides``.

    The settings are checked before the method starts. When the footprints' overlap covers less
    than ``MIN_COVERAGE`` of the optical image, the result carries a warning: the displacement
    outside the overlap is not measured. A pair with a height model records its sources in
    ``result.details["height"]`` (paths, CRS, coverage of the optical footprint). The SAR
    acquisition geometry is recorded in ``result.details["sar_geometry"]`` (none when unknown,
    with a warning first in ``result.warnings``).

    Args:
        pair: The pair to register.
        method: The method's name (see ``coalign methods``).
        overrides: Settings of the method by name (text as ``--set`` gives it, or values).
        progress: Called as ``(stage, done, total)``.

    Raises:
        InputError: An unknown method or setting, a setting out of its range, or a pair the
            method cannot register (too small).
    """
    m = get_method(method)
    conf = make_config(m.Config, overrides, m.name)
    t0 = time.perf_counter()
    result = m.run(pair, conf, progress)
    result.runtime_s["register_total"] = time.perf_counter() - t0
    coverage = pair.overlap.area / pair.optical_footprint().area
    if coverage < MIN_COVERAGE:
        result.warnings.append(
            f"the SAR image covers only {coverage:.1%} of the optical image; the displacement "
            "outside the overlap is extrapolated, not measured"
        )
    if pair.height is not None:
        result.details["height"] = pair.height.record(pair.crs, pair.optical_footprint())
    result.details["sar_geometry"] = pair.geometry.to_record() if pair.geometry else None
    if pair.geometry is None and pair.height is not None:
        result.warnings.insert(0, GEOMETRY_UNKNOWN)
    return result


@dataclass(frozen=True)
class Products:
    """The files :func:`write_displacement` wrote."""

    displacement: Path
    confidence: Path | None = None


def _sn9_block(field: DisplacementField, optical: Grid, band: str):
    """The block function of the SN9 ``shift`` (dx, dy) or ``confidence`` COG: only its own
    bands are interpolated."""
    names = ("dx", "dy") if band == "shift" else ("confidence",)

    def block(window: Window) -> np.ndarray:
        lattice = sn9_lattice(
            field,
            optical,
            int(window.row_off),
            int(window.col_off),
            int(window.height),
            int(window.width),
        )
        return np.stack([lattice.band(name) for name in names])

    return block


def write_displacement(
    field: DisplacementField,
    optical: Grid,
    path: str | os.PathLike[str],
    confidence_path: str | os.PathLike[str] | None = None,
    progress: Progress = no_progress,
) -> Products:
    """Write the SN9 displacement COG (and optionally the confidence COG) on the optical grid.

    Args:
        field: The displacement field a method found.
        optical: The optical grid the SN9 map is written on.
        path: The displacement COG to write.
        confidence_path: The confidence COG to write (a different file); none = not written.
        progress: Called as ``(stage, done, total)`` while each file is written (stages
            ``write displacement`` and ``write confidence``): one step per block, one for the
            conversion to a COG.
    """
    check_outputs({"displacement": path, "confidence": confidence_path or None}, {})
    shift = _sn9_block(field, optical, "shift")
    with block_steps(progress, "write displacement", optical, DISPLACEMENT_SPEC.block) as tick:
        out = write_cog(path, optical, DISPLACEMENT_SPEC, shift, tick)
    conf = None
    if confidence_path:
        block = _sn9_block(field, optical, "confidence")
        with block_steps(progress, "write confidence", optical, CONFIDENCE_SPEC.block) as tick:
            conf = write_cog(confidence_path, optical, CONFIDENCE_SPEC, block, tick)
    return Products(out, conf)


@dataclass(frozen=True)
class PipelineRun:
    """What :func:`run_pipeline` did: the pair it opened, the method's result (its ``runtime_s``
    holds the method's stages, ``register_total`` and ``write``), the files written, the score."""

    pair: RegistrationInput
    result: RegistrationResult
    products: Products
    open_s: float
    score: Score | None = None


def _ignore(warning: str) -> None:
    """Default warning sink: the warnings stay in the result."""


def run_pipeline(
    optical: str | os.PathLike[str],
    sar: str | os.PathLike[str],
    output: str | os.PathLike[str],
    method: str,
    settings: Mapping[str, Any] | None = None,
    device: str = "auto",
    *,
    confidence: str | os.PathLike[str] | None = None,
    tiepoints: Tiepoints | None = None,
    progress: Progress = no_progress,
    on_warning: Callable[[str], None] = _ignore,
    dsm: str | os.PathLike[str] | None = None,
    dtm: str | os.PathLike[str] | None = None,
    sar_geometry: SarGeometry | None = None,
) -> PipelineRun:
    """Open a pair, register it, write the SN9 displacement map (and confidence), score it.

    Args:
        optical: The optical GeoTIFF.
        sar: The SAR GeoTIFF.
        output: The displacement COG to write.
        method: The method's name (see ``coalign methods``).
        settings: Settings of the method by name (text as ``--set`` gives it, or values).
        device: ``auto``, ``cpu`` or ``cuda``: where the matchers run.
        confidence: The confidence COG to write; none = not written.
        tiepoints: SN9 tiepoints: checked against both images before the registration, then
            the written map is scored at them; none = not scored.
        progress: Called as ``(stage, done, total)`` while registering and writing, and for
            the stage ``overall``: the method's phases, then each file written.
        on_warning: Called with each warning of the result, before the map is written.
        dsm: A DSM or DEM (path or URL) put on the pair as its height model; none = no height.
        dtm: The bare-terrain DTM under ``dsm`` (path or URL); none = not given.
        sar_geometry: The SAR acquisition geometry (options, STAC item); none = the SAR file's
            tags, else unknown.

    Raises:
        InputError: An unknown method or setting, a setting out of range, tiepoints outside
            the images, a height file that is unreadable or misses the optical image, or a pair
            the method cannot register.
    """
    t0 = time.perf_counter()
    pair = RegistrationInput.open(
        os.fspath(optical),
        os.fspath(sar),
        device,
        os.fspath(dsm) if dsm else None,
        os.fspath(dtm) if dtm else None,
        sar_geometry,
    )
    open_s = time.perf_counter() - t0
    if tiepoints is not None:
        tiepoints.check_bounds(pair.optical.grid, pair.sar.grid)
    writes = ["write displacement"] + (["write confidence"] if confidence else [])
    phases = Phases(progress, writes)
    result = register(pair, method, settings, phases)
    phases.inner_done()
    for warning in result.warnings:
        on_warning(warning)
    with result.timed("write"):
        products = write_displacement(result.field, pair.optical.grid, output, confidence, phases)
    score = None
    if tiepoints is not None:
        score = score_displacement(
            products.displacement, tiepoints, pair.optical.grid, pair.sar.grid
        )
    return PipelineRun(pair, result, products, open_s, score)
