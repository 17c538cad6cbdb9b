"""QA pictures (models.qa) from small synthetic pairs: valid, bounded PNGs that show what they
claim."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import rasterio
from matplotlib.image import imread

from core.errors import InputError
from core.grid import north_up_grid
from models import qa
from models.displacement import DisplacementField
from models.qa.figure import HEADER_PX
from models.registration import register, write_displacement
from models.scoring import read_tiepoints, score_displacement
from models.warp import warp_optical

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _field_grid(pair, resolution: float = 2.0):
    g = pair.optical_grid
    return north_up_grid(g.crs, g.footprint().bounds, resolution)


def _hue_deg(rgb) -> float:
    r, g, b = (float(c) for c in rgb[:3])
    return 360.0 * colorsys.rgb_to_hsv(r, g, b)[0]


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


# Hues of the Baker et al. (2011) wheel, worked out from its definition (not from models.qa):
# right → wheel[0] red; down → between RY[13] and RY[14] (255, 229, 0); left → CB[2] (0, 209, 255);
# up → between BM[4] and BM[5] (88, 0, 255).
@pytest.mark.parametrize(
    ("dx", "dy", "hue"), [(1.0, 0.0, 0.0), (0.0, 1.0, 54.0), (-1.0, 0.0, 190.8), (0.0, -1.0, 260.7)]
)
def test_flow_colour_follows_the_middlebury_wheel(dx, dy, hue):
    img = qa.flow_to_colour(np.full((3, 3), dx), np.full((3, 3), dy))
    assert _hue_distance(_hue_deg(img[1, 1] / 255), hue) < 3
    assert img[1, 1].min() < 10  # full saturation at the maximum magnitude


def test_flow_colour_saturation_is_magnitude():
    img = qa.flow_to_colour(np.array([[0.0, 0.5, 1.0]]), np.zeros((1, 3)))
    sat = [colorsys.rgb_to_hsv(*(img[0, i] / 255))[1] for i in range(3)]
    assert (
        sat[0] == pytest.approx(0, abs=0.01)
        and sat[1] == pytest.approx(0.5, abs=0.02)
        and sat[2] > 0.98
    )
    assert (
        qa.flow_to_colour(np.array([[np.nan]]), np.array([[1.0]])) == 0
    ).all()  # no data is black


def test_flow_colour_png_shows_a_known_field(radar_pair, tmp_path):
    """SAR 6 m east and 6 m north of the optical: SN9 dx = +12 px, dy = −12 px (up-right), which the
    wheel colours between BM[11] and BM[12] (≈ (220, 0, 255), hue ≈ 292°)."""
    disp = tmp_path / "displacement.tif"
    write_displacement(
        DisplacementField.constant(_field_grid(radar_pair), 6.0, 6.0, 1.0),
        radar_pair.optical_grid,
        disp,
    )
    png = qa.flow_colour_png(disp, tmp_path / "flow.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    img = imread(png)
    h, w = img.shape[:2]
    assert 400 <= w <= 1024 and 300 <= h <= 1024
    pixel = img[HEADER_PX + 40, 40]
    assert _hue_distance(_hue_deg(pixel), 291.8) < 8
    small = imread(qa.flow_colour_png(disp, tmp_path / "small.png", max_side=300))
    assert small.shape[1] <= 300  # bounded


def test_qa_pictures_of_a_registered_pair(radar_pair, tmp_path):
    pair = radar_pair.open()
    result = register(pair, "zero")
    disp = write_displacement(
        result.field, pair.optical.grid, tmp_path / "displacement.tif"
    ).displacement
    tiepoints = read_tiepoints(radar_pair.tiepoints)
    score = score_displacement(disp, tiepoints, pair.optical.grid, pair.sar.grid)
    score.write_residuals(tmp_path / "residuals.csv", tiepoints, pair.optical.grid)

    pictures = qa.qa_pictures(
        radar_pair.optical,
        radar_pair.sar,
        disp,
        tmp_path / "qa",
        residuals_csv=tmp_path / "residuals.csv",
    )

    assert set(pictures) == {
        "qa_checkerboard",
        "qa_overlay",
        "qa_flow",
        "qa_quiver",
        "qa_residuals",
    }
    for name, path in pictures.items():
        assert path == tmp_path / "qa" / f"{name}.png" and path.read_bytes()[:8] == PNG_MAGIC
        h, w = imread(path).shape[:2]
        assert 300 <= max(h, w) <= 1024 and min(h, w) >= 200, (name, h, w)
    assert not list((tmp_path / "qa").glob(".*"))  # no temporary files left
    board = imread(pictures["qa_checkerboard"])
    assert board.shape[1] == 1024  # before | after, side by side
    assert np.std(board[HEADER_PX:, :500, :3]) > 0.1  # an image, not a blank


def test_after_view_is_aligned(luminance_pair, tmp_path):
    """With the true field, the "after" optical matches the SAR better than "before"; warping on the
    fly and reading the aligned COG agree."""
    disp = tmp_path / "displacement.tif"
    truth = DisplacementField.from_function(_field_grid(luminance_pair), luminance_pair.spec.shift)
    write_displacement(truth, luminance_pair.optical_grid, disp)
    on_the_fly = qa.pair_views(luminance_pair.optical, luminance_pair.sar, disp, max_side=256)
    aligned = warp_optical(luminance_pair.optical, disp, tmp_path / "aligned.tif")
    from_cog = qa.pair_views(
        luminance_pair.optical, luminance_pair.sar, aligned_optical_path=aligned, max_side=256
    )

    before, after = _ncc(on_the_fly.sar, on_the_fly.before), _ncc(on_the_fly.sar, on_the_fly.after)
    assert after > 0.8 and after > before + 0.3, (before, after)
    assert _ncc(on_the_fly.after, from_cog.after) > 0.9
    assert max(on_the_fly.grid.width, on_the_fly.grid.height) == 256


def test_checkerboard_without_displacement_has_one_panel(luminance_pair, tmp_path):
    png = qa.checkerboard_png(
        luminance_pair.optical, luminance_pair.sar, tmp_path / "board.png", max_side=300
    )
    h, w = imread(png).shape[:2]
    assert w == 300 and h > 200


def test_bad_inputs_are_clear_errors(radar_pair, tmp_path):
    bad_csv = tmp_path / "residuals.csv"
    bad_csv.write_text("sar_row,sar_col,optical_row,optical_col\n1,2,3,4\n")
    with pytest.raises(InputError, match="no error_m column"):
        qa.residual_histogram_png(bad_csv, tmp_path / "hist.png")
    with pytest.raises(InputError, match="expected 2"):
        qa.flow_colour_png(
            radar_pair.sar, tmp_path / "flow.png"
        )  # a 1-band raster is no displacement map
    disp = tmp_path / "displacement.tif"
    write_displacement(
        DisplacementField.constant(_field_grid(radar_pair), 1.0, 1.0), radar_pair.optical_grid, disp
    )
    with pytest.raises(InputError, match="does not exist"):
        qa.quiver_png(disp, tmp_path / "missing" / "quiver.png")
    assert not (tmp_path / "hist.png").exists() and not (tmp_path / "flow.png").exists()
    with rasterio.open(disp) as ds:
        assert ds.count == 2
