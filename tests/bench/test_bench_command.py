"""``coalign bench`` end to end on a generated CFOG-layout pair (method zero), bad input, summary
and targets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.records import CaseRecord
from bench.scale_run import growth_exponent
from bench.summary import check_targets, summarise
from flows.cli import main


def run_zero_bench(data: Path, work: Path, out: Path, cases: str, *extra: str) -> int:
    """Run ``coalign bench`` with method zero on the named cases; returns its exit status."""
    argv = ["bench", "--data", str(data), "--work", str(work), "--out", str(out)]
    return main([*argv, "--cases", cases, "--method", "zero", *extra])


def test_bench_command_smoke(cfog_like_folder, tmp_path, capsys):
    out = tmp_path / "results.json"
    code = run_zero_bench(cfog_like_folder, tmp_path / "work", out, "cfog-unwarped,cfog-w0")
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())
    assert {"methods", "cases", "runs", "summary", "targets", "skipped", "seed", "machine"} <= set(
        report
    )
    assert (
        report["methods"] == ["zero"] and report["targets"] == []
    )  # zero is the reference, not a candidate
    assert [c["name"] for c in report["cases"]] == ["cfog-unwarped", "cfog-w0"]
    assert {s["source"] for s in report["skipped"]} == {"vsff", "srif", "bigearthnet"}
    by_case = {c["name"]: c for c in report["cases"]}
    for run in report["runs"]:
        assert run["ok"], run.get("error")
        assert {"wall_s", "peak_rss_mb", "runtime_s", "scores", "version"} <= set(run)
        assert run["peak_rss_mb"] > 10 and run["wall_s"] > 0
        assert {"open", "register_total", "write_cog", "pipeline"} <= set(run["runtime_s"])
        for name, score in run["scores"].items():
            assert {"mean_px", "median_px", "p90_px", "mean_m", "tiepoints"} <= set(score["sn9"])
            # the zero method's measured error is the zero-shift reference computed from the
            # tiepoints alone
            ref = by_case[run["case"]]["references"][name]
            assert score["sn9"]["mean_px"] == pytest.approx(ref["zero"]["mean_px"], abs=1e-6)
    warped = by_case["cfog-w0"]
    assert set(warped["references"]) == {"field", "real"}
    assert warped["references"]["field"]["zero"]["mean_px"] > 5
    assert (
        warped["references"]["field"]["oracle_affine"]["mean_px"]
        < warped["references"]["field"]["zero"]["mean_px"]
    )
    assert report["summary"]["zero"]["kinds"]["cfog"]["cases"] == 1
    # structural agreement: the known field lines the warped pair up, no shift does not; the zero
    # method's own
    # field is no shift, so it agrees exactly as much as no shift
    agree = warped["agreement"]
    assert (
        agree["reference"]["ncc"] > agree["zero"]["ncc"] + 0.05
        and agree["reference"]["templates"] > 10
    )
    run_w0 = next(r for r in report["runs"] if r["case"] == "cfog-w0")
    assert run_w0["agreement"]["ncc"] == pytest.approx(agree["zero"]["ncc"], abs=1e-6)
    unwarped = by_case["cfog-unwarped"]["agreement"]
    assert unwarped["reference"]["ncc"] == pytest.approx(
        unwarped["zero"]["ncc"]
    )  # its reference is no shift
    # scale runs leave it out: their wall time and peak RSS are the measurement
    from bench.worker import run_job

    folder = tmp_path / "work" / "cases" / "cfog-w0"
    quiet = run_job(
        {
            "optical": str(folder / "optical.tif"),
            "sar": str(folder / "sar.tif"),
            "method": "zero",
            "output": str(tmp_path / "d.tif"),
            "agreement": False,
        }
    )
    assert quiet["ok"] and quiet["agreement"] == {}
    assert "cfog-w0" in printed and "Per case kind" in printed and "zero" in printed
    # a second run reuses the cached case files
    sar = tmp_path / "work" / "cases" / "cfog-w0" / "sar.tif"
    stamp = sar.stat().st_mtime_ns
    code = run_zero_bench(cfog_like_folder, tmp_path / "work", out, "cfog-w0", "--overwrite")
    assert code == 0 and sar.stat().st_mtime_ns == stamp
    assert [c["name"] for c in json.loads(out.read_text())["cases"]] == ["cfog-w0"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "zero"], "[METHOD:]KEY=VALUE"),
        (["--set", "local:nope=1", "--method", "zero"], "not benchmarked"),
        (["--set", "zero:nope=1", "--method", "zero"], "unknown setting"),
        (["--set", "nope=1", "--method", "zero"], "unknown setting"),
        (["--set", "nope=1"], "several methods run"),
        (["--cases", "nomatch", "--method", "zero"], "matches no case"),
        (["--method", "nonsense"], "unknown method"),
        (["--scale", "--sizes", "2500,x"], "--sizes"),
        (["--scale", "--sizes", "2500,20001"], "between 256 and 20000 pixels"),
    ],
)
def test_bench_bad_input(cfog_like_folder, tmp_path, capsys, argv, message):
    code = main(["bench", "--data", str(cfog_like_folder), "--work", str(tmp_path / "w"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "w" / "results.json").exists()


def test_bench_missing_data(tmp_path, capsys):
    assert main(["bench", "--data", str(tmp_path / "absent"), "--method", "zero"]) == 2
    assert "not found" in capsys.readouterr().err


def _case(name, kind, warped, zero, oracle, real=None, agreement=None, oracle_unrounded=None):
    refs = (
        {
            "field": {
                "zero": {"mean_px": zero},
                "oracle_affine": {"mean_px": oracle},
                "oracle_affine_exact": {
                    "mean_px": oracle if oracle_unrounded is None else oracle_unrounded
                },
                "exact": {"mean_px": 0.38},
            }
        }
        if warped
        else {}
    )
    if real is not None:
        refs["real"] = {"zero": {"mean_px": real[0]}, "oracle_affine": {"mean_px": real[1]}}
    return CaseRecord(
        name=name,
        kind=kind,
        warped=warped,
        folder="",
        source=None,
        note="",
        n_tiepoints={},
        optical_size=[0, 0],
        optical_pixel_m=1.0,
        sar_size=[0, 0],
        sar_valid_fraction=None,
        references=refs,
        agreement=agreement or {},
    )


def _run(case, method, field=None, real=None, ok=True, unrounded=None):
    scores = {}
    if field is not None:
        exact = field if unrounded is None else unrounded
        scores["field"] = {"sn9": {"mean_px": field}, "exact": {"mean_px": exact}}
    if real is not None:
        scores["real"] = {"sn9": {"mean_px": real}}
    return {
        "case": case,
        "method": method,
        "ok": ok,
        "scores": scores,
        "runtime_s": {"pipeline": 1.0},
        "wall_s": 2.0,
        "peak_rss_mb": 100.0,
    }


def test_targets_per_kind_overall_and_real_tiepoints():
    cases = [
        _case("cfog-unwarped", "cfog", False, 0, 0, real=(0.9, 0.7)),
        _case("cfog-w0", "cfog", True, 50.0, 6.0, real=(50.0, 6.0)),
        _case("vsff-w0", "vsff", True, 40.0, 4.0),
        _case("vsff-w1", "vsff", True, 20.0, 2.0),
    ]
    runs = [
        _run("cfog-unwarped", "m", real=0.8),
        _run("cfog-w0", "m", field=2.0, real=1.2),
        _run("vsff-w0", "m", field=1.0),
        _run("vsff-w1", "m", field=25.0),  # one case worse than zero
    ]
    summary = summarise(cases, runs, ["m"])
    k = summary["m"].kinds
    assert k["cfog"].mean_px == 2.0 and k["vsff"].mean_px == 13.0
    assert k["vsff"].oracle_affine_px == 3.0
    assert k["vsff"].worse_than_zero == ["vsff-w1"] and k["overall"].cases == 3
    targets = {t.target: t for t in check_targets(summary, ["m"])}
    assert targets["cfog: unrounded mean ≤ 0.5 × oracle-affine"].passed
    assert targets["cfog: no case worse than zero shift"].passed
    assert not targets["vsff: unrounded mean ≤ 0.5 × oracle-affine"].passed
    worse = targets["vsff: no case worse than zero shift"]
    assert not worse.passed and worse.cases == ["vsff-w1"] and worse.gated
    # no agreement measured: nothing is excused
    assert k["vsff"].worse_than_zero_weaker_reference == []
    # the same worse case, but the run's field lines the pair up far better than the reference
    # field does
    cases[3] = dataclasses.replace(
        cases[3], agreement={"reference": {"ncc": 0.01}, "zero": {"ncc": 0.0}}
    )
    runs[3]["agreement"] = {"ncc": 0.2}
    summary = summarise(cases, runs, ["m"])
    assert summary["m"].kinds["overall"].worse_than_zero_weaker_reference == ["vsff-w1"]
    worse = next(
        t
        for t in check_targets(summary, ["m"])
        if t.target == "vsff: no case worse than zero shift"
    )
    # still a failure, with the evidence beside it
    assert not worse.passed and worse.weaker_reference == ["vsff-w1"]
    runs[3]["agreement"] = {"ncc": 0.03}
    overall = summarise(cases, runs, ["m"])["m"].kinds["overall"]
    assert overall.worse_than_zero_weaker_reference == []
    # the real CFOG tiepoints are reported, not gated
    real = targets["CFOG real tiepoints (cfog-unwarped): mean ≤ 1.0 px"]
    assert real.passed and not real.gated
    assert not targets["CFOG real tiepoints (cfog-w0): mean ≤ 1.0 px"].passed
    # a failed run counts as infinitely wrong, never as a pass
    failed = summarise(cases, [_run("cfog-w0", "m", ok=False)], ["m"])
    assert not any(t.passed for t in check_targets(failed, ["m"]) if t.target.startswith("cfog"))


def test_gates_compare_unrounded_means_and_skip_srif_and_bigearthnet():
    cases = [
        # the SN9-rounded oracle (0.6) sits near the rounding floor; unrounded it is 0.5
        _case("urban-00", "urban", True, 30.0, 0.6, oracle_unrounded=0.5),
        _case("urban-01", "urban", True, 30.0, 0.6, oracle_unrounded=0.5),
        _case("srif-00", "srif", True, 10.0, 2.0),
        _case("bigearthnet-00", "bigearthnet", True, 1.0, 0.5),
    ]
    runs = [
        _run("urban-00", "m", field=0.4, unrounded=0.2),
        _run("urban-01", "m", field=0.45, unrounded=0.26),
        _run("srif-00", "m", field=5.0),
        _run("bigearthnet-00", "m", field=2.0),  # worse than zero
    ]
    summary = summarise(cases, runs, ["m"])
    urban = summary["m"].kinds["urban"]
    assert urban.mean_unrounded_px == pytest.approx(0.23)
    assert urban.oracle_affine_unrounded_px == pytest.approx(0.5)
    targets = {t.target: t for t in check_targets(summary, ["m"])}
    gate = targets["urban: unrounded mean ≤ 0.5 × oracle-affine"]
    # the SN9 mean (0.425) would fail 0.5 × 0.6; the unrounded mean passes 0.5 × 0.5
    assert gate.gated and gate.passed and gate.value == pytest.approx(0.23)
    assert gate.limit == pytest.approx(0.25)
    runs[1]["scores"]["field"]["exact"]["mean_px"] = 0.34  # mean 0.27 > 0.25
    failing = {t.target: t for t in check_targets(summarise(cases, runs, ["m"]), ["m"])}
    assert not failing["urban: unrounded mean ≤ 0.5 × oracle-affine"].passed
    # SRIF and BigEarthNet: reported, never gated, whatever they score
    for kind in ("srif", "bigearthnet"):
        for t in (t for name, t in targets.items() if name.startswith(kind)):
            assert not t.gated
    assert not targets["bigearthnet: no case worse than zero shift"].passed
    assert not targets["srif: unrounded mean ≤ 0.5 × oracle-affine"].passed
    assert all(t.gated for name, t in targets.items() if name.startswith("urban"))


def test_report_marks_ungated_targets_info():
    from bench.records import Target
    from bench.report import _target_line

    assert _target_line(Target("m", "srif: x", 2.0, 1.0, False, gated=False)).startswith("  info")
    assert _target_line(Target("m", "urban: x", 2.0, 1.0, False)).startswith("  FAIL")


def test_growth_exponent():
    assert growth_exponent([2500, 5000, 10000], [10.0, 40.0, 160.0]) == pytest.approx(1.0)
    assert growth_exponent([2500, 5000], [10.0, 20.0]) == pytest.approx(0.5)
