"""``coalign bench --scale --height``: the generated height model and geometry of a scale case."""

from __future__ import annotations

import numpy as np
import rasterio
from bench_fixtures import tiny_pair

from bench.cases import case_grids
from bench.run import BenchConfig, run_case_method
from bench.scale import build_scale_case
from bench.scale_height import HEIGHT_PIXEL_M, scale_geometry, scale_heights


def test_scale_case_gets_a_windowed_height_model_and_a_geometry(tmp_path):
    sources = [tiny_pair(600, seed=1, with_tiepoints=False)]
    case = build_scale_case(sources, seed=0, side=400, cases_root=tmp_path / "cases")
    files = scale_heights(case)
    assert set(files) == {"dsm", "dtm"}
    stamp = (case.folder / "dsm.tif").stat().st_mtime_ns
    assert scale_heights(case) == files and (case.folder / "dsm.tif").stat().st_mtime_ns == stamp
    optical = case_grids(case)[0]
    with rasterio.open(files["dsm"]) as dsm, rasterio.open(files["dtm"]) as dtm:
        assert dsm.res == (HEIGHT_PIXEL_M, HEIGHT_PIXEL_M) and dsm.profile["tiled"]
        left, bottom, right, top = optical.footprint().bounds
        b = dsm.bounds
        assert b.left < left and b.bottom < bottom and b.right > right and b.top > top
        above = dsm.read(1) - dtm.read(1)
    assert above.min() >= 0 and 0.1 < (above > 3).mean() < 0.6  # buildings on part of it
    assert np.ptp(above[above > 0]) > 20  # of many heights
    geometry = scale_geometry(case)
    assert geometry == scale_geometry(case) and 25 <= geometry.incidence_deg <= 50

    conf = BenchConfig(data=tmp_path, work=tmp_path / "work", height=True)
    run = run_case_method(case, "zero", {}, conf, agreement=False, geometry=geometry.to_record())
    assert run["ok"], run.get("error")
    assert run["details"]["height"]["dsm"]["path"] == files["dsm"]
    assert run["details"]["sar_geometry"]["incidence_deg"] == geometry.incidence_deg
