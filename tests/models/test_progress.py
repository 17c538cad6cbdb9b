"""Progress of long stages: each reports values between its start and its end as it goes."""

from __future__ import annotations

import re

import pytest

from models.progress import OVERALL, Phases, Steps
from models.registration import run_pipeline
from models.warp import warp_optical
from samples.synth import SceneSpec, ShiftModel, synthesize_pair

# every stage name the pipeline reports: few and stable (bar labels, artifact text)
STAGE = re.compile(
    r"overall|global match|coarse translation|prior check|verify( \(finest pass\))?"
    r"|level \d+/\d+ (tiles|dense)( \(\d+ priors\)| \(kept prior\))?( \(repeat\))?"
    r"|write displacement|write confidence|warp"
)


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.calls.append((stage, done, total))

    def runs(self, stage: str) -> list[list[tuple[int, int]]]:
        """The stage's reports, split where it starts again (after its end, or going back)."""
        out: list[list[tuple[int, int]]] = []
        for s, done, total in self.calls:
            if s != stage:
                continue
            last = out[-1][-1] if out else None
            if last is None or last[0] >= last[1] or done < last[0]:
                out.append([])
            out[-1].append((done, total))
        return out

    def stages(self) -> list[str]:
        return list(dict.fromkeys(s for s, _, _ in self.calls))


def assert_moves(rec: Recorder, stage: str) -> None:
    """Each run of ``stage`` never goes back and ends at its total, and one run reports a value
    strictly between 0 and its total."""
    runs = rec.runs(stage)
    assert runs, f"{stage} never reported"
    for run in runs:
        dones = [d for d, _ in run]
        totals = [t for _, t in run]
        assert dones == sorted(dones), (stage, run)
        assert totals == sorted(totals), (stage, run)
        assert run[0][0] == 0, (stage, run)
        assert run[-1][0] == run[-1][1], (stage, run)
    assert any(0 < d < t for run in runs for d, t in run), (stage, runs)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    spec = SceneSpec(
        size_m=300.0,
        seed=7,
        sar_appearance="luminance",
        speckle_looks=100.0,
        shift=ShiftModel(offset=(6.0, -4.0), nonrigid_m=0.0, seed=7),
    )
    return synthesize_pair(tmp_path_factory.mktemp("progress"), spec, "p")


# several tiles per level and two levels
LOCAL = {
    "levels": "2,1",
    "radius_px": "8,3",
    "tile_px": "160",
    "refine_passes": "0",
    "optical_level": "false",
}


def register_local(pair, tmp_path, settings: dict[str, str]) -> Recorder:
    rec = Recorder()
    run_pipeline(pair.optical, pair.sar, tmp_path / "d.tif", "local", settings, "cpu", progress=rec)
    assert all(STAGE.fullmatch(s) for s in rec.stages()), rec.stages()
    return rec


def assert_levels_move(rec: Recorder) -> None:
    levels = [s for s in rec.stages() if s.startswith("level")]
    assert {s.split()[1] for s in levels} >= {"1/2", "2/2"}, levels
    for stage in levels:
        assert_moves(rec, stage)
    for stage in ("verify", OVERALL, "write displacement"):
        assert_moves(rec, stage)


def test_local_in_process_reports_every_long_stage_as_it_goes(pair, tmp_path):
    rec = register_local(pair, tmp_path, {**LOCAL, "workers": "1"})
    # the global prior: images read, each extraction, the matching, the fit
    assert [d for d, _ in rec.runs("global match")[0]] == list(range(7))
    assert_moves(rec, "coarse translation")
    assert_levels_move(rec)
    assert rec.calls[-1] == (OVERALL, rec.calls[-1][2], rec.calls[-1][2])


def test_local_in_a_pool_reports_every_tile(pair, tmp_path):
    rec = register_local(pair, tmp_path, {**LOCAL, "workers": "2", "global_prior": "false"})
    assert "global match" not in rec.stages()
    assert_levels_move(rec)
    tiles = rec.runs("level 2/2 tiles")[0]
    assert [d for d, _ in tiles] == list(range(tiles[0][1] + 1))


def test_global_affine_matching_and_the_cog_writes_move(pair, tmp_path):
    rec = Recorder()
    done = run_pipeline(
        pair.optical,
        pair.sar,
        tmp_path / "d.tif",
        "global-affine",
        {},
        "cpu",
        confidence=tmp_path / "c.tif",
        progress=rec,
    )
    for stage in ("global match", "write displacement", "write confidence", OVERALL):
        assert_moves(rec, stage)
    assert rec.stages()[:2] == [OVERALL, "global match"]
    # the overall stage: the method, then each file written
    assert rec.runs(OVERALL)[0] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    # a 600-pixel grid in 512-pixel blocks: four blocks, then the conversion to a COG
    assert rec.runs("write confidence")[0] == [(i, 5) for i in range(6)]

    warp = Recorder()
    warp_optical(pair.optical, done.products.displacement, tmp_path / "a.tif", progress=warp)
    assert warp.stages() == ["warp"]
    assert_moves(warp, "warp")


def test_steps_never_go_back_nor_past_the_total():
    rec = Recorder()
    steps = Steps(rec, "s", 3)
    with steps.part(2):
        steps.step()
    steps.advance_to(1)
    steps.grow(2)
    steps.step(10)
    assert rec.calls == [("s", 0, 3), ("s", 1, 3), ("s", 2, 3), ("s", 2, 5), ("s", 5, 5)]


def test_phases_count_the_inner_run_then_the_writes():
    rec = Recorder()
    phases = Phases(rec, ["write"])
    phases(OVERALL, 1, 4)
    phases("tiles", 1, 2)
    phases.inner_done()
    phases("write", 1, 1)
    overall = [(d, t) for s, d, t in rec.calls if s == OVERALL]
    assert overall == [(0, 2), (1, 5), (4, 5), (5, 5)]
    assert ("tiles", 1, 2) in rec.calls
