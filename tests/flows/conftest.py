"""Flow tests run against a temporary Prefect server (prefect_test_harness) with its home in a temp dir."""

from __future__ import annotations

import os
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    home = tempfile.mkdtemp(prefix="coalign-prefect-home-")
    os.environ["PREFECT_HOME"] = home
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
