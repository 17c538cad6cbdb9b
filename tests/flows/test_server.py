"""The Prefect server of the commands (a generous startup limit for the temporary one) and the
work-pool checks, on the session's real temporary Prefect server."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from flows.server import EPHEMERAL_STARTUP_TIMEOUT_S, STARTING, pool_problem, prefect_api


@contextmanager
def _no_server_configured() -> Iterator[None]:
    """Settings as a user has them who set neither PREFECT_API_URL nor the startup limit."""
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import Settings

    ctx = get_settings_context()
    data = ctx.settings.model_dump(exclude_unset=True)
    data.setdefault("server", {}).setdefault("ephemeral", {}).pop("startup_timeout_seconds", None)
    data.setdefault("api", {})["url"] = None
    with SettingsContext(profile=ctx.profile, settings=Settings.model_validate(data)):
        yield


def test_temporary_server_gets_a_generous_startup_limit_and_a_line():
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as LIMIT

    err = io.StringIO()
    with _no_server_configured():
        before = LIMIT.value()
        with prefect_api(err):
            inside = LIMIT.value()
        after = LIMIT.value()
    assert (before, inside, after) == (20, EPHEMERAL_STARTUP_TIMEOUT_S, 20)
    assert err.getvalue() == STARTING + "\n"
    assert "temporary Prefect server" in STARTING and "a minute" in STARTING


def test_the_users_startup_limit_wins():
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as LIMIT
    from prefect.settings import temporary_settings

    with _no_server_configured(), temporary_settings(updates={LIMIT: 33}):
        with prefect_api(io.StringIO()):
            assert LIMIT.value() == 33


def test_a_configured_server_is_used_as_it_is():
    from prefect.settings import PREFECT_API_URL
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as LIMIT

    err = io.StringIO()
    url, limit = PREFECT_API_URL.value(), LIMIT.value()
    assert url  # the session's test server
    with prefect_api(err):
        assert (PREFECT_API_URL.value(), LIMIT.value()) == (url, limit)
    assert err.getvalue() == ""


@pytest.fixture
def pool():
    """A new process work pool with no worker; its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"idle-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    return name


def test_pool_problems(pool):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    assert pool_problem("no-such-pool-x") == "work pool 'no-such-pool-x' does not exist"
    assert pool_problem(pool) == f"work pool {pool!r} has no live worker"
    with get_client(sync_client=True) as client:
        client.send_worker_heartbeat(pool, "w1", heartbeat_interval_seconds=30)
        assert pool_problem(pool) is None  # a worker whose heartbeats arrive
        client.update_work_pool(pool, WorkPoolUpdate(is_paused=True))
        assert pool_problem(pool) == f"work pool {pool!r} is paused"
