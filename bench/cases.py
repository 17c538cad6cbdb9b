"""Benchmark cases: real pre-aligned optical/SAR pairs put on map grids and warped by a known field.

A pre-aligned pair (optical and SAR on one pixel lattice, :class:`AlignedPair`)
is read as "the ground": the optical image gets a north-up UTM grid; the SAR
gets its own grid (coarser pixels, another origin, optionally rotated like an
Umbra GEC product) and shows, at map point ``X``, the ground at ``Y`` with
``Y + d(Y) = X`` for a smooth SN9-like displacement ``d`` (offset + affine part
+ non-rigid part, :class:`samples.synth.ShiftModel`), exactly as
:func:`samples.synth.synthesize_pair` does for synthetic scenes. Tiepoints (SN9
CSV, :func:`models.scoring.write_tiepoints`) are optical pixels mapped through
``d``; the CFOG pair's 145 real tiepoints are mapped through ``d`` too, so its
real residual misalignment stays in the ground truth.

Sources (../shared/data/pairs, see its README): CFOG (600² pair, real
tiepoints), VSFF (1000² pair), SRIF (40 unaligned pairs, resampled with their
coarse ground truth), BigEarthNet (120² Sentinel-1 VV / Sentinel-2 RGB patches).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS

from bench.srif import SrifCheck, check_srif_gt, sar_chip_valid
from core.errors import InputError
from core.files import atomic_path
from core.grid import Grid, transform_points
from models.cog import CogSpec, write_cog
from models.displacement import DisplacementField
from models.scoring import Tiepoints, read_tiepoints, reference_shift, score_shifts, write_tiepoints
from samples.synth import ShiftModel

BUILDER_VERSION = "2"  # 2: SRIF pairs resampled with their verified rotation
SRIF_CHECK_VERSION = "1"  # bump when bench.srif changes what it finds

# Optical pixel size given to each dataset. CFOG/SRIF/VSFF get Maxar-like sizes so that
# the methods' metre-valued settings are exercised in the product's regime (their native
# GSDs are coarser: VSFF is about 5 m); BigEarthNet keeps its real 10 m grid.
DATASET_PIXEL_M: dict[str, float] = {"cfog": 1.0, "vsff": 0.5, "srif": 1.0, "bigearthnet": 10.0}
KINDS: tuple[str, ...] = ("cfog", "vsff", "srif", "bigearthnet")

# Field recipe (fractions of the scene width), drawn once per case from its seed.
OFFSET_FRACTION = (0.04, 0.10)
LINEAR_MAX = 0.01  # each affine coefficient (m/m)
NONRIGID_FRACTION = (0.01, 0.03)
WAVELENGTH_FRACTION = (0.6, 1.2)
SAR_FACTOR = (1.2, 1.5)
ROTATION_DEG = (8.0, 25.0)
TIEPOINT_CELLS = 12  # jittered grid of TIEPOINT_CELLS² optical pixels


@dataclass(frozen=True, eq=False)
class AlignedPair:
    """A pre-aligned optical/SAR pair on one pixel lattice ("the ground").

    ``real_tiepoints``: (N, 4) optical col, row, SAR col, row in continuous pixel
    coordinates of the shared lattice (upper-left corner convention).
    """

    name: str
    kind: str
    optical: np.ndarray  # (bands, H, W), uint8 or uint16
    sar: np.ndarray  # (H, W) float32, NaN = no data
    sar_dtype: str  # how the SAR is written: "uint8" (nodata 0) or "float32" (nodata NaN)
    pixel_m: float
    crs: str = "EPSG:32637"
    transform: Affine | None = None  # real georeferencing, when the source has one
    real_tiepoints: np.ndarray | None = None
    source: str = ""
    note: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return self.sar.shape


@dataclass(frozen=True)
class WarpRecipe:
    """How one case is made from its pair: grids and field (metres, map axes)."""

    crs: str
    origin: tuple[float, float]  # optical upper-left corner
    optical_m: float
    sar_factor: float
    rotation_deg: float
    shift: ShiftModel
    tiepoint_seed: int


@dataclass(frozen=True)
class CaseSpec:
    """A case to build: its pair and recipe (None: the pair as it is, one shared grid)."""

    name: str
    kind: str
    pair: AlignedPair
    recipe: WarpRecipe | None
    seed: int


@dataclass(frozen=True)
class Case:
    """A built case on disk."""

    name: str
    kind: str
    folder: Path
    warped: bool
    meta: dict[str, Any]

    @property
    def optical(self) -> Path:
        return self.folder / "optical.tif"

    @property
    def sar(self) -> Path:
        return self.folder / "sar.tif"

    @property
    def tiepoint_sets(self) -> dict[str, Path]:
        """Named tiepoint files: ``field`` (through the known field) and/or ``real`` (CFOG's
        own)."""
        return {k: self.folder / v for k, v in self.meta["tiepoints"].items()}


# ---------------------------------------------------------------- reading the real pairs


def _read(path: Path) -> np.ndarray:
    """All bands of an image file (GeoTIFF or JPEG/PNG) as (bands, H, W)."""
    if not path.is_file():
        raise InputError(
            f"benchmark source {path} is missing; check ../shared/data/pairs (see its README)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read()


def _gray(a: np.ndarray) -> np.ndarray:
    if a.shape[0] >= 3:
        return (0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]).astype(np.float32)
    return a[0].astype(np.float32)


def load_cfog(folder: Path) -> AlignedPair:
    """CFOG: 600² optical/SAR, 145 real tiepoints (``ref_x ref_y sen_x sen_y``, MATLAB 1-based)."""
    optical = _read(folder / "visible1_ref.tif")
    sar = _read(folder / "SAR1_sen.tif")
    cp_path = folder / "visibleToSAR1_CP.txt"
    try:
        cp = np.loadtxt(cp_path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"CFOG tiepoints {cp_path} unreadable ({exc}); expected 4 columns ref_x ref_y sen_x sen_y"
        ) from exc
    if cp.shape[1] != 4:
        raise InputError(
            f"CFOG tiepoints {cp_path} have {cp.shape[1]} columns; expected 4 (ref_x ref_y sen_x sen_y)"
        )
    if optical.shape[1:] != sar.shape[1:]:
        raise InputError(
            f"CFOG optical {optical.shape[1:]} and SAR {sar.shape[1:]} differ in size; expected one lattice"
        )
    # MATLAB pixel coordinates put pixel centres at 1, 2, ...: the corner convention is x - 0.5
    return AlignedPair(
        "cfog",
        "cfog",
        optical,
        _gray(sar),
        "uint8",
        DATASET_PIXEL_M["cfog"],
        real_tiepoints=cp - 0.5,
        source=str(folder),
    )


def load_vsff(folder: Path) -> AlignedPair:
    """VSFF: one pre-aligned 1000² GF-1 RGB / GF-3 SAR pair."""
    optical = _read(folder / "optical" / "WHU-OPT-SAR.tif")
    sar = _read(folder / "sar" / "WHU-OPT-SAR.tif")
    if optical.shape[1:] != sar.shape[1:]:
        raise InputError(
            f"VSFF optical {optical.shape[1:]} and SAR {sar.shape[1:]} differ in size; expected one lattice"
        )
    return AlignedPair(
        "vsff",
        "vsff",
        optical[:3],
        _gray(sar),
        "uint8",
        DATASET_PIXEL_M["vsff"],
        source=str(folder),
    )


def srif_resample(optical: np.ndarray, sar: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The SRIF SAR resampled onto the optical chip: ``p_sar = G @ [p_opt * 256 / W_opt, 1]``.

    Pixel-index coordinates (OpenCV convention). The SAR's black corners
    (:func:`bench.srif.sar_chip_valid`) and points outside the SAR become NaN.
    """
    h, w = optical.shape[-2:]
    s = _gray(sar)
    s = np.where(sar_chip_valid(s), s, np.nan).astype(np.float32)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    q = 256.0 / w
    mx = gt[0, 0] * cols * q + gt[0, 1] * rows * q + gt[0, 2]
    my = gt[1, 0] * cols * q + gt[1, 1] * rows * q + gt[1, 2]
    return cv2.remap(
        s,
        mx.astype(np.float32),
        my.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def _srif_checks(
    folder: Path, numbers: list[int], cache: Path | None, log: Callable[[str], None]
) -> dict[int, SrifCheck | str]:
    """Each pair's ground-truth check (or why it could not be read), reusing ``cache`` where the
    files are unchanged."""
    stored: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text())
        except ValueError:
            stored = {}
    out: dict[int, SrifCheck | str] = {}
    changed = False
    for i, n in enumerate(numbers):
        files = [folder / f"gt_{n}.txt", folder / f"pair{n}_1.jpg", folder / f"pair{n}_2.jpg"]
        try:
            digest = hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()
            hit = stored.get(str(n))
            if hit and hit.get("sha1") == digest and hit.get("config") == SRIF_CHECK_VERSION:
                out[n] = SrifCheck.from_dict(hit["check"])
                continue
            gt = np.loadtxt(files[0], ndmin=2)
            if gt.shape != (2, 3):
                out[n] = f"gt_{n}.txt is {gt.shape}, expected 2×3"
                continue
            log(f"checking SRIF pair{n} ground truth ({i + 1}/{len(numbers)})")
            out[n] = check_srif_gt(_gray(_read(files[1])), _gray(_read(files[2])), gt)
            stored[str(n)] = {
                "sha1": digest,
                "config": SRIF_CHECK_VERSION,
                "check": out[n].to_dict(),
            }
            changed = True
        except (OSError, ValueError, InputError) as exc:
            out[n] = f"unreadable ({exc})"
    if cache is not None and changed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            tmp.write_text(json.dumps(stored, indent=1))
    return out


