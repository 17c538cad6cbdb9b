"""Training sets of the learned descriptor: the benchmark's pre-aligned real pairs, synthetic
scenes, SN9 tiepoint sets with their images, and pseudo-labels from earlier activations."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.pairs import KINDS, load_pairs
from core.errors import InputError
from core.grid import Grid

SYNTH = "synth"  # generated optical/SAR-like scenes (samples.synth), aligned
SOURCES: tuple[str, ...] = (*KINDS, SYNTH)
PSEUDO_MAX_SIDE = 2048  # pseudo-label pairs are read on a grid of at most this side
Log = Callable[[str], None]


def parse_sources(text: str | None, exclude: list[str] | None) -> tuple[str, ...]:
    """The source kinds to train on: ``text`` (comma-separated, default every benchmark kind)
    less ``exclude``.

    Args:
        text: ``--sources`` (e.g. ``cfog,vsff``); none = cfog, vsff, srif, bigearthnet.
        exclude: ``--exclude`` kinds (leave-one-source-out).
    """
    chosen = [s.strip() for s in (text or ",".join(KINDS)).split(",") if s.strip()]
    unknown = [s for s in [*chosen, *(exclude or [])] if s not in SOURCES]
    if unknown:
        raise InputError(
            f"--sources/--exclude {','.join(unknown)}: unknown source; choose from "
            f"{', '.join(SOURCES)}"
        )
    return tuple(s for s in chosen if s not in set(exclude or []))


def bench_training_pairs(
    data: Path, kinds: tuple[str, ...], work: Path | None = None, log: Log = lambda _: None
) -> list[Any]:
    """The benchmark's pre-aligned real pairs of ``kinds`` as training pairs (source = kind).

    Args:
        data: The ``pairs/`` folder (``../shared/data/pairs``).
        kinds: Benchmark kinds (cfog, vsff, srif, bigearthnet).
        work: Where the SRIF checks are cached.
        log: Progress messages.
    """
    from models.learned import prepare_pair

    wanted = tuple(k for k in kinds if k in KINDS)
    if not wanted:
        return []
    found, skipped = load_pairs(data, wanted, work=work, log=log)
    for s in skipped:
        log(f"skipped {s.source}: {s.reason}")
    return [
        prepare_pair(p.name, p.kind, p.optical, p.sar, p.sar_dtype, None)
        for kind in wanted
        for p in found.get(kind, [])
    ]


def synth_training_pairs(n: int, seed: int = 0, size_m: float = 160.0) -> list[Any]:
    """``n`` generated scenes (``samples.synth``, zero shift), both images read on the optical
    grid (source ``synth``).

    Args:
        n: How many scenes.
        seed: Seed of the first scene (the others follow).
        size_m: Scene side, metres (0.5 m optical pixels).
    """
    from models.learned import prepare_pair
    from models.raster import open_raster, read_on_grid
    from samples.synth import SceneSpec, ShiftModel, synthesize_pair

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            spec = SceneSpec(
                size_m=size_m,
                sar_rotation_deg=0.0,
                shift=ShiftModel(offset=(0.0, 0.0)),
                n_tiepoints=8,
                seed=seed + i,
            )
            made = synthesize_pair(tmp, spec, f"synth{i}")
            optical = open_raster(made.optical, "optical")
            sar = open_raster(made.sar, "sar")
            opt = read_on_grid(optical, made.optical_grid)
            amp = read_on_grid(sar, made.optical_grid)[0]
            out.append(prepare_pair(f"synth-{seed + i}", SYNTH, opt, amp, sar.dtype, None))
    return out


def sn9_training_pairs(folder: Path, max_side: int = PSEUDO_MAX_SIDE) -> list[Any]:
    """SN9 training sets whose images sit beside their tiepoints
    (``{AOI}_optical_train_{NN}.tif``, ``{AOI}_sar_train_{NN}.tif``,
    ``{AOI}_tiepoints_train_{NN}.csv``): each a pair with its tiepoints as ``points`` (pixel
    centres of each image, decimated to at most ``max_side``); sets without images are skipped.

    Args:
        folder: The SN9 folder (``../shared/data/sn9``).
        max_side: Largest image side kept (both images are decimated alike).
    """
    from models.learned import prepare_pair
    from models.raster import open_raster, read_on_grid
    from models.scoring import read_tiepoints

    out = []
    for csv in sorted(folder.glob("*_tiepoints_train_*.csv")):
        aoi, nn = csv.stem.split("_tiepoints_train_")
        opt_path = folder / f"{aoi}_optical_train_{nn}.tif"
        sar_path = folder / f"{aoi}_sar_train_{nn}.tif"
        if not (opt_path.is_file() and sar_path.is_file()):
            continue
        tp = read_tiepoints(csv)
        optical, sar = open_raster(opt_path, "optical"), open_raster(sar_path, "sar")
        f = max(1.0, max(optical.grid.shape + sar.grid.shape) / max_side)
        og, sg = optical.grid.scaled(f), sar.grid.scaled(f)
        opt = read_on_grid(optical, og)
        amp = read_on_grid(sar, sg)[0]
        points = np.column_stack(
            [
                (tp.optical_col + 0.5) * og.width / optical.grid.width,
                (tp.optical_row + 0.5) * og.height / optical.grid.height,
                (tp.sar_col + 0.5) * sg.width / sar.grid.width,
                (tp.sar_row + 0.5) * sg.height / sar.grid.height,
            ]
        )
        out.append(prepare_pair(f"sn9-{aoi}-{nn}", f"sn9-{aoi}", opt, amp, sar.dtype, points))
    return out


def _working_grid(grid: Grid, max_side: int) -> Grid:
    """``grid`` coarsened to at most ``max_side`` pixels a side."""
    f = max(1.0, max(grid.shape) / max_side)
    return grid.scaled(math.ceil(f)) if f > 1 else grid


def pseudo_label_pair(
    record: dict[str, Any], min_confidence: float, max_side: int = PSEUDO_MAX_SIDE
) -> Any | None:
    """One verified registration as a training pair: the optical on its grid and the SAR
    sampled through the displacement map, no data where the confidence is below
    ``min_confidence``; None when nothing is that confident.

    Args:
        record: A register-pair ``record.json`` (``inputs``, ``outputs``).
        min_confidence: Least confidence of a pixel kept.
        max_side: Largest side of the working grid, pixels.
    """
    from models.learned import prepare_pair
    from models.methods.local.tiles import read_optical
    from models.raster import open_raster
    from models.sampling import sample_points

    optical = open_raster(record["inputs"]["optical"], "optical")
    sar = open_raster(record["inputs"]["sar"], "sar")
    shift = open_raster(record["outputs"]["displacement"])
    conf = open_raster(record["outputs"]["confidence"])
    grid = _working_grid(optical.grid, max_side)
    x, y = grid.pixel_centres()
    a = optical.grid.transform
    dx = sample_points(shift, x, y, grid.crs, (1.0, 0.0)) * a.a
    dy = sample_points(shift, x, y, grid.crs, (0.0, 1.0)) * a.e
    keep = sample_points(conf, x, y, grid.crs) >= min_confidence
    if not keep.any():
        return None
    amp = sample_points(sar, x + dx, y + dy, grid.crs)
    amp[~keep] = np.nan
    opt = read_optical(optical, grid)
    name = f"pseudo-{record['pair']}-{record.get('key', '')}"
    return prepare_pair(name, f"pseudo-{record['pair']}", opt, amp, sar.dtype, None)


def pseudo_label_pairs(
    workdir: Path, min_confidence: float = 0.5, log: Log = lambda _: None
) -> list[Any]:
    """Training pairs from the registrations under ``<workdir>/pairs`` whose field the
    verification accepted (:func:`pseudo_label_pair`); records without their inputs, or not
    verified, are skipped.

    Args:
        workdir: A working directory of earlier activations.
        min_confidence: Least confidence of a pixel kept.
        log: Progress messages.
    """
    records = sorted((workdir / "pairs").glob("*/*/*/record.json"))
    if not records:
        raise InputError(
            f"--pseudo-labels {workdir}: no registrations under {workdir / 'pairs'}; give the "
            "working directory of an earlier coalign activate"
        )
    out = []
    for path in records:
        record = json.loads(path.read_text())
        if not (record.get("verify") or {}).get("passed") or not record.get("inputs"):
            log(f"pseudo-labels: {path.parent} skipped (no verified field or no inputs)")
            continue
        pair = pseudo_label_pair(record, min_confidence)
        if pair is not None:
            out.append(pair)
    return out
