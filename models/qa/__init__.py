"""QA pictures people look at before they read numbers.

- before/after **checkerboard** and **colour overlay** of SAR and optical on one coarse
  north-up grid over their overlap (:mod:`models.qa.views`); "after" is the aligned optical, or
  the optical warped by the SN9 displacement map on the fly;
- the displacement as a Middlebury **flow-colour** image and a **quiver** plot
  (:mod:`models.qa.flow`);
- a **histogram** of tiepoint residuals (:mod:`models.qa.residuals`).

Every picture is bounded to about ``max_side`` pixels and reads decimated windows (overviews
where the file has them), never a whole full-resolution raster.
"""

from __future__ import annotations

from pathlib import Path

from models.qa.figure import PathLike
from models.qa.flow import (
    colour_wheel,
    flow_colour_png,
    flow_to_colour,
    middlebury_wheel,
    quiver_png,
)
from models.qa.residuals import read_residuals, residual_histogram_png
from models.qa.views import (
    PairViews,
    checkerboard_image,
    checkerboard_png,
    overlay_image,
    overlay_png,
    pair_views,
    panel_side,
    render_checkerboard,
    render_overlay,
    warp_on_grid,
)

__all__ = [
    "PairViews",
    "checkerboard_image",
    "checkerboard_png",
    "colour_wheel",
    "flow_colour_png",
    "flow_to_colour",
    "middlebury_wheel",
    "overlay_image",
    "overlay_png",
    "pair_views",
    "qa_pictures",
    "quiver_png",
    "read_residuals",
    "residual_histogram_png",
    "warp_on_grid",
]


def qa_pictures(
    optical: PathLike,
    sar: PathLike,
    displacement: PathLike,
    out_dir: PathLike,
    aligned_optical: PathLike | None = None,
    residuals_csv: PathLike | None = None,
    max_side: int = 1024,
) -> dict[str, Path]:
    """Every QA picture that applies, as ``{name: png_path}``: ``qa_checkerboard``, ``qa_overlay``,
    ``qa_flow``, ``qa_quiver`` and, with residuals, ``qa_residuals``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = pair_views(optical, sar, displacement, aligned_optical, panel_side(max_side, 2))
    pictures = {
        "qa_checkerboard": render_checkerboard(views, out / "qa_checkerboard.png", 8),
        "qa_overlay": render_overlay(views, out / "qa_overlay.png"),
        "qa_flow": flow_colour_png(displacement, out / "qa_flow.png", max_side),
        "qa_quiver": quiver_png(displacement, out / "qa_quiver.png"),
    }
    if residuals_csv:
        pictures["qa_residuals"] = residual_histogram_png(residuals_csv, out / "qa_residuals.png")
    return pictures
