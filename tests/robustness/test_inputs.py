"""Bad and unusual inputs: one clear error line and no output, or a correct alignment."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from flows.cli import main
from samples.synth import SyntheticPair, synthesize_pair
from tests.robustness.conftest import (
    CliRun,
    error_line,
    expected_shift_px,
    files_under,
    small_spec,
)

FAST = ["--method", "global-affine", "--set", "max_keypoints=256", "--device", "cpu"]


def _derive(src: Path, dst: Path, data: np.ndarray | None = None, **profile: object) -> Path:
    """Write ``data`` (default: ``src``'s pixels) with ``src``'s profile changed by ``profile``."""
    with rasterio.open(src) as ds:
        pixels = ds.read() if data is None else data
        prof = {**ds.profile, "count": pixels.shape[0], "dtype": str(pixels.dtype), **profile}
    prof = {k: v for k, v in prof.items() if v is not None or k == "nodata"}
    with rasterio.open(dst, "w", **prof) as ds:
        ds.write(pixels)
    return dst


# --- register: bad inputs ---------------------------------------------------------------------
# Each builder returns (optical, sar, output, the path the message must name, message pattern).
Case = tuple[Path, Path, Path, Path, str]


def _missing_optical(pair: SyntheticPair, d: Path) -> Case:
    return d / "nope.tif", pair.sar, d / "out" / "d.tif", d / "nope.tif", "not found"


def _missing_sar(pair: SyntheticPair, d: Path) -> Case:
    return pair.optical, d / "nope.tif", d / "out" / "d.tif", d / "nope.tif", "not found"


def _empty_file(pair: SyntheticPair, d: Path) -> Case:
    (d / "empty.tif").write_bytes(b"")
    return d / "empty.tif", pair.sar, d / "out" / "d.tif", d / "empty.tif", "not a readable raster"


def _text_as_tif(pair: SyntheticPair, d: Path) -> Case:
    (d / "notes.tif").write_text("this is a text file, not a GeoTIFF\n")
    return pair.optical, d / "notes.tif", d / "out" / "d.tif", d / "notes.tif", "not a readable"


def _no_crs(pair: SyntheticPair, d: Path) -> Case:
    bad = _derive(pair.sar, d / "nocrs.tif", crs=None, transform=Affine.identity())
    return pair.optical, bad, d / "out" / "d.tif", bad, "no CRS"


def _optical_two_bands(pair: SyntheticPair, d: Path) -> Case:
    with rasterio.open(pair.optical) as ds:
        two = ds.read([1, 2])
    bad = _derive(pair.optical, d / "two.tif", two)
    return bad, pair.sar, d / "out" / "d.tif", bad, "2 bands"


def _sar_three_bands(pair: SyntheticPair, d: Path) -> Case:
    with rasterio.open(pair.sar) as ds:
        three = np.repeat(ds.read(), 3, axis=0)
    bad = _derive(pair.sar, d / "three.tif", three)
    return pair.optical, bad, d / "out" / "d.tif", bad, "3 bands"


def _all_nodata(pair: SyntheticPair, d: Path) -> Case:
    with rasterio.open(pair.sar) as ds:
        empty = np.full((1, ds.height, ds.width), np.nan, np.float32)
    bad = _derive(pair.sar, d / "blank.tif", empty, nodata=float("nan"))
    return pair.optical, bad, d / "out" / "d.tif", bad, "no valid pixels"


def _no_overlap(pair: SyntheticPair, d: Path) -> Case:
    with rasterio.open(pair.sar) as ds:
        far_transform = Affine.translation(10_000.0, 0.0) @ ds.transform
    far = _derive(pair.sar, d / "far.tif", transform=far_transform)
    return pair.optical, far, d / "out" / "d.tif", far, "do not overlap"


def _missing_output_folder(pair: SyntheticPair, d: Path) -> Case:
    out = d / "out" / "missing" / "d.tif"
    return pair.optical, pair.sar, out, out.parent, "does not exist"


@pytest.mark.parametrize(
    "build",
    [
        _missing_optical,
        _missing_sar,
        _empty_file,
        _text_as_tif,
        _no_crs,
        _optical_two_bands,
        _sar_three_bands,
        _all_nodata,
        _no_overlap,
        _missing_output_folder,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_register_rejects_bad_input(
    build: Callable[[SyntheticPair, Path], Case],
    small_pair: SyntheticPair,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    (tmp_path / "out").mkdir()
    optical, sar, out, named, pattern = build(small_pair, tmp_path)
    before = files_under(tmp_path)
    code, err = cli("register", optical, sar, "-o", out, "--method", "zero", "--no-progress")
    assert code == 2
    message = error_line(err, "register")
    assert re.search(pattern, message), message
    assert str(named) in message, message
    assert files_under(tmp_path) == before  # no output, no hidden temporary, inputs untouched


# --- score: malformed tiepoint CSVs -----------------------------------------------------------
HEADER = "sar_row,sar_col,optical_row,optical_col"
GOOD = ["100,100,100,100", "120,90,110,95"]
TIEPOINT_CASES = {
    # name: (file content, or None for no file; message pattern)
    "missing_file": (None, "not found"),
    "empty_file": ("", "is empty"),
    "header_only": (HEADER + "\n", "no tiepoints"),
    "missing_header": ("\n".join(GOOD) + "\n", "header"),
    "wrong_header": ("row,col,x,y\n" + "\n".join(GOOD) + "\n", "header"),
    "semicolon_separator": (HEADER.replace(",", ";") + "\n100;100;100;100\n", "header"),
    "extra_column": (f"{HEADER}\n{GOOD[0]}\n{GOOD[1]},7\n", "line 3: expected 4 values, got 5"),
    "missing_column": (f"{HEADER}\n{GOOD[0]}\n120,90,110\n", "line 3: expected 4 values, got 3"),
    "non_numeric": (f"{HEADER}\n{GOOD[0]}\n120,ninety,110,95\n", "line 3: non-numeric"),
    "nan_value": (f"{HEADER}\n{GOOD[0]}\nnan,90,110,95\n", "line 3: non-finite"),
    "inf_value": (f"{HEADER}\n{GOOD[0]}\n120,inf,110,95\n", "line 3: non-finite"),
    "negative_index": (f"{HEADER}\n{GOOD[0]}\n120,90,-4,95\n", "outside the optical image"),
    "out_of_bounds": (f"{HEADER}\n{GOOD[0]}\n120,5000,110,95\n", "outside the sar image"),
    "conflicting_duplicate": (
        f"{HEADER}\n{GOOD[0]}\n{GOOD[1]}\n121,90,110,95\n",
        "two different SAR pixels",
    ),
}


@pytest.fixture(scope="module")
def zero_map(small_pair: SyntheticPair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SN9-shaped displacement map (zeros) on the small pair's optical grid."""
    with rasterio.open(small_pair.optical) as ds:
        shape = (2, ds.height, ds.width)
    path = tmp_path_factory.mktemp("zero-map") / "zero.tif"
    return _derive(small_pair.optical, path, np.zeros(shape, np.float32), nodata=float("nan"))


@pytest.mark.parametrize("case", list(TIEPOINT_CASES))
def test_score_rejects_malformed_tiepoints(
    case: str, small_pair: SyntheticPair, zero_map: Path, tmp_path: Path, cli: CliRun
) -> None:
    content, pattern = TIEPOINT_CASES[case]
    csv = tmp_path / "tiepoints.csv"
    if content is not None:
        csv.write_text(content)
    before = files_under(tmp_path)
    residuals = tmp_path / "residuals.csv"
    code, err = cli(
        "score", zero_map, small_pair.optical, small_pair.sar, csv, "--residuals", residuals
    )
    assert code == 2
    message = error_line(err, "score")
    assert re.search(pattern, message), message
    assert str(csv) in message, message
    assert files_under(tmp_path) == before


def test_score_keeps_exact_duplicate_rows(
    small_pair: SyntheticPair,
    zero_map: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the real SN9 training CSVs repeat rows and the SN9 scorer counts each repeat
    csv = tmp_path / "tiepoints.csv"
    csv.write_text(f"{HEADER}\n{GOOD[0]}\n{GOOD[1]}\n{GOOD[1]}\n")
    code = main(
        ["score", str(zero_map), str(small_pair.optical), str(small_pair.sar), str(csv)]
        + ["--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["tiepoints"] == 3


# --- register: unusual but valid SAR inputs ---------------------------------------------------
def _rotated(pair: SyntheticPair, d: Path) -> SyntheticPair:
    return synthesize_pair(d, small_spec(sar_rotation_deg=30.0), "rot30")


def _float32_nan(pair: SyntheticPair, d: Path) -> SyntheticPair:
    return pair


def _with_sar(pair: SyntheticPair, sar: Path) -> SyntheticPair:
    return SyntheticPair(
        pair.optical, sar, pair.tiepoints, pair.spec, pair.optical_grid, pair.sar_grid
    )


def _amplitude(pair: SyntheticPair) -> np.ndarray:
    with rasterio.open(pair.sar) as ds:
        return ds.read(1)


def _uint16(pair: SyntheticPair, d: Path) -> SyntheticPair:
    amp = _amplitude(pair)
    ok = np.isfinite(amp)
    scaled = np.clip(np.where(ok, amp, 0) / np.nanmax(amp) * 60000, 1, 65535)
    u16 = np.where(ok, scaled, 0).astype(np.uint16)[None]
    return _with_sar(pair, _derive(pair.sar, d / "sar_u16.tif", u16, nodata=0))


def _decibel(pair: SyntheticPair, d: Path) -> SyntheticPair:
    db = (20 * np.log10(np.maximum(_amplitude(pair), 1e-6))).astype(np.float32)[None]
    return _with_sar(pair, _derive(pair.sar, d / "sar_db.tif", db))


def _nan_without_nodata_tag(pair: SyntheticPair, d: Path) -> SyntheticPair:
    amp = _amplitude(pair)[None]
    return _with_sar(pair, _derive(pair.sar, d / "sar_nan.tif", amp, nodata=None))


def _other_utm_zone(pair: SyntheticPair, d: Path) -> SyntheticPair:
    """The SAR reprojected from UTM zone 37 (the optical's) to zone 36."""
    amp = _amplitude(pair)
    with rasterio.open(pair.sar) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:32636", src.width, src.height, *src.bounds
        )
        out = np.full((height, width), np.nan, np.float32)
        reproject(
            amp,
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=transform,
            dst_crs="EPSG:32636",
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    sar = _derive(
        pair.sar,
        d / "sar_z36.tif",
        out[None],
        crs="EPSG:32636",
        transform=transform,
        width=width,
        height=height,
    )
    return _with_sar(pair, sar)


@pytest.mark.parametrize(
    "build",
    [_rotated, _other_utm_zone, _float32_nan, _uint16, _decibel, _nan_without_nodata_tag],
    ids=lambda f: f.__name__.strip("_"),
)
def test_register_aligns_unusual_sar(
    build: Callable[[SyntheticPair, Path], SyntheticPair],
    small_pair: SyntheticPair,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    pair = build(small_pair, tmp_path)
    out = tmp_path / "out" / "d.tif"
    out.parent.mkdir()
    code, err = cli("register", pair.optical, pair.sar, "-o", out, *FAST, "--no-progress")
    assert code == 0, err
    assert files_under(out.parent) == ["d.tif"]
    with rasterio.open(out) as ds, rasterio.open(pair.optical) as opt:
        assert (ds.count, ds.dtypes[0]) == (2, "float32")
        assert (ds.crs, ds.transform, ds.shape) == (opt.crs, opt.transform, opt.shape)
        dx, dy = ds.read(1), ds.read(2)
    want_dx, want_dy = expected_shift_px(pair.spec)
    assert abs(float(np.nanmedian(dx)) - want_dx) < 1.0, (np.nanmedian(dx), want_dx)
    assert abs(float(np.nanmedian(dy)) - want_dy) < 1.0, (np.nanmedian(dy), want_dy)
