"""How pipeline tasks are cached: keyed on their inputs and source, results persisted in the working
directory.

A task's cache key (Prefect 3 cache policies) is the hash of its inputs (``INPUTS``), of its
source code (``TASK_SOURCE``) and of the size and modification time of the input files it
reads (:class:`InputFiles`: a path string says nothing about what the file holds, so a replaced
image must not hit the old key; outputs are left out, or a finished run would change its own key).
Results and cache records are persisted under
``<workdir>/prefect-results``, so a rerun with the same parameters — after a crash, or from
the Prefect UI — reads finished work instead of redoing it. ``PREFECT_TASKS_REFRESH_CACHE=true``
forces recomputation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

RESULTS_DIR = "prefect-results"


@dataclass
class InputFiles(CachePolicy):
    """Size and mtime of the files named by the inputs ``names`` (absent files count as absent)."""

    names: tuple[str, ...] = ()

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        stamps = []
        for name in self.names:
            value = (inputs or {}).get(name)
            if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                st = os.stat(value)
                stamps.append((name, st.st_size, st.st_mtime_ns))
            else:
                stamps.append((name, None, None))
        return hash_objects(stamps)


def cached(*input_files: str) -> dict[str, Any]:
    """Task options: cache on inputs + task source + the input files named, results persisted."""
    return {
        "cache_policy": INPUTS + TASK_SOURCE + InputFiles(names=input_files),
        "persist_result": True,
    }


def result_storage(workdir: str | os.PathLike[str]) -> Path:
    """The result storage of a working directory, ``<workdir>/prefect-results`` (a local file system
    to Prefect)."""
    path = Path(workdir).resolve() / RESULTS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path