def load_srif(
    folder: Path,
    min_coverage: float = 0.75,
    checks: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[list[AlignedPair], list[dict[str, str]]]:
    """SRIF: every ``pairN`` whose rotation is verified, resampled onto its optical chip.

    The shipped matrices are checked first (:mod:`bench.srif`): most do not
    line their pair up, so each pair is resampled with the rotation its images agree
    on, and skipped when the two similarity measures disagree. Also skipped: a chip of
    which less than ``min_coverage`` lands on valid SAR pixels. ``checks`` caches the
    checks (a JSON file, keyed by the files' content).
    """
    pairs, skipped = [], []
    numbers = sorted(
        int(p.stem.split("_")[1]) for p in folder.glob("gt_*.txt") if p.stem.split("_")[1].isdigit()
    )
    for n, check in _srif_checks(folder, numbers, checks, log).items():
        label = f"srif pair{n}"
        if isinstance(check, str):
            skipped.append({"source": label, "reason": check})
            continue
        if not check.verified:
            skipped.append(
                {
                    "source": label,
                    "reason": f"ground truth unverifiable: {check.reason} (the matrix says {check.gt_deg:.0f}°)",
                }
            )
            continue
        optical = _read(folder / f"pair{n}_1.jpg")
        if optical.shape[0] >= 3:
            optical = optical[:3]
        resampled = srif_resample(optical, _read(folder / f"pair{n}_2.jpg"), np.array(check.matrix))
        coverage = float(np.isfinite(resampled).mean())
        if coverage < min_coverage:
            skipped.append(
                {
                    "source": label,
                    "reason": f"only {coverage:.0%} of the optical chip lands on valid SAR",
                }
            )
            continue
        pairs.append(
            AlignedPair(
                f"srif-{n:02d}",
                "srif",
                optical,
                resampled,
                "uint8",
                DATASET_PIXEL_M["srif"],
                source=str(folder / f"pair{n}_1.jpg"),
                note=(
                    f"SAR coverage {coverage:.0%}; rotation {check.found_deg:.2f}° (matrix {check.gt_deg:.0f}°, "
                    f"mutual information {check.mi_deg:.0f}°), shift {check.shift_px[0]:.2f}, {check.shift_px[1]:.2f} px"
                ),
            )
        )
    return pairs, skipped


def load_bigearthnet(folder: Path) -> tuple[list[AlignedPair], list[dict[str, str]]]:
    """BigEarthNet: Sentinel-1 VV (dB) as SAR, Sentinel-2 B04/B03/B02 as optical, real 10 m UTM
    grid."""
    pairs, skipped = [], []
    s2 = {
        "_".join(d.name.split("_")[-2:]): d
        for d in (folder / "BigEarthNet-S2-Example").glob("*")
        if d.is_dir()
    }
    for d in sorted((folder / "BigEarthNet-S1-Example").glob("*")):
        if not d.is_dir():
            continue
        key = "_".join(d.name.split("_")[-2:])
        vv = d / f"{d.name}_VV.tif"
        if key not in s2 or not vv.is_file():
            skipped.append(
                {"source": f"bigearthnet {d.name}", "reason": "no matching S2 patch or no VV band"}
            )
            continue
        bands = [s2[key] / f"{s2[key].name}_{b}.tif" for b in ("B04", "B03", "B02")]
        if not all(b.is_file() for b in bands):
            skipped.append({"source": f"bigearthnet {d.name}", "reason": "S2 B04/B03/B02 missing"})
            continue
        with rasterio.open(vv) as ds:
            sar, crs, transform = ds.read(1).astype(np.float32), ds.crs, ds.transform
        optical = np.stack([_read(b)[0] for b in bands])
        if optical.shape[1:] != sar.shape:
            skipped.append(
                {"source": f"bigearthnet {d.name}", "reason": "S1 and S2 patch sizes differ"}
            )
            continue
        pairs.append(
            AlignedPair(
                f"bigearthnet-{key}",
                "bigearthnet",
                optical,
                sar,
                "float32",
                abs(transform.a),
                crs=crs.to_string(),
                transform=transform,
                source=str(d),
            )
        )
    return pairs, skipped


def load_pairs(
    root: Path,
    kinds: tuple[str, ...] = KINDS,
    work: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, list[AlignedPair]], list[dict[str, str]]]:
    """The pre-aligned pairs of each kind found under ``root`` (a ``pairs/`` folder); absent kinds
    are skipped.

    ``work``: where the SRIF ground-truth checks are cached (``srif-checks.json``).
    """
    if not root.is_dir():
        raise InputError(
            f"benchmark data folder {root} not found; give --data (the ../shared/data/pairs folder)"
        )
    loaders = {
        "cfog": lambda p: ([load_cfog(p)], []),
        "vsff": lambda p: ([load_vsff(p)], []),
        "srif": lambda p: load_srif(p, checks=work / "srif-checks.json" if work else None, log=log),
        "bigearthnet": load_bigearthnet,
    }
    out: dict[str, list[AlignedPair]] = {}
    skipped: list[dict[str, str]] = []
    for kind in kinds:
        folder = root / kind
        if not folder.is_dir():
            skipped.append({"source": kind, "reason": f"{folder} not present"})
            continue
        found, skip = loaders[kind](folder)
        out[kind] = found
        skipped.extend(skip)
    return out, skipped


