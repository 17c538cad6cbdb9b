"""The Prefect server the commands' flows talk to, and the work pools their runs are sent to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO
from uuid import UUID

EPHEMERAL_STARTUP_TIMEOUT_S = 180
PAIR_TIMEOUT_S = 3 * 3600.0  # how long an activation waits for one register-pair deployment run
STARTING = "coalign: starting a temporary Prefect server (first start can take a minute)…"


def ephemeral() -> bool:
    """Whether flows run here start Prefect's temporary local server (no ``PREFECT_API_URL``)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


@contextmanager
def prefect_api(stream: TextIO | None = None) -> Iterator[None]:
    """Run the body's flows against ``PREFECT_API_URL``, or Prefect's temporary local server.

    Without ``PREFECT_API_URL`` Prefect starts a temporary server and waits
    ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` for it (20 s unless set): inside the body
    the wait is :data:`EPHEMERAL_STARTUP_TIMEOUT_S` unless the user set that variable (environment
    or Prefect profile), a line on ``stream`` says what is starting, and the server sends no
    analytics unless ``PREFECT_SERVER_ANALYTICS_ENABLED`` says otherwise.

    Args:
        stream: Where the line goes (default: standard error).
    """
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if not ephemeral():
        yield
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    print(STARTING, file=stream or sys.stderr, flush=True)
    # set_defaults: a value the user set (environment, profile) is kept
    limit = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_TIMEOUT_S}
    with temporary_settings(set_defaults=limit):
        yield


def pool_problem(work_pool: str) -> str | None:
    """Why work pool ``work_pool`` cannot run flow runs now; None when a live worker polls it.

    A pool cannot run them when it does not exist, is paused, or no worker of it is online (the
    server counts a worker online while its heartbeats arrive).

    Args:
        work_pool: The work pool's name.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import WorkerStatus, WorkPoolStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(work_pool)
        except ObjectNotFound:
            return f"work pool {work_pool!r} does not exist"
        if pool.is_paused or pool.status == WorkPoolStatus.PAUSED:
            return f"work pool {work_pool!r} is paused"
        workers = client.read_workers_for_work_pool(work_pool)
    if not any(w.status == WorkerStatus.ONLINE for w in workers):
        seen = f" ({len(workers)} offline)" if workers else ""
        return f"work pool {work_pool!r} has no live worker{seen}"
    return None


def cancel_flow_run(flow_run_id: UUID, reason: str) -> str:
    """Cancel a flow run; the name of the state it was in.

    A run a worker is executing goes to Cancelling (its worker stops the process and marks it
    Cancelled); a run no worker has started goes straight to Cancelled.

    Args:
        flow_run_id: The flow run.
        reason: The state message: why it was cancelled.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        was = run.state.name if run.state else "no state"
        if run.state and run.state.is_final():
            return was
        running = bool(run.state and run.state.is_running())
        new = Cancelling(message=reason) if running else Cancelled(message=reason)
        client.set_flow_run_state(flow_run_id, new, force=True)
    return was
