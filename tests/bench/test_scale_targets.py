"""The scale benchmark's gates and its ungated aims."""

from __future__ import annotations

from bench.records import Growth
from bench.scale_run import _method_scale_targets


def _by_name(targets):
    return {(t.target.split(" (")[0], t.limit): t for t in targets}


def test_a_run_between_aim_and_gate_passes_and_reports_the_aim():
    runs = [{"method": "local", "side": 10000, "ok": True, "wall_s": 122.7, "peak_rss_mb": 2100.0}]
    growth = Growth(wall=1.08, pipeline=1.0, sides=[2500, 5000, 10000])
    t = _by_name(_method_scale_targets("local", runs, growth))
    assert t[("10000² end to end ≤ 240 s", 240.0)].passed
    assert t[("10000² end to end ≤ 240 s", 240.0)].gated
    aim = t[("10000² end to end ≤ 60 s", 60.0)]
    assert not aim.passed and not aim.gated
    assert not t[("10000² peak RSS ≤ 2048 MB", 2048.0)].passed
    assert t[("10000² peak RSS ≤ 4096 MB", 4096.0)].passed
    assert t[("time linear in area", 1.1)].passed and t[("time linear in area", 1.1)].gated
    linear_aim = t[("time linear in area", 1.05)]
    assert not linear_aim.passed and not linear_aim.gated


def test_a_failed_run_fails_every_full_size_target():
    runs = [{"method": "local", "side": 10000, "ok": False, "wall_s": 3.0, "peak_rss_mb": 900.0}]
    targets = _method_scale_targets("local", runs, None)
    assert len(targets) == 4 and not any(t.passed for t in targets)
    assert [t.gated for t in targets] == [True, True, False, False]