# ---------------------------------------------------------------- recipes and planning


def case_rng(seed: int, name: str) -> np.random.Generator:
    """A generator seeded by the run seed and the case name (stable across runs and machines)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def draw_recipe(pair: AlignedPair, name: str, seed: int, rotated: bool) -> WarpRecipe:
    """Grids and an SN9-like field for one case, drawn from ``(seed, name)``; never tuned to
    results."""
    rng = case_rng(seed, name)
    h, w = pair.shape
    px = pair.pixel_m
    width_m, height_m = w * px, h * px
    if pair.transform is not None:
        crs, origin = pair.crs, (pair.transform.c, pair.transform.f)
    else:
        crs = pair.crs
        origin = (math.floor(rng.uniform(300e3, 700e3)), math.floor(rng.uniform(3.9e6, 4.3e6)))
    centre = (origin[0] + width_m / 2, origin[1] - height_m / 2)
    mag = rng.uniform(*OFFSET_FRACTION) * width_m
    ang = rng.uniform(0, 2 * math.pi)
    linear = tuple(float(v) for v in rng.uniform(-LINEAR_MAX, LINEAR_MAX, 4))
    shift = ShiftModel(
        offset=(float(mag * math.cos(ang)), float(mag * math.sin(ang))),
        linear=linear,  # type: ignore[arg-type]
        nonrigid_m=float(rng.uniform(*NONRIGID_FRACTION) * width_m),
        wavelength_m=float(rng.uniform(*WAVELENGTH_FRACTION) * width_m),
        centre=centre,
        seed=int(rng.integers(2**31)),
    )
    rotation = float(rng.uniform(*ROTATION_DEG) * rng.choice([-1.0, 1.0])) if rotated else 0.0
    return WarpRecipe(
        crs,
        (float(origin[0]), float(origin[1])),
        px,
        float(rng.uniform(*SAR_FACTOR)),
        rotation,
        shift,
        int(rng.integers(2**31)),
    )


def plan_cases(
    pairs: dict[str, list[AlignedPair]], seed: int, warped_per_pair: dict[str, int] | None = None
) -> list[CaseSpec]:
    """The case list: CFOG unwarped + warped variants, VSFF variants, one case per SRIF/BigEarthNet
    pair.

    Rotation alternates (first case of each kind rotated) so every kind has both grids.
    """
    per_pair = {"cfog": 3, "vsff": 3, "srif": 1, "bigearthnet": 1, **(warped_per_pair or {})}
    specs: list[CaseSpec] = []
    for kind, found in pairs.items():
        i = 0
        for pair in found:
            if pair.real_tiepoints is not None:
                specs.append(CaseSpec(f"{pair.name}-unwarped", kind, pair, None, seed))
            n = per_pair.get(kind, 1)
            for v in range(n):
                name = f"{pair.name}-w{v}" if n > 1 else pair.name
                specs.append(
                    CaseSpec(
                        name, kind, pair, draw_recipe(pair, name, seed, rotated=i % 2 == 0), seed
                    )
                )
                i += 1
    return specs


# ---------------------------------------------------------------- building


def inverse_field(
    shift: ShiftModel, x: np.ndarray, y: np.ndarray, iterations: int = 30, tol_m: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """The ground ``Y`` with ``Y + d(Y) = X`` by fixed-point iteration (converges for |∇d| < 1)."""
    gx, gy = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    for _ in range(iterations):
        dx, dy = shift(gx, gy)
        nx, ny = x - dx, y - dy
        step = float(np.max(np.hypot(nx - gx, ny - gy))) if nx.size else 0.0
        gx, gy = nx, ny
        if step < tol_m:
            return gx, gy
    raise ValueError(
        f"inverse of the displacement field did not converge (last step {step:.3g} m): field too steep"
    )


def sar_grid_for(optical: Grid, recipe: WarpRecipe) -> Grid:
    """The SAR grid: its own pixel size, centred on the optical centre moved by the field,
    rotated."""
    res = recipe.optical_m * recipe.sar_factor
    w_m, h_m = optical.width * recipe.optical_m, optical.height * recipe.optical_m
    nx, ny = int(math.ceil(w_m / res)), int(math.ceil(h_m / res))
    cx, cy = optical.pixel_to_map(optical.width / 2, optical.height / 2)
    dx, dy = recipe.shift(np.array([cx]), np.array([cy]))
    theta = math.radians(recipe.rotation_deg)
    ca, sa = math.cos(theta), math.sin(theta)
    t = Affine(res * ca, -res * sa, 0.0, -res * sa, -res * ca, 0.0)
    ox = float(cx + dx[0]) - (t.a * nx / 2 + t.b * ny / 2)
    oy = float(cy + dy[0]) - (t.d * nx / 2 + t.e * ny / 2)
    return Grid(CRS.from_user_input(recipe.crs), Affine(t.a, t.b, ox, t.d, t.e, oy), nx, ny)


def prefilter(sar: np.ndarray, factor: float) -> np.ndarray:
    """Anti-alias the ground SAR for a ``factor``× coarser pixel (Gaussian, NaN kept)."""
    sigma = 0.5 * math.sqrt(max(factor * factor - 1.0, 0.0))
    valid = np.isfinite(sar)
    if sigma < 0.05:
        return sar
    filled = np.where(valid, sar, np.nanmedian(sar) if valid.any() else 0.0).astype(np.float32)
    out = cv2.GaussianBlur(filled, (0, 0), sigma)
    out[~valid] = np.nan
    return out


def sample_ground(ground: np.ndarray, lattice: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of a ground raster (on ``lattice``) at map points; NaN outside or near no
    data."""
    col, row = lattice.map_to_pixel(x, y)
    return cv2.remap(
        ground,
        (col - 0.5).astype(np.float32),
        (row - 0.5).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


def jittered_pixels(
    width: int, height: int, cells: int, rng: np.random.Generator, margin: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """One random integer pixel per cell of a ``cells``×``cells`` grid (rows, cols)."""
    ce = np.linspace(margin, width - margin, cells + 1)
    re = np.linspace(margin, height - margin, cells + 1)
    cols, rows = [], []
    for i in range(cells):
        for j in range(cells):
            cols.append(int(rng.integers(int(ce[j]), max(int(ce[j]) + 1, int(ce[j + 1])))))
            rows.append(int(rng.integers(int(re[i]), max(int(re[i]) + 1, int(re[i + 1])))))
    return np.asarray(rows, float), np.asarray(cols, float)


def _sar_to_file_dtype(sar: np.ndarray, dtype: str) -> tuple[np.ndarray, float | None]:
    if dtype == "uint8":
        out = np.where(np.isfinite(sar), np.clip(np.rint(sar), 1, 255), 0).astype(np.uint8)
        return out, 0.0
    return sar.astype(np.float32), float("nan")


def write_array(path: Path, grid: Grid, data: np.ndarray, nodata: float | None) -> None:
    """An in-memory (bands, H, W) array as a COG (tiled, compressed, overviews), block by block."""
    spec = CogSpec(count=data.shape[0], dtype=str(data.dtype), nodata=nodata, block=256)
    write_cog(
        path,
        grid,
        spec,
        lambda w: data[:, w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width],
    )


def _valid_at(valid: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    h, w = valid.shape
    inside = (col >= 0) & (row >= 0) & (col < w) & (row < h)
    c = np.clip(np.floor(col).astype(int), 0, w - 1)
    r = np.clip(np.floor(row).astype(int), 0, h - 1)
    return inside & valid[r, c]


def _grid_dict(g: Grid) -> dict[str, Any]:
    return {
        "crs": g.crs.to_string(),
        "transform": list(g.transform)[:6],
        "width": g.width,
        "height": g.height,
    }


def _optical_grid(pair: AlignedPair, origin: tuple[float, float], crs: str) -> Grid:
    h, w = pair.shape
    px = pair.pixel_m
    return Grid(CRS.from_user_input(crs), Affine(px, 0.0, origin[0], 0.0, -px, origin[1]), w, h)


def build_case_files(spec: CaseSpec, folder: Path) -> dict[str, Any]:
    """Write optical.tif, sar.tif, tiepoint CSVs into ``folder``; returns the case metadata."""
    pair, recipe = spec.pair, spec.recipe
    meta: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "source": pair.source,
        "note": pair.note,
        "seed": spec.seed,
        "builder_version": BUILDER_VERSION,
        "warped": recipe is not None,
        "tiepoints": {},
    }
    if recipe is None:
        # the real pair on one shared grid with its real tiepoints
        origin = (
            (pair.transform.c, pair.transform.f)
            if pair.transform is not None
            else (500000.0, 4100000.0)
        )
        optical = _optical_grid(pair, origin, pair.crs)
        sar_grid = optical
        sar = pair.sar
    else:
        optical = _optical_grid(pair, recipe.origin, recipe.crs)
        sar_grid = sar_grid_for(optical, recipe)
        xs, ys = sar_grid.pixel_centres()
        gx, gy = inverse_field(recipe.shift, xs, ys)
        sar = sample_ground(prefilter(pair.sar, recipe.sar_factor), optical, gx, gy)
        meta["recipe"] = dataclasses.asdict(recipe)
    write_array(folder / "optical.tif", optical, pair.optical, None)
    sar_file, nodata = _sar_to_file_dtype(sar, pair.sar_dtype)
    write_array(folder / "sar.tif", sar_grid, sar_file[None], nodata)
    valid = sar_file != 0 if pair.sar_dtype == "uint8" else np.isfinite(sar_file)
    meta["optical_grid"], meta["sar_grid"] = _grid_dict(optical), _grid_dict(sar_grid)
    meta["sar_valid_fraction"] = round(float(valid.mean()), 4)

    if recipe is not None:
        rows, cols = jittered_pixels(
            optical.width,
            optical.height,
            TIEPOINT_CELLS,
            np.random.default_rng(recipe.tiepoint_seed),
        )
        xo, yo = optical.pixel_to_map(cols, rows)
        dx, dy = recipe.shift(xo, yo)
        sc, sr = sar_grid.map_to_pixel(xo + dx, yo + dy)
        ok = _valid_at(valid, sc, sr)
        tp = Tiepoints(sr[ok], sc[ok], rows[ok], cols[ok])
        write_tiepoints(folder / "tiepoints.csv", tp, decimals=3)
        meta["tiepoints"]["field"] = "tiepoints.csv"
        meta["n_tiepoints"] = {"field": int(ok.sum())}
    if pair.real_tiepoints is not None:
        rt = pair.real_tiepoints
        oc, orow, scol, srow = rt[:, 0], rt[:, 1], rt[:, 2], rt[:, 3]
        if recipe is not None:
            # the real SAR feature sits at ground Y_s on the shared lattice and moves to Y_s +
            # d(Y_s)
            xg, yg = optical.pixel_to_map(scol, srow)
            dx, dy = recipe.shift(xg, yg)
            scol, srow = sar_grid.map_to_pixel(xg + dx, yg + dy)
        ok = (
            _valid_at(valid, scol, srow)
            & (oc >= 0)
            & (orow >= 0)
            & (oc < optical.width)
            & (orow < optical.height)
        )
        tp = Tiepoints(srow[ok], scol[ok], orow[ok], oc[ok])
        write_tiepoints(folder / "real_tiepoints.csv", tp, decimals=3)
        meta["tiepoints"]["real"] = "real_tiepoints.csv"
        meta.setdefault("n_tiepoints", {})["real"] = int(ok.sum())
        meta["real_tiepoints_dropped"] = int((~ok).sum())
    return meta


def _cache_key(spec: CaseSpec) -> str:
    recipe = (
        json.dumps(dataclasses.asdict(spec.recipe), sort_keys=True) if spec.recipe else "unwarped"
    )
    # the note carries how the pair was made from its source (SRIF: the rotation used)
    return f"{BUILDER_VERSION}|{spec.seed}|{spec.pair.source}|{spec.pair.note}|{spec.pair.pixel_m}|{recipe}"


def build_case(spec: CaseSpec, cases_root: Path, rebuild: bool = False) -> Case:
    """The case under ``cases_root/<name>``, built (atomically: temp folder then rename) when
    missing or stale."""
    folder = cases_root / spec.name
    meta_path = folder / "case.json"
    key = _cache_key(spec)
    if meta_path.is_file() and not rebuild:
        meta = json.loads(meta_path.read_text())
        if meta.get("cache_key") == key:
            return Case(spec.name, spec.kind, folder, bool(meta["warped"]), meta)
    cases_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=cases_root))
    try:
        meta = build_case_files(spec, tmp)
        meta["cache_key"] = key
        text = json.dumps(meta, indent=1, default=float)
        meta = json.loads(text)  # the same types as when read back from the cache
        (tmp / "case.json").write_text(text)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Case(spec.name, spec.kind, folder, bool(meta["warped"]), meta)


