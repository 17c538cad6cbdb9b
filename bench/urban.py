"""The ``urban`` bench kind: simulated sub-metre city pairs with an exact reference field."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio

from bench.cases import case_rng
from core.grid import Grid
from models.scoring import write_tiepoints
from samples.synth import ShiftFn
from samples.urban import UrbanSpec, ground_tiepoints, simulate_urban, write_urban

URBAN_CASES = 12
URBAN_VERSION = "3"  # bump when the files an urban spec builds change
TIEPOINT_CELLS = 12
CLEARANCE_M = 10.0  # tiepoints at least this far from any building footprint


def draw_urban_spec(name: str, seed: int) -> UrbanSpec:
    """An urban scene drawn from ``(seed, name)``; never tuned to results.

    Incidence 20–55°, look azimuth 0–360°, buildings up to 15–60 m, lot density 0.35–0.8,
    terrain relief 10–40 m, optical 2000–3600 px at 0.29–0.32 m, SAR 0.35–0.5 m rotated
    8–25° either way, a global offset of 5–25 m.

    Args:
        name: The case name (seeds the draw together with ``seed``).
        seed: The run seed.
    """
    rng = case_rng(seed, name)
    mag, ang = rng.uniform(5, 25), rng.uniform(0, 2 * math.pi)
    return UrbanSpec(
        size_px=int(rng.integers(20, 37)) * 100,
        optical_res=round(float(rng.uniform(0.29, 0.32)), 4),
        sar_res=round(float(rng.uniform(0.35, 0.5)), 4),
        sar_rotation_deg=float(rng.uniform(8, 25) * rng.choice([-1.0, 1.0])),
        incidence_deg=float(rng.uniform(20, 55)),
        look_azimuth_deg=float(rng.uniform(0, 360)),
        max_height_m=float(rng.uniform(15, 60)),
        density=float(rng.uniform(0.35, 0.8)),
        relief_m=float(rng.uniform(10, 40)),
        offset_m=(float(mag * math.cos(ang)), float(mag * math.sin(ang))),
        sun_azimuth_deg=float(rng.uniform(100, 260)),
        sun_elevation_deg=float(rng.uniform(35, 70)),
        speckle_looks=float(rng.uniform(1, 3)),
        origin=(
            float(math.floor(rng.uniform(300e3, 700e3))),
            float(math.floor(rng.uniform(4.0e6, 4.3e6))),
        ),
        seed=int(rng.integers(2**31)),
    )


def urban_spec_names(n: int = URBAN_CASES) -> list[str]:
    """The urban case names, ``urban-00`` … ."""
    return [f"urban-{i:02d}" for i in range(n)]


def urban_meta_spec(meta: dict[str, Any]) -> UrbanSpec:
    """The :class:`UrbanSpec` stored in a case's metadata."""
    d = dict(meta["urban"])
    return UrbanSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def build_urban_files(spec: UrbanSpec, folder: Path) -> dict[str, Any]:
    """Simulate ``spec`` into ``folder``: images, height models, reference and tiepoints.

    Returns the case metadata (grids, geometry, files) in ``case.json``'s form.

    Args:
        spec: The scene.
        folder: The (empty) case folder.
    """
    from bench.cases import grid_dict

    scene = simulate_urban(spec)
    files = write_urban(folder, scene)
    tp = ground_tiepoints(scene, TIEPOINT_CELLS, CLEARANCE_M, spec.seed + 1)
    write_tiepoints(folder / "tiepoints.csv", tp, decimals=3)
    valid = scene.sar > 0
    return {
        "source": "samples.urban",
        "note": (
            f"incidence {spec.incidence_deg:.1f}°, look azimuth {spec.look_azimuth_deg:.0f}°, "
            f"buildings ≤ {spec.max_height_m:.0f} m, relief {spec.relief_m:.0f} m"
        ),
        "builder_version": f"urban-{URBAN_VERSION}",
        "warped": True,
        "urban": dataclasses.asdict(spec),
        "files": files,
        "optical_grid": grid_dict(scene.optical_grid),
        "sar_grid": grid_dict(scene.sar_grid),
        "sar_valid_fraction": round(float(valid.mean()), 4),
        "tiepoints": {"field": "tiepoints.csv"},
        "n_tiepoints": {"field": len(tp)},
        "tiepoint_clearance_m": CLEARANCE_M,
    }


def reference_fn(folder: Path, optical: Grid) -> ShiftFn:
    """The case's reference field (``reference.tif``, m) as a function of map points."""
    with rasterio.open(folder / "reference.tif") as ds:
        dx, dy = ds.read(1), ds.read(2)

    def fn(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # values at pixel centres, bilinear, the edge values beyond the outer centres
        col, row = optical.map_to_pixel(x, y)
        shape2d = np.shape(x) if np.ndim(x) == 2 else (1, -1)
        c = (np.asarray(col) - 0.5).astype(np.float32).reshape(shape2d)
        r = (np.asarray(row) - 0.5).astype(np.float32).reshape(shape2d)
        out = [
            cv2.remap(b, c, r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(
                np.shape(x)
            )
            for b in (dx, dy)
        ]
        return out[0], out[1]

    return fn


__all__ = [
    "CLEARANCE_M",
    "URBAN_CASES",
    "build_urban_files",
    "draw_urban_spec",
    "reference_fn",
    "urban_meta_spec",
    "urban_spec_names",
]
