"""Prefect tasks: thin, retried, cached units of work over models/ and stac/.

Flows take the tasks of one working directory from :func:`for_workdir`, so their results and
cache records are persisted under ``<workdir>/prefect-results`` however the flow was started
(command line, deployment run on a worker, Dask worker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from prefect import Task

from tasks import catalog, registration
from tasks.caching import result_storage


@dataclass(frozen=True)
class Tasks:
    """The pipeline tasks, bound to one working directory's result storage; each field is named
    as the task function it holds."""

    discover_scenes: Task
    pair: Task
    fetch_asset: Task
    validate_pair: Task
    register: Task
    warp: Task
    score: Task
    qa: Task
    publish: Task


_TASKS = Tasks(
    discover_scenes=catalog.discover_scenes,
    pair=catalog.pair,
    fetch_asset=catalog.fetch_asset,
    validate_pair=catalog.validate_pair,
    register=registration.register,
    warp=registration.warp,
    score=registration.score,
    qa=registration.qa,
    publish=catalog.publish,
)


def for_workdir(workdir: str | os.PathLike[str]) -> Tasks:
    """Every pipeline task with results persisted under ``<workdir>/prefect-results``."""
    storage = result_storage(workdir)
    return Tasks(
        **{
            f.name: getattr(_TASKS, f.name).with_options(result_storage=storage)
            for f in fields(Tasks)
        }
    )
