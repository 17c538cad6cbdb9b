"""Tests of core.grid's CRS comparison."""

from __future__ import annotations

import rasterio.crs
from pyproj import CRS

from core.grid import same_crs


def test_same_crs_across_forms_and_unhashable_ones():
    utm = rasterio.crs.CRS.from_epsg(32637)
    assert same_crs(utm, CRS.from_epsg(32637))
    assert same_crs(utm, rasterio.crs.CRS.from_wkt(utm.to_wkt()))
    assert same_crs("EPSG:4326", CRS.from_epsg(4326))
    assert not same_crs(utm, rasterio.crs.CRS.from_epsg(32638))
    # asked again, the remembered answers hold
    assert same_crs(utm, CRS.from_epsg(32637))
    assert not same_crs(utm, rasterio.crs.CRS.from_epsg(32638))
    # a PROJ JSON dict cannot be remembered, and is still compared
    as_json = CRS.from_epsg(32637).to_json_dict()
    assert same_crs(as_json, utm)
    assert not same_crs(as_json, CRS.from_epsg(4326))
