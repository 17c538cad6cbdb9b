"""The pre-aligned real optical/SAR pairs (CFOG, VSFF, SRIF, BigEarthNet) cases are made from."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio
from affine import Affine

from bench.srif import SrifCheck, check_srif_gt, sar_chip_valid
from core.errors import InputError
from core.files import atomic_path
from models.preprocess import optical_to_gray

SRIF_CHECK_VERSION = "1"  # bump when bench.srif changes what it finds

# Optical pixel size given to each dataset. CFOG/SRIF/VSFF get Maxar-like sizes so that
# the methods' metre-valued settings are exercised in the product's regime (their native
# GSDs are coarser: VSFF is about 5 m); BigEarthNet keeps its real 10 m grid.
DATASET_PIXEL_M: dict[str, float] = {"cfog": 1.0, "vsff": 0.5, "srif": 1.0, "bigearthnet": 10.0}
KINDS: tuple[str, ...] = ("cfog", "vsff", "srif", "bigearthnet")


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
class Skipped:
    """A source left out of the benchmark, and why."""

    source: str
    reason: str


def read_image(path: Path) -> np.ndarray:
    """All bands of an image file (GeoTIFF or JPEG/PNG) as (bands, H, W)."""
    if not path.is_file():
        raise InputError(
            f"benchmark source {path} is missing; check ../shared/data/pairs (see its README)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read()


def _check_one_lattice(dataset: str, optical: np.ndarray, sar: np.ndarray) -> None:
    """InputError unless the pre-aligned optical and SAR arrays (bands, rows, cols) are the same
    size."""
    if optical.shape[1:] != sar.shape[1:]:
        raise InputError(
            f"{dataset} optical {optical.shape[1:]} and SAR {sar.shape[1:]} differ in size; "
            "expected one lattice"
        )


def load_cfog(folder: Path) -> AlignedPair:
    """CFOG: 600² optical/SAR, 145 real tiepoints (``ref_x ref_y sen_x sen_y``, MATLAB 1-based)."""
    optical = read_image(folder / "visible1_ref.tif")
    sar = read_image(folder / "SAR1_sen.tif")
    cp_path = folder / "visibleToSAR1_CP.txt"
    try:
        cp = np.loadtxt(cp_path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"CFOG tiepoints {cp_path} unreadable ({exc}); "
            "expected 4 columns ref_x ref_y sen_x sen_y"
        ) from exc
    if cp.shape[1] != 4:
        raise InputError(
            f"CFOG tiepoints {cp_path} have {cp.shape[1]} columns; "
            "expected 4 (ref_x ref_y sen_x sen_y)"
        )
    _check_one_lattice("CFOG", optical, sar)
    # MATLAB pixel coordinates put pixel centres at 1, 2, ...: the corner convention is x - 0.5
    return AlignedPair(
        "cfog",
        "cfog",
        optical,
        optical_to_gray(sar),
        "uint8",
        DATASET_PIXEL_M["cfog"],
        real_tiepoints=cp - 0.5,
        source=str(folder),
    )


def load_vsff(folder: Path) -> AlignedPair:
    """VSFF: one pre-aligned 1000² GF-1 RGB / GF-3 SAR pair."""
    optical = read_image(folder / "optical" / "WHU-OPT-SAR.tif")
    sar = read_image(folder / "sar" / "WHU-OPT-SAR.tif")
    _check_one_lattice("VSFF", optical, sar)
    return AlignedPair(
        "vsff",
        "vsff",
        optical[:3],
        optical_to_gray(sar),
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
    s = optical_to_gray(sar)
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


def _read_check_cache(cache: Path | None) -> dict[str, Any]:
    if cache is None or not cache.is_file():
        return {}
    try:
        return json.loads(cache.read_text())
    except ValueError:
        return {}


def _srif_checks(
    folder: Path, numbers: list[int], cache: Path | None, log: Callable[[str], None]
) -> dict[int, SrifCheck | str]:
    """Each pair's ground-truth check (or why it could not be read), reusing ``cache`` where the
    files are unchanged."""
    stored = _read_check_cache(cache)
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
            optical, sar = (optical_to_gray(read_image(files[k])) for k in (1, 2))
            out[n] = check_srif_gt(optical, sar, gt)
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


def _srif_pair(folder: Path, n: int, check: SrifCheck, min_coverage: float) -> AlignedPair | str:
    """SRIF pair ``n`` resampled with its checked rotation, or why it is left out."""
    if not check.verified:
        return f"ground truth unverifiable: {check.reason} (the matrix says {check.gt_deg:.0f}°)"
    optical = read_image(folder / f"pair{n}_1.jpg")
    if optical.shape[0] >= 3:
        optical = optical[:3]
    resampled = srif_resample(
        optical, read_image(folder / f"pair{n}_2.jpg"), np.array(check.matrix)
    )
    coverage = float(np.isfinite(resampled).mean())
    if coverage < min_coverage:
        return f"only {coverage:.0%} of the optical chip lands on valid SAR"
    return AlignedPair(
        f"srif-{n:02d}",
        "srif",
        optical,
        resampled,
        "uint8",
        DATASET_PIXEL_M["srif"],
        source=str(folder / f"pair{n}_1.jpg"),
        note=(
            f"SAR coverage {coverage:.0%}; rotation {check.found_deg:.2f}° "
            f"(matrix {check.gt_deg:.0f}°, mutual information {check.mi_deg:.0f}°), "
            f"shift {check.shift_px[0]:.2f}, {check.shift_px[1]:.2f} px"
        ),
    )


def load_srif(
    folder: Path,
    min_coverage: float = 0.75,
    checks: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[list[AlignedPair], list[Skipped]]:
    """SRIF: every ``pairN`` whose rotation is verified, resampled onto its optical chip.

    The shipped matrices are checked first (:mod:`bench.srif`); each pair is resampled
    with the rotation its images agree on, and skipped when the two similarity measures
    disagree. Also skipped: a chip of which less than ``min_coverage`` lands on valid SAR
    pixels.

    Args:
        folder: The SRIF folder (``gt_N.txt``, ``pairN_1.jpg``, ``pairN_2.jpg``).
        min_coverage: The least fraction of the optical chip that must land on valid SAR.
        checks: A JSON file caching the checks, keyed by the files' content (None: no cache).
        log: Progress messages.
    """
    pairs, skipped = [], []
    numbers = sorted(
        int(p.stem.split("_")[1]) for p in folder.glob("gt_*.txt") if p.stem.split("_")[1].isdigit()
    )
    for n, check in _srif_checks(folder, numbers, checks, log).items():
        made = check if isinstance(check, str) else _srif_pair(folder, n, check, min_coverage)
        if isinstance(made, str):
            skipped.append(Skipped(f"srif pair{n}", made))
        else:
            pairs.append(made)
    return pairs, skipped


def _bigearthnet_pair(d: Path, s2: Path) -> AlignedPair | str:
    """One BigEarthNet patch pair (S1 folder ``d``, matching S2 folder ``s2``), or why not."""
    key = "_".join(d.name.split("_")[-2:])
    vv = d / f"{d.name}_VV.tif"
    if not vv.is_file():
        return "no matching S2 patch or no VV band"
    bands = [s2 / f"{s2.name}_{b}.tif" for b in ("B04", "B03", "B02")]
    if not all(b.is_file() for b in bands):
        return "S2 B04/B03/B02 missing"
    with rasterio.open(vv) as ds:
        sar, crs, transform = ds.read(1).astype(np.float32), ds.crs, ds.transform
    optical = np.stack([read_image(b)[0] for b in bands])
    if optical.shape[1:] != sar.shape:
        return "S1 and S2 patch sizes differ"
    return AlignedPair(
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


def load_bigearthnet(folder: Path) -> tuple[list[AlignedPair], list[Skipped]]:
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
        made = _bigearthnet_pair(d, s2[key]) if key in s2 else "no matching S2 patch or no VV band"
        if isinstance(made, str):
            skipped.append(Skipped(f"bigearthnet {d.name}", made))
        else:
            pairs.append(made)
    return pairs, skipped


def load_pairs(
    root: Path,
    kinds: tuple[str, ...] = KINDS,
    work: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, list[AlignedPair]], list[Skipped]]:
    """The pre-aligned pairs of each kind found under ``root``; absent kinds are skipped.

    Sources (../shared/data/pairs, see its README): CFOG (600² pair, real tiepoints),
    VSFF (1000² pair), SRIF (40 unaligned pairs, resampled with their checked rotation),
    BigEarthNet (120² Sentinel-1 VV / Sentinel-2 RGB patches).

    Args:
        root: A ``pairs/`` folder with ``cfog/``, ``vsff/``, ``srif/``, ``bigearthnet/``.
        kinds: The kinds to load.
        work: Where the SRIF ground-truth checks are cached (``srif-checks.json``).
        log: Progress messages.
    """
    if not root.is_dir():
        raise InputError(
            f"benchmark data folder {root} not found; give --data (the ../shared/data/pairs folder)"
        )
    checks = work / "srif-checks.json" if work else None
    loaders: dict[str, Callable[[Path], tuple[list[AlignedPair], list[Skipped]]]] = {
        "cfog": lambda p: ([load_cfog(p)], []),
        "vsff": lambda p: ([load_vsff(p)], []),
        "srif": lambda p: load_srif(p, checks=checks, log=log),
        "bigearthnet": load_bigearthnet,
    }
    out: dict[str, list[AlignedPair]] = {}
    skipped: list[Skipped] = []
    for kind in kinds:
        folder = root / kind
        if not folder.is_dir():
            skipped.append(Skipped(kind, f"{folder} not present"))
            continue
        found, skip = loaders[kind](folder)
        out[kind] = found
        skipped.extend(skip)
    return out, skipped


__all__ = [
    "DATASET_PIXEL_M",
    "KINDS",
    "AlignedPair",
    "Skipped",
    "load_bigearthnet",
    "load_cfog",
    "load_pairs",
    "load_srif",
    "load_vsff",
    "read_image",
    "srif_resample",
]
