"""The ``urban`` kind in ``coalign bench``: its plan, opt-in selection and a built case."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.build import build_case
from bench.cases import CaseSpec, plan_cases
from bench.run import BenchConfig, case_heights, case_record, run_case_method, select_cases
from bench.urban import URBAN_CASES, draw_urban_spec


def test_urban_kind_plans_twelve_varied_cases_selected_on_request():
    specs = [s for s in plan_cases({}, seed=0, urban_cases=URBAN_CASES) if s.kind == "urban"]
    assert len(specs) >= 12
    scenes = [s.urban for s in specs]
    inc = [u.incidence_deg for u in scenes]
    assert min(inc) >= 20 and max(inc) <= 55 and np.ptp(inc) > 15
    assert all(2000 <= u.size_px <= 4000 and 0.35 <= u.sar_res <= 0.5 for u in scenes)
    assert len({round(u.look_azimuth_deg) for u in scenes}) == len(scenes)
    assert draw_urban_spec("urban-03", 0) == scenes[3]  # stable across runs
    assert draw_urban_spec("urban-03", 1) != scenes[3]
    assert select_cases(specs, (), False) == []  # opt-in: not in the default set
    assert len(select_cases(specs, ("urban",), False)) == len(specs)
    assert [s.name for s in select_cases(specs, ("urban",), True)] == ["urban-00", "urban-01"]


def test_built_urban_case_has_its_references_and_height_models(tmp_path):
    small = replace(draw_urban_spec("urban-00", 0), size_px=420)
    spec = CaseSpec("urban-small", "urban", None, None, 0, small)
    case = build_case(spec, tmp_path)
    for name in ("optical.tif", "sar.tif", "dsm.tif", "dtm.tif", "tiepoints.csv", "case.json"):
        assert (case.folder / name).is_file()
    assert case.warped and case.meta["n_tiepoints"]["field"] >= 40
    again = build_case(spec, tmp_path)
    assert again.meta == case.meta  # cached
    rec = case_record(case)
    refs = rec.references["field"]
    # terrain relief makes the field non-rigid: the oracle affine is no exact fit, zero far off
    assert refs["exact_exact"]["mean_px"] < 1e-3
    assert refs["oracle_affine_exact"]["mean_px"] > 0.05
    assert refs["zero"]["mean_px"] > 5 * refs["oracle_affine"]["mean_px"]
    assert rec.agreement["reference"]["ncc"] > rec.agreement["zero"]["ncc"]

    # --height gives the case's DSM and DTM to the method, which records them
    assert set(case_heights(case)) == {"dsm", "dtm"}
    conf = BenchConfig(data=tmp_path, work=tmp_path / "work", height=True)
    run = run_case_method(case, "zero", {}, conf, agreement=False)
    assert run["ok"], run.get("error")
    height = run["details"]["height"]
    assert height["dsm"]["path"].endswith("dsm.tif") and height["dtm"]["path"].endswith("dtm.tif")
