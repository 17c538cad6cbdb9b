"""Building benchmark cases on disk: the warped SAR, both COGs, tiepoint CSVs and ``case.json``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from affine import Affine
from pyproj import CRS

from bench.cases import Case, CaseSpec, WarpRecipe, grid_dict
from bench.pairs import AlignedPair
from core.files import current_umask
from core.grid import Grid
from models.cog import CogSpec, write_cog
from models.sampling import sample_array
from models.scoring import Tiepoints, write_tiepoints
from samples.synth import ShiftModel

BUILDER_VERSION = "2"  # bump when the files a recipe builds change
TIEPOINT_CELLS = 12  # jittered grid of TIEPOINT_CELLS² optical pixels


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
        f"inverse of the displacement field did not converge (last step {step:.3g} m): "
        "field too steep"
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


def _optical_grid(pair: AlignedPair, origin: tuple[float, float], crs: str) -> Grid:
    h, w = pair.shape
    px = pair.pixel_m
    return Grid(CRS.from_user_input(crs), Affine(px, 0.0, origin[0], 0.0, -px, origin[1]), w, h)


def _case_images(pair: AlignedPair, recipe: WarpRecipe | None) -> tuple[Grid, Grid, np.ndarray]:
    """Optical grid, SAR grid and the SAR seen on it (float32, NaN = no data).

    The SAR shows, at map point ``X``, the ground at ``Y`` with ``Y + d(Y) = X`` for the
    recipe's field ``d``; without a recipe, the real pair on one shared grid.
    """
    if recipe is None:
        origin = (
            (pair.transform.c, pair.transform.f)
            if pair.transform is not None
            else (500000.0, 4100000.0)
        )
        optical = _optical_grid(pair, origin, pair.crs)
        return optical, optical, pair.sar
    optical = _optical_grid(pair, recipe.origin, recipe.crs)
    sar_grid = sar_grid_for(optical, recipe)
    xs, ys = sar_grid.pixel_centres()
    gx, gy = inverse_field(recipe.shift, xs, ys)
    return optical, sar_grid, sample_array(prefilter(pair.sar, recipe.sar_factor), optical, gx, gy)


def _write_field_tiepoints(
    path: Path, optical: Grid, sar_grid: Grid, recipe: WarpRecipe, valid: np.ndarray
) -> int:
    """Jittered optical pixels mapped through the field, kept where the SAR has data; how many."""
    rows, cols = jittered_pixels(
        optical.width, optical.height, TIEPOINT_CELLS, np.random.default_rng(recipe.tiepoint_seed)
    )
    xo, yo = optical.pixel_to_map(cols, rows)
    dx, dy = recipe.shift(xo, yo)
    sc, sr = sar_grid.map_to_pixel(xo + dx, yo + dy)
    ok = _valid_at(valid, sc, sr)
    write_tiepoints(path, Tiepoints(sr[ok], sc[ok], rows[ok], cols[ok]), decimals=3)
    return int(ok.sum())


def _write_real_tiepoints(
    path: Path,
    real: np.ndarray,
    optical: Grid,
    sar_grid: Grid,
    recipe: WarpRecipe | None,
    valid: np.ndarray,
) -> tuple[int, int]:
    """The pair's real tiepoints, moved through the field when warped; (kept, dropped)."""
    oc, orow, scol, srow = real[:, 0], real[:, 1], real[:, 2], real[:, 3]
    if recipe is not None:
        # the real SAR feature sits at ground Y_s on the shared lattice and moves to Y_s + d(Y_s)
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
    write_tiepoints(path, Tiepoints(srow[ok], scol[ok], orow[ok], oc[ok]), decimals=3)
    return int(ok.sum()), int((~ok).sum())