# ---------------------------------------------------------------- references without registration


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


def case_grids(case: Case) -> tuple[Grid, Grid]:
    def grid(d: dict[str, Any]) -> Grid:
        return Grid(CRS.from_user_input(d["crs"]), Affine(*d["transform"]), d["width"], d["height"])

    return grid(case.meta["optical_grid"]), grid(case.meta["sar_grid"])


def case_references(case: Case) -> dict[str, dict[str, dict[str, float]]]:
    """Zero and oracle-affine scores of every tiepoint set of a built case."""
    optical, sar = case_grids(case)
    return {
        k: reference_scores(read_tiepoints(p), optical, sar) for k, p in case.tiepoint_sets.items()
    }


def case_shift(case: Case) -> ShiftModel | None:
    """The known field of a warped case (None for an unwarped pair: its reference is no shift)."""
    if not case.warped:
        return None
    r = case.meta["recipe"]["shift"]
    return ShiftModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})


def case_agreement(case: Case) -> dict[str, dict[str, float]]:
    """Structural agreement (:func:`models.methods.local.structural_agreement`) of the pair under
    its reference field and
    under no shift: a reference that scores no better than no shift does not line the images up."""
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
    "AlignedPair",
    "Case",
    "CaseSpec",
    "WarpRecipe",
    "build_case",
    "case_agreement",
    "case_references",
    "draw_recipe",
    "field_shift_px",
    "load_pairs",
    "oracle_affine_shift",
    "plan_cases",
    "reference_scores",
]
