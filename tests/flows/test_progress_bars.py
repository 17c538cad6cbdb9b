"""Progress shown to people: the command line's bars and the Prefect progress artifact."""

from __future__ import annotations

import io
from uuid import UUID

from prefect import flow

from flows.progress import CliProgress
from models.progress import OVERALL
from tasks.registration import ProgressArtifact


def test_bars_show_the_counts_between_start_and_end():
    out = io.StringIO()
    bars = CliProgress(enabled=True, stream=out, min_interval_s=0.0)
    for done in range(6):
        bars("level 1/2 tiles", done, 5)
    assert "level 1/2 tiles" in out.getvalue()
    for shown in ("1/5", "2/5", "3/5", "4/5"):
        assert shown in out.getvalue(), out.getvalue()
    assert bars.bars == {}  # closed at its end


def test_a_bar_takes_a_grown_total_and_a_restarted_stage_gets_a_new_bar():
    out = io.StringIO()
    bars = CliProgress(enabled=True, stream=out, min_interval_s=0.0)
    bars(OVERALL, 0, 3)
    bars(OVERALL, 1, 3)
    bars(OVERALL, 1, 4)
    bars(OVERALL, 2, 4)
    assert "2/4" in out.getvalue()
    first = bars.bars[OVERALL]
    bars("verify", 0, 2)
    bars("verify", 2, 2)
    bars("verify", 0, 8)
    bars("verify", 3, 8)
    assert "3/8" in out.getvalue()
    assert bars.bars[OVERALL] is first
    bars.close()
    assert bars.bars == {}


def test_disabled_bars_write_nothing():
    out = io.StringIO()
    bars = CliProgress(enabled=False, stream=out)
    bars("warp", 1, 2)
    assert out.getvalue() == ""


def _artifact(artifact: UUID) -> tuple[float, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId

    with get_client(sync_client=True) as client:
        (a,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(id=ArtifactFilterId(any_=[artifact]))
        )
    return float(a.data), a.description


def test_artifact_shows_the_overall_percentage_and_the_current_stage():
    @flow
    def register() -> None:
        progress = ProgressArtifact("local registration of p", min_interval_s=0.0)
        progress(OVERALL, 0, 4)
        progress("global match", 3, 6)
        want = (12.5, "local registration of p — global match: 3/6")
        assert _artifact(progress.artifact) == want
        progress(OVERALL, 1, 4)
        progress("level 1/2 tiles", 2, 2)
        progress("level 1/2 dense", 1, 6)  # a later stage of the phase does not take it back
        want = (50.0, "local registration of p — level 1/2 dense: 1/6")
        assert _artifact(progress.artifact) == want
        progress(OVERALL, 4, 4)
        assert _artifact(progress.artifact)[0] == 100.0

    register()


def test_artifact_updates_are_throttled_but_the_end_is_shown():
    @flow
    def register() -> None:
        progress = ProgressArtifact("run", min_interval_s=3600.0)
        progress(OVERALL, 0, 2)
        progress("verify", 1, 2)
        assert _artifact(progress.artifact)[0] == 0.0
        progress(OVERALL, 2, 2)
        assert _artifact(progress.artifact)[0] == 100.0

    register()