def build_case_files(spec: CaseSpec, folder: Path) -> dict[str, Any]:
    """Write optical.tif, sar.tif, tiepoint CSVs into ``folder``; returns the case metadata."""
    pair, recipe = spec.pair, spec.recipe
    assert pair is not None, "a case built from a pair has one"
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
    optical, sar_grid, sar = _case_images(pair, recipe)
    if recipe is not None:
        meta["recipe"] = dataclasses.asdict(recipe)
    write_array(folder / "optical.tif", optical, pair.optical, None)
    sar_file, nodata = _sar_to_file_dtype(sar, pair.sar_dtype)
    write_array(folder / "sar.tif", sar_grid, sar_file[None], nodata)
    valid = sar_file != 0 if pair.sar_dtype == "uint8" else np.isfinite(sar_file)
    meta["optical_grid"], meta["sar_grid"] = grid_dict(optical), grid_dict(sar_grid)
    meta["sar_valid_fraction"] = round(float(valid.mean()), 4)
    if recipe is not None:
        n = _write_field_tiepoints(folder / "tiepoints.csv", optical, sar_grid, recipe, valid)
        meta["tiepoints"]["field"] = "tiepoints.csv"
        meta["n_tiepoints"] = {"field": n}
    if pair.real_tiepoints is not None:
        kept, dropped = _write_real_tiepoints(
            folder / "real_tiepoints.csv", pair.real_tiepoints, optical, sar_grid, recipe, valid
        )
        meta["tiepoints"]["real"] = "real_tiepoints.csv"
        meta.setdefault("n_tiepoints", {})["real"] = kept
        meta["real_tiepoints_dropped"] = dropped
    return meta


def _build_files(spec: CaseSpec, folder: Path) -> dict[str, Any]:
    """The case's files: simulated for an ``urban`` case, otherwise made from its pair."""
    if spec.urban is not None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from bench.urban import build_urban_files

        # the simulation peaks at GBs: in a fresh process, so the bench process stays small (a
        # worker forked from it inherits its peak in ru_maxrss)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            meta = pool.submit(build_urban_files, spec.urban, folder).result()
        meta.update(name=spec.name, kind=spec.kind, seed=spec.seed)
        return meta
    return build_case_files(spec, folder)


def cached_meta(folder: Path, key: str, rebuild: bool) -> dict[str, Any] | None:
    """The ``case.json`` of a case folder built with cache key ``key``; None if absent or stale."""
    meta_path = folder / "case.json"
    if meta_path.is_file() and not rebuild:
        meta = json.loads(meta_path.read_text())
        if meta.get("cache_key") == key:
            return meta
    return None


def write_case_folder(
    folder: Path, key: str, build: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """Build a case folder atomically: ``build`` fills a temporary sibling, renamed onto ``folder``.

    The folder gets the mode a plain ``mkdir`` would give it (``0o777`` less the umask);
    ``mkdtemp`` alone would leave it ``0o700``.

    Args:
        folder: The case folder to (re)place.
        key: The cache key stored in ``case.json``.
        build: Writes the case files into the folder it is given; returns the metadata.

    Returns:
        The metadata as written to ``case.json`` (with the types it has when read back).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        meta = build(tmp)
        meta["cache_key"] = key
        text = json.dumps(meta, indent=1, default=float)
        (tmp / "case.json").write_text(text)
        os.chmod(tmp, 0o777 & ~current_umask())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(text)


def _cache_key(spec: CaseSpec) -> str:
    if spec.urban is not None:
        from bench.urban import URBAN_VERSION

        scene = json.dumps(dataclasses.asdict(spec.urban), sort_keys=True)
        return f"urban-{URBAN_VERSION}|{spec.seed}|{scene}"
    recipe = (
        json.dumps(dataclasses.asdict(spec.recipe), sort_keys=True) if spec.recipe else "unwarped"
    )
    # the note carries how the pair was made from its source (SRIF: the rotation used)
    pair = spec.pair
    assert pair is not None
    return f"{BUILDER_VERSION}|{spec.seed}|{pair.source}|{pair.note}|{pair.pixel_m}|{recipe}"


def build_case(spec: CaseSpec, cases_root: Path, rebuild: bool = False) -> Case:
    """The case under ``cases_root/<name>``, built (:func:`write_case_folder`) if missing or stale.

    Args:
        spec: The case to build.
        cases_root: The folder holding every case folder.
        rebuild: Build even when an up-to-date case is cached.
    """
    folder = cases_root / spec.name
    key = _cache_key(spec)
    meta = cached_meta(folder, key, rebuild)
    if meta is None:
        meta = write_case_folder(folder, key, lambda tmp: _build_files(spec, tmp))
    return Case(spec.name, spec.kind, folder, bool(meta["warped"]), meta)


__all__ = [
    "BUILDER_VERSION",
    "build_case",
    "build_case_files",
    "cached_meta",
    "inverse_field",
    "jittered_pixels",
    "prefilter",
    "write_case_folder",
]
