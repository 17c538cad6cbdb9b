"""The data-quality gate in front of registration (Great Expectations 1.x, ephemeral context).

Two expectation suites, each run on a pandas DataFrame batch:

- scene metadata, one row per scene (:func:`scene_metadata` reads the raster header and a
  decimated read of the pixels, never the whole image): CRS projected or convertible to UTM,
  GSD within the sensor's range, dtype and band count per sensor, no-data fraction, footprint
  validity (and agreement of the item footprint with the raster), optical/SAR overlap;
- tiepoint tables (SN9 CSV ``sar_row,sar_col,optical_row,optical_col``): header, numeric and
  complete, within each image, no duplicate rows or optical points, plausible offsets (metres
  when the image grids are known, else pixels).

A failed expectation becomes a :class:`Failure` naming the check, the scene (or CSV line) and
the observed value; :meth:`ValidationReport.raise_if_failed` raises
:class:`core.errors.ValidationFailed` with that text, which stops that pair only.
Great Expectations is imported lazily with analytics off.
"""

from stac.validation.report import Failure, ValidationReport, require_valid
from stac.validation.scenes import SceneFacts, SceneRules, scene_metadata, validate_scenes
from stac.validation.tiepoints import TiepointRules, validate_tiepoint_table, validate_tiepoints

__all__ = [
    "Failure",
    "SceneFacts",
    "SceneRules",
    "TiepointRules",
    "ValidationReport",
    "require_valid",
    "scene_metadata",
    "validate_scenes",
    "validate_tiepoint_table",
    "validate_tiepoints",
]
