"""Tests of the parts of the `local` method: tiles, template matching, dense step, schedule."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from core.grid import north_up_grid
from models.areamatch import cfog, consistent, match_templates, neighbour_median, second_peak
from models.displacement import DisplacementField
from models.methods.base import RegistrationInput, make_config
from models.methods.local import LocalConfig, LocalMethod
from models.methods.local.dense import (
    choose_sigma,
    dense_residual,
    held_out_errors,
    residual_trend,
)
from models.methods.local.schedule import (
    Pass,
    level_schedule,
)
from models.methods.local.tiles import TileJob, match_tile
from models.sar_adaptive import adaptive_sar, choose_mode, tile_stats


def _tile_job(pair, grid, fld):
    return TileJob(
        pair.optical,
        pair.sar,
        grid,
        (24, 24, grid.width - 24, grid.height - 24),
        fld,
        32,
        16,
        6,
        LocalConfig().descriptor_sigma_px,
    )


def test_tile_at_nodata_border_and_tile_without_texture(tmp_path):
    crs = "EPSG:32637"
    rng = np.random.default_rng(0)
    texture = (rng.random((1, 300, 300)) * 255).astype(np.uint8)
    flat = np.full((3, 300, 300), 128, np.uint8)
    kw = dict(
        driver="GTiff",
        width=300,
        height=300,
        dtype="uint8",
        crs=crs,
        transform=Affine(1, 0, 0, 0, -1, 300),
    )
    with rasterio.open(tmp_path / "flat.tif", "w", count=3, **kw) as ds:
        ds.write(flat)
    sar = texture.copy()
    sar[:, :, 150:] = 0  # right half no data
    with rasterio.open(tmp_path / "sar.tif", "w", count=1, nodata=0, **kw) as ds:
        ds.write(sar)
    pair = RegistrationInput.open(str(tmp_path / "flat.tif"), str(tmp_path / "sar.tif"), "cpu")
    fld = DisplacementField.constant(north_up_grid(pair.crs, (0, 0, 300, 300), 10.0))
    # featureless optical: no template is matched, nothing crashes
    job = _tile_job(pair, north_up_grid(pair.crs, (0, 0, 140, 140), 1.0), fld)
    assert len(match_tile(job).x) == 0
    # a tile wholly in the SAR no-data half
    job = _tile_job(pair, north_up_grid(pair.crs, (160, 0, 300, 140), 1.0), fld)
    res = match_tile(job)
    assert len(res.x) == 0 and res.sar_mode == "empty"
    # the whole method: no matches anywhere → warnings, zero field, no crash
    result = LocalMethod().run(pair, make_config(LocalConfig, {"global_prior": "false"}))
    assert result.warnings
    assert np.all(result.field.dx == 0)


def test_template_matching_finds_known_shift_and_rejects_outliers():
    rng = np.random.default_rng(3)
    import cv2

    img = cv2.GaussianBlur(rng.random((200, 200)).astype(np.float32), (0, 0), 2)
    shifted = np.roll(np.roll(img, 2, axis=1), -3, axis=0)
    cc, rr = np.meshgrid(np.arange(40, 160, 16), np.arange(40, 160, 16))
    centres = np.column_stack([cc.ravel(), rr.ravel()]).astype(float)
    m = match_templates(cfog(img), cfog(shifted), centres, 32, 5)
    np.testing.assert_allclose(m.shifts, np.tile([2.0, -3.0], (len(m), 1)), atol=0.05)
    vectors = m.shifts.copy()
    vectors[5] += (4.0, 4.0)
    ok = consistent(m.centres, vectors, tolerance=1.0)
    assert not ok[5] and ok.sum() == len(m) - 1


def test_template_matching_is_the_same_in_any_chunk_of_shifts(monkeypatch):
    import cv2

    from models import areamatch

    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.random((200, 200)).astype(np.float32), (0, 0), 2)
    moved = np.roll(np.roll(img, -1, axis=1), 2, axis=0) + rng.normal(0, 0.01, img.shape)
    cc, rr = np.meshgrid(np.arange(40, 160, 16), np.arange(40, 160, 16))
    centres = np.column_stack([cc.ravel(), rr.ravel()]).astype(float)
    descs = cfog(img), cfog(moved.astype(np.float32))
    whole = match_templates(*descs, centres, 32, 6)
    # 49 templates: 100 pairs is two shifts per chunk, 169 shifts in 85 chunks
    monkeypatch.setattr(areamatch, "SHIFT_CHUNK", 100)
    chunked = match_templates(*descs, centres, 32, 6)
    assert len(whole) == len(centres)
    for name in ("shifts", "peak", "margin", "centres"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_dense_residual_interpolates_and_follows_the_trend_beyond_support():
    grid = north_up_grid("EPSG:32637", (0, 0, 1000, 1000), 10.0)
    xs, ys = np.meshgrid(np.arange(300, 700, 40.0), np.arange(300, 700, 40.0))
    x, y = xs.ravel(), ys.ravel()
    # a residual that grows eastwards: 2 m at x = 300, 2.8 m at x = 700 (0.002 m/m)
    rx, ry = 2.0 + 0.002 * (x - 300), np.full(len(x), -1.0)
    for method in ("gaussian", "tps"):
        rdx, rdy = dense_residual(grid, x, y, rx, ry, np.ones(len(x)), 60.0, method)
        assert rdx[50, 50] == pytest.approx(2.4, abs=0.3) and rdy[50, 50] == pytest.approx(
            -1.0, abs=0.2
        )
        # no support at the borders: the shift carries on along the points' trend instead of
        # decaying to zero,
        # and the trend stops a quarter of the points' extent beyond them (x = 210 and x = 750: 1.82
        # and 2.9 m,
        # a little flatter because the ridge shrinks the slope towards a translation)
        assert rdy[2, 2] == pytest.approx(-1.0, abs=0.05) and rdy[97, 97] == pytest.approx(
            -1.0, abs=0.05
        )
        assert rdx[50, 2] == pytest.approx(1.85, abs=0.1) and rdx[50, 97] == pytest.approx(
            2.85, abs=0.1
        )
        assert rdx[50, 0] == pytest.approx(
            rdx[50, 5], abs=0.01
        )  # clamped: no further extrapolation


@pytest.mark.parametrize("chunk", [1, 1_000_000])  # the near pairs one at a time, or at once
def test_held_out_prediction_leaves_out_the_near_points_exactly(monkeypatch, chunk):
    from scipy.ndimage import gaussian_filter

    monkeypatch.setattr("models.methods.local.dense.PAIR_CHUNK", chunk)
    rng = np.random.default_rng(3)
    r, c = rng.integers(0, 40, 60), rng.integers(0, 40, 60)
    q, dx, dy = rng.uniform(0.2, 1.0, 60), rng.normal(0, 1, 60), rng.normal(0, 1, 60)
    near = np.array([[0, 1], [0, 2], [5, 7]])
    err = held_out_errors((40, 40), r, c, q, dx, dy, 3.0, near)
    for i, out in ((0, [0, 1, 2]), (5, [5, 7]), (9, [9])):
        keep = np.setdiff1d(np.arange(60), out)
        w = np.zeros((40, 40))
        a = np.zeros((40, 40))
        b = np.zeros((40, 40))
        np.add.at(w, (r[keep], c[keep]), q[keep])
        np.add.at(a, (r[keep], c[keep]), (q * dx)[keep])
        np.add.at(b, (r[keep], c[keep]), (q * dy)[keep])
        den = gaussian_filter(w, 3.0, mode="constant")[r[i], c[i]]
        px, py = (
            gaussian_filter(a, 3.0, mode="constant")[r[i], c[i]] / den,
            gaussian_filter(b, 3.0, mode="constant")[r[i], c[i]] / den,
        )
        assert err[i] == pytest.approx(np.hypot(px - dx[i], py - dy[i]), rel=1e-6)


def test_sigma_choice_is_not_fooled_by_the_error_overlapping_templates_share():
    # vectors every 16 m from 48 m templates: a smooth 3 m field plus matching error that
    # overlapping templates
    # share (white noise summed over each template's 16 m blocks); the plain leave-one-out fits that
    # shared error
    rng = np.random.default_rng(0)
    grid = north_up_grid("EPSG:32637", (0, 0, 2000, 2000), 8.0)
    xs, ys = np.meshgrid(np.arange(8, 2000, 16.0), np.arange(8, 2000, 16.0))
    x, y = xs.ravel(), ys.ravel()
    from scipy.ndimage import uniform_filter

    noise = [uniform_filter(rng.normal(0, 1, xs.shape), 3).ravel() * 4.0 for _ in range(2)]
    true_dx, true_dy = 3 * np.sin(x / 600), 3 * np.cos(y / 500)
    dx, dy = true_dx + noise[0], true_dy + noise[1]
    candidates = [24.0, 48.0, 96.0, 192.0]
    q = np.ones(len(x))
    plain = choose_sigma(grid, x, y, dx, dy, q, candidates)
    held = choose_sigma(grid, x, y, dx, dy, q, candidates, template_m=48.0)

    def field_error(s_m):
        rdx, rdy = dense_residual(grid, x, y, dx, dy, q, s_m)
        col, row = grid.map_to_pixel(x, y)
        rr, cc = np.floor(row).astype(int), np.floor(col).astype(int)
        return float(np.mean(np.hypot(rdx[rr, cc] - true_dx, rdy[rr, cc] - true_dy)))

    assert plain == 24.0
    assert held >= 96.0 and field_error(held) < 0.6 * field_error(plain)


def test_residual_trend_is_a_translation_for_clustered_points():
    rng = np.random.default_rng(0)
    x, y = 500 + rng.normal(0, 1.0, 20), 500 + rng.normal(0, 1.0, 20)
    dx, dy = 3.0 + rng.normal(0, 0.5, 20), np.full(20, -2.0)
    tx, ty = residual_trend(
        x, y, dx, dy, np.ones(20), np.array([0.0, 1000.0]), np.array([0.0, 1000.0])
    )
    # noise on a 2 m cluster must not become a steep gradient extrapolated across the scene
    np.testing.assert_allclose(tx, dx.mean(), atol=0.5)
    np.testing.assert_allclose(ty, -2.0, atol=1e-6)


def test_level_schedule_adds_the_optical_pixel_level():
    conf = LocalConfig()
    # SAR 1.34 m, optical 1.0 m: one more level at the optical pixel, standing in for the refine
    # pass
    native = [Pass(4.0, 12), Pass(2.0, 6), Pass(1.0, 3)]
    assert level_schedule(conf, 1.0 / 1.34) == [*native, Pass(1.0 / 1.34, 2)]
    assert level_schedule(make_config(LocalConfig, {"refine_passes": "2"}), 0.5)[-2:] == [
        Pass(0.5, 2),
        Pass(0.5, 2),
    ]
    # same pixel size: the native levels only
    assert level_schedule(conf, 1.0) == [*native, Pass(1.0, 2)]
    assert (
        level_schedule(
            make_config(LocalConfig, {"optical_level": "false", "refine_passes": "0"}), 0.5
        )
        == native
    )


def test_adaptive_sar_modes():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    structured = (((yy // 16) + (xx // 16)) % 2).astype(np.float32)
    structured += rng.normal(0, 0.02, structured.shape).astype(np.float32)
    speckle = rng.gamma(1.0, 1.0, (128, 128)).astype(np.float32) / 5
    assert choose_mode(tile_stats(structured)) == "simple"
    assert choose_mode(tile_stats(speckle)) == "enhanced"
    empty = np.full((64, 64), np.nan, np.float32)
    assert adaptive_sar(empty)[1] == "empty"


def test_field_on_grid_equals_point_sampling():
    from models.methods.local.tiles import field_on_grid

    grid = north_up_grid("EPSG:32637", (1000.0, 2000.0, 1600.0, 2500.0), 5.2)
    rng = np.random.default_rng(2)
    fld = DisplacementField(
        grid,
        rng.normal(size=grid.shape).astype(np.float32),
        rng.normal(size=grid.shape).astype(np.float32),
        np.zeros(grid.shape, np.float32),
    )
    for bounds in (
        (990.0, 2050.0, 1500.0, 2510.0),
        (1590.0, 2490.0, 1700.0, 2600.0),
    ):  # inside, and over the edge (clamped)
        tile = north_up_grid("EPSG:32637", bounds, 0.65)
        x, y = tile.pixel_centres()
        dx, dy, _ = fld.sample(x, y)
        fx, fy = field_on_grid(fld, tile)
        np.testing.assert_allclose(fx, dx, atol=1e-5)
        np.testing.assert_allclose(fy, dy, atol=1e-5)


def test_saturated_share_counts_border_vectors_whose_neighbours_lean_the_same_way():
    from models.methods.local.levels import saturated_share

    xs, ys = np.meshgrid(np.arange(0, 200, 10.0), np.arange(0, 200, 10.0))
    x, y = xs.ravel(), ys.ravel()
    limit = 2.0
    # a region shifted beyond the radius: every vector on the border, neighbours too
    assert saturated_share(x, y, np.full(len(x), limit), np.zeros(len(x)), limit) == pytest.approx(
        1.0
    )
    # chance border peaks around a small residual: neighbours near zero, nothing counts
    rng = np.random.default_rng(1)
    dx = np.where(rng.random(len(x)) < 0.3, limit * rng.choice([-1.0, 1.0], len(x)), 0.2)
    assert saturated_share(x, y, dx, np.zeros(len(x)), limit) < 0.05
    # half the area beyond the radius (west), the rest converged
    dy = np.where(x < 100, -limit, 0.1)
    assert saturated_share(x, y, np.zeros(len(x)), dy, limit) == pytest.approx(0.5, abs=0.05)


def test_second_peak_is_a_rival_peak_not_the_shoulder_of_the_best():
    rr, cc = np.indices((41, 41)).astype(float)
    broad = np.exp(-((rr - 20) ** 2 + (cc - 20) ** 2) / (2 * 6.0**2))
    rival = 0.5 * np.exp(-((rr - 6) ** 2 + (cc - 34) ** 2) / (2 * 1.5**2))
    surface = (broad + rival).astype(np.float32)
    assert surface[20, 23] > 0.85  # just outside a 5×5 neighbourhood the broad peak is still high
    assert second_peak(surface, 20, 20) == pytest.approx(0.5 + broad[6, 34], abs=0.01)
    assert second_peak(broad.astype(np.float32), 20, 20) == -1.0  # a lone peak has no rival


def test_wide_candidates_are_scored_on_a_coarser_grid_like_the_full_grid():
    from scipy.ndimage import gaussian_filter

    from models.methods.local.dense import coarsening

    rng = np.random.default_rng(5)
    shape, sigma = (600, 520), 48.0
    assert coarsening(sigma) == 4 and coarsening(11.0) == 1
    # vectors on a 16-cell lattice: a smooth field plus noise, weights varying
    rr, cc = np.meshgrid(np.arange(5, 600, 16), np.arange(3, 520, 16), indexing="ij")
    r, c = rr.ravel(), cc.ravel()
    q = rng.uniform(0.3, 1.0, len(r))
    dx = 4 * np.sin(r / 140.0) + rng.normal(0, 0.5, len(r))
    dy = 3 * np.cos(c / 100.0) + rng.normal(0, 0.5, len(r))
    err = held_out_errors(shape, r, c, q, dx, dy, sigma)

    def full(v):
        a = np.zeros(shape)
        np.add.at(a, (r, c), v)
        return gaussian_filter(a, sigma, mode="constant")

    # held-out errors (each point left out by its own kernel weight) on the full grid
    w = full(q)
    k0 = gaussian_filter(np.pad([1.0], 200), sigma, mode="constant")[200]
    own = q * k0 * k0
    px = (full(q * dx)[r, c] - own * dx) / (w[r, c] - own)
    py = (full(q * dy)[r, c] - own * dy) / (w[r, c] - own)
    ref_err = np.hypot(px - dx, py - dy)
    assert np.median(err) == pytest.approx(np.median(ref_err), rel=0.05)
    # point by point too, to a small share of the errors' size
    assert np.abs(err - ref_err).mean() < 0.05 * np.median(ref_err)


@pytest.mark.parametrize("k", [5, 8])
def test_neighbour_median_is_the_median_of_the_nearest_vectors(k: int) -> None:
    rng = np.random.default_rng(3)
    points = rng.random((300, 2)) * 100
    vectors = rng.normal(size=(300, 2))
    med, spread = neighbour_median(points, vectors, k)
    dist = np.linalg.norm(points[:, None] - points[None], axis=2)
    nearest = np.argsort(dist, axis=1)[:, 1 : k + 1]  # itself excluded
    expected = np.median(vectors[nearest], axis=1)
    np.testing.assert_allclose(med, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        spread,
        np.median(np.linalg.norm(vectors[nearest] - expected[:, None], axis=2), axis=1),
        rtol=0,
        atol=1e-12,
    )
