"""Activations sent to a work pool that cannot run them: a clear error before any job starts, the
in-process fallback, and deployment runs cancelled after the pair timeout — on real work pools and
a real register-pair deployment of the session's temporary Prefect server."""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path

import pytest

from flows.activation import activation
from flows.cli import main

REPO = Path(__file__).resolve().parents[2]


def _coalign(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def pool():
    """A new process work pool with the register-pair deployment on it and no worker; its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"idle-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        client.create_deployment(
            flow_id=client.create_flow_from_name("register-pair"),
            name=f"register-pair-{name}",
            work_pool_name=name,
            entrypoint="flows/register_pair.py:register_pair",
            path=str(REPO),
            parameters={"method": "zero", "device": "cpu"},
        )
    return name


def _runs_on(pool: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])), limit=20
        )


def _argv(sample, work, pool: str) -> list[str]:
    ev = sample["event"]
    return [
        "activate",
        "--event",
        "pool-quake",
        "--catalog",
        sample["catalogs"][0],
        "--catalog",
        sample["catalogs"][1],
        "--event-date",
        ev.event_date.isoformat(),
        "--method",
        "zero",
        "--workdir",
        str(work),
        "--gpu-work-pool",
        pool,
        "--pair-timeout",
        "60",
    ]


def test_a_pool_without_a_worker_stops_the_activation_before_any_job(pool, sample, new_workdir):
    from mlflow.tracking import MlflowClient

    work = new_workdir("idle-pool")
    code, out, err = _coalign(*_argv(sample, work, pool))
    assert code == 2, out + err
    line = err.strip().splitlines()[-1]
    assert line.startswith("coalign activate: error: ")
    assert f"work pool {pool!r} has no live worker" in line
    assert f"prefect worker start --pool {pool}" in line and "--fallback-in-process" in line
    assert "--gpu-work-pool cpu" in line
    assert _runs_on(pool) == []  # nothing was sent to the pool
    assert (
        MlflowClient(f"sqlite:///{work / 'mlflow.db'}").search_experiments(
            filter_string="name = 'pool-quake'"
        )
        == []
    )  # no parent run left RUNNING: tracking had not started


def test_fallback_registers_in_this_process(pool, sample, activation_params, new_workdir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    work = new_workdir("fallback")
    params = activation_params(work, gpu_work_pool=pool, fallback_in_process=True)
    state = activation(**params, pair_timeout_s=60, return_state=True)
    summary = state.result()
    assert state.is_completed() and (summary["runs"], summary["failed"]) == (1, 0)
    assert summary["results"][0]["mean_m"] > 20  # the zero method scored here
    assert _runs_on(pool) == []
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    warnings = [g.message for g in logs if g.level == 30]
    assert any(
        f"work pool {pool!r} has no live worker" in m and "in this process" in m for m in warnings
    ), warnings


def test_a_run_no_worker_takes_is_cancelled_after_the_pair_timeout(
    pool, activation_params, new_workdir
):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        # a worker that heartbeats but never takes a run (stuck, or its slots all busy)
        client.send_worker_heartbeat(pool, "stuck", heartbeat_interval_seconds=60)
    work = new_workdir("timeout")
    params = activation_params(work, gpu_work_pool=pool, pair_timeout_s=3)
    state = activation(**params, return_state=True)
    summary = state.result(raise_on_failure=False)
    assert state.is_failed() and state.message == "the registration failed"
    (row,) = summary["results"]
    assert row["status"] == "failed" and "pair_timeout_s" in row["error"]
    assert "cancelled" in row["error"]
    assert any(f"still {s}" in row["error"] for s in ("Scheduled", "Late")), row["error"]
    (run,) = _runs_on(pool)
    assert run.state.is_cancelled() and "pair_timeout_s" in run.state.message
