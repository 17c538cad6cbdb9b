"""``coalign bench --scale --scale-kind repetitive``: the repeating ground and the stage table."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from bench_fixtures import tiny_pair, write_cfog_like

from bench.scale import RepeatingMosaic, build_scale_case, draw_scale_recipe
from bench.scale_profile import format_stage_profile, stage_rows
from flows.cli import main


def test_repetitive_recipe_keeps_the_field_and_draws_its_period():
    normal, rep = draw_scale_recipe(0), draw_scale_recipe(0, repetitive=True)
    assert normal.period_px == 0 and normal.name == "scale"
    assert rep.name == "scale-rep" and 250 <= rep.period_px * rep.optical_m <= 500
    assert rep.shift == normal.shift and rep.rotation_deg == normal.rotation_deg
    assert draw_scale_recipe(1, repetitive=True).period_px != rep.period_px


def test_repeating_mosaic_windows_repeat_on_the_period():
    sources = [tiny_pair(600, seed=1, with_tiepoints=False)]
    mosaic = RepeatingMosaic(sources, seed=0, period=530)
    optical, sar = mosaic.window(-700, 4000, 1200, 300)
    assert optical.shape == (3, 300, 1200) and sar.shape == (300, 1200)
    assert np.array_equal(optical[:, :, :670], optical[:, :, 530:])
    assert np.array_equal(sar[:, :670], sar[:, 530:])
    again, _ = mosaic.window(-700 + 530, 4000 - 530, 1200, 300, "optical")
    assert np.array_equal(again, optical)


def test_repetitive_scale_case_repeats_where_the_normal_one_does_not(tmp_path):
    sources = [tiny_pair(600, seed=1, with_tiepoints=False)]
    rep = build_scale_case(sources, 0, 1100, tmp_path / "cases", repetitive=True)
    normal = build_scale_case(sources, 0, 1100, tmp_path / "cases")
    assert (rep.name, normal.name) == ("scale-rep-1100", "scale-1100")
    period = draw_scale_recipe(0, repetitive=True).period_px
    assert rep.meta["recipe"]["period_px"] == period
    assert rep.meta["n_tiepoints"]["field"] > 100
    for case, repeats in ((rep, True), (normal, False)):
        with rasterio.open(case.folder / "optical.tif") as src:
            band = src.read(1)
        same = np.array_equal(band[:, : 1100 - period], band[:, period:])
        assert same == repeats, case.name
    with rasterio.open(rep.folder / "sar.tif") as r, rasterio.open(normal.folder / "sar.tif") as n:
        assert r.transform == n.transform and r.shape == n.shape  # same grids and field


def test_stage_rows_group_priors_levels_and_repeats():
    st = {
        "import": 1.0,
        "open": 2.0,
        "global_match": 3.0,
        "coarse_translation": 1.0,
        "level0_match": 4.0,
        "level0_dense": 1.0,
        "level0_repeat_match": 3.0,
        "level0_repeat_dense": 0.5,
        "level1_match": 5.0,
        "verify": 1.0,
        "register_total": 20.0,
        "write_cog": 3.0,
        "pipeline": 25.0,
    }
    rows = dict(stage_rows(st))
    assert rows["priors"] == 4.0 and rows["level0 repeat match"] == 3.0
    assert rows["other register"] == 20.0 - 18.5 and rows["write"] == 3.0
    runs = [
        {"ok": True, "method": "local", "side": s, "runtime_s": {k: v * f for k, v in st.items()}}
        for s, f in ((2500, 1.0), (5000, 8.0))
    ]
    text = format_stage_profile(runs)
    line = next(x for x in text.splitlines() if "level0 repeat match" in x)
    assert line.split()[-1] == "1.50"  # 8× the time for 4× the area
    # a stage only the larger size ran keeps its place in the table
    del runs[0]["runtime_s"]["level0_repeat_dense"]
    text = format_stage_profile(runs)
    at = [text.index(f" {stage} ") for stage in ("level0 repeat match", "level0 repeat dense")]
    assert at[0] < at[1] < text.index(" level1 match ") < text.index(" pipeline ")


def test_bench_scale_repetitive_command(tmp_path, capsys):
    data = write_cfog_like(tmp_path, size=600)
    out = tmp_path / "scale.json"
    argv = ["bench", "--scale", "--scale-kind", "repetitive", "--sizes", "300,600"]
    argv += ["--method", "zero", "--data", str(data), "--work", str(tmp_path / "w")]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [c["name"] for c in report["cases"]] == ["scale-rep-300", "scale-rep-600"]
    assert 250 <= report["recipe"]["period_m"] <= 500
    assert all(r["ok"] for r in report["runs"])
    assert "Stages (s and % of the pipeline" in printed
    assert next(x for x in printed.splitlines() if x.startswith("zero ")).split()[1] == "open"
