"""global-affine on generated pairs with known fields, the fallback, and the real CFOG pair."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from core.errors import InputError
from models.methods.base import RegistrationInput, make_config
from models.methods.global_affine import GlobalAffineConfig
from models.registration import register, write_displacement
from models.scoring import Tiepoints, read_tiepoints, score_displacement
from tests.conftest import shared_path, write_geotiff


def score(pair, result, tmp_path, tiepoints=None, rounding=False):
    out = write_displacement(result.field, pair.optical.grid, tmp_path / "d.tif").displacement
    tp = tiepoints or read_tiepoints(pair.tiepoints_path)
    return score_displacement(
        out, tp, pair.optical.grid, pair.sar.grid, rounding=rounding
    ).summary()


def test_affine_recovered_within_one_pixel(luminance_pair, tmp_path):
    pair = luminance_pair.open()
    result = register(pair, "global-affine", {"inlier_threshold_m": "1.0"})
    assert result.inliers >= 30
    s = score_displacement(
        write_displacement(result.field, pair.optical.grid, tmp_path / "d.tif").displacement,
        read_tiepoints(luminance_pair.tiepoints),
        pair.optical.grid,
        pair.sar.grid,
        rounding=False,
    ).summary()
    assert s["mean_px"] < 1.0, s


def test_radar_pair_improves_on_zero(radar_pair, tmp_path):
    pair = radar_pair.open()
    tp = read_tiepoints(radar_pair.tiepoints)
    res = {}
    for method in ("zero", "global-affine"):
        r = register(pair, method)
        out = write_displacement(
            r.field, pair.optical.grid, tmp_path / f"{method}.tif"
        ).displacement
        res[method] = score_displacement(out, tp, pair.optical.grid, pair.sar.grid).summary()[
            "mean_px"
        ]
    assert res["global-affine"] < 0.3 * res["zero"], res


def test_too_few_matches_falls_back_to_zero(tmp_path):
    # a featureless pair: no keypoints, no crash, zero shift with confidence 0 and a warning
    def write(p, count, transform):
        return str(write_geotiff(p, np.full((count, 200, 200), 120, np.uint8), transform))

    o = write(tmp_path / "o.tif", 3, Affine(0.5, 0, 377000, 0, -0.5, 4106000))
    s = write(tmp_path / "s.tif", 1, Affine(0.6, 0, 376990, 0, -0.6, 4106010))
    pair = RegistrationInput.open(o, s, "cpu")
    r = register(pair, "global-affine")
    assert r.warnings and "falling back to zero shift" in r.warnings[0]
    assert np.all(r.field.dx == 0) and np.all(r.field.confidence == 0)


def test_config_merging_and_errors():
    conf = make_config(GlobalAffineConfig, {"max_side": "512", "features": "disk"})
    assert (
        conf.max_side == 512
        and conf.features == "disk"
        and conf.inlier_threshold_m == GlobalAffineConfig().inlier_threshold_m
    )
    with pytest.raises(InputError, match="unknown setting"):
        make_config(GlobalAffineConfig, {"nope": "1"})
    with pytest.raises(InputError, match="choose one of"):
        make_config(GlobalAffineConfig, {"features": "sift"})
    with pytest.raises(InputError, match="expected int"):
        make_config(GlobalAffineConfig, {"max_side": "big"})


def cfog_case(tmp_path, shift_m=(23.0, -17.0), res=1.0):
    """The real CFOG pair georeferenced on one grid, the SAR grid moved by a known shift."""
    opt_src = shared_path("pairs", "cfog", "visible1_ref.tif")
    sar_src = shared_path("pairs", "cfog", "SAR1_sen.tif")
    cps = np.loadtxt(shared_path("pairs", "cfog", "visibleToSAR1_CP.txt"))
    x0, y0 = 500000.0, 4100000.0
    paths = {}
    for name, src, dx, dy in (
        ("optical", opt_src, 0.0, 0.0),
        ("sar", sar_src, shift_m[0], shift_m[1]),
    ):
        with rasterio.open(src) as ds:
            data = ds.read()
        p = tmp_path / f"cfog_{name}.tif"
        with rasterio.open(
            p,
            "w",
            driver="GTiff",
            width=data.shape[2],
            height=data.shape[1],
            count=data.shape[0],
            dtype=data.dtype,
            crs="EPSG:32637",
            transform=Affine(res, 0, x0 + dx, 0, -res, y0 + dy),
        ) as ds:
            ds.write(data)
        paths[name] = str(p)
    # CP columns: ref_x ref_y sen_x sen_y, 1-based (MATLAB)
    tp = Tiepoints(
        cps[:, 3] - 1, cps[:, 2] - 1, cps[:, 1] - 1, cps[:, 0] - 1, "visibleToSAR1_CP.txt"
    )
    return paths, tp


def test_real_cfog_pair_known_shift(tmp_path):
    paths, tp = cfog_case(tmp_path)
    pair = RegistrationInput.open(paths["optical"], paths["sar"], "cpu")
    r = register(pair, "global-affine")
    out = write_displacement(r.field, pair.optical.grid, tmp_path / "d.tif").displacement
    s = score_displacement(out, tp, pair.optical.grid, pair.sar.grid, rounding=False).summary()
    zero = score_displacement(
        write_displacement(
            register(pair, "zero").field, pair.optical.grid, tmp_path / "z.tif"
        ).displacement,
        tp,
        pair.optical.grid,
        pair.sar.grid,
        rounding=False,
    ).summary()
    assert zero["mean_px"] > 25
    assert s["mean_px"] < 3.0, s
