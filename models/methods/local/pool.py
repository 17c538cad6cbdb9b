"""Where ``local``'s tile jobs run: in this process, in a pool of spawned processes, or on Dask."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

import cv2

from core.memory import freed_after, keep_freed_memory, return_freed_memory
from models.methods.base import Progress
from models.methods.local.config import LocalConfig
from models.methods.local.tiles import TileJob, TileResult, match_tile
from models.progress import Steps

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_count(conf: LocalConfig) -> int:
    """Tile processes of a run: ``conf.workers``, or for 0 one per CPU core, at most 4."""
    return conf.workers or min(os.cpu_count() or 1, 4)


def _watch_parent(parent: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """Make this process end as soon as process ``parent`` (its parent) is gone.

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``; it
    fires when the thread that started this process ends, and a pool's workers are started by
    the thread that maps the tiles, which outlives the pool); everywhere a daemon thread also
    checks every ``poll_s`` seconds whether this process was handed to another parent.
    Without this, spawn workers of a killed run live on, and so does multiprocessing's
    resource tracker, which waits for them.

    Args:
        parent: PID of the process that started this one.
        poll_s: Seconds between the watch thread's checks.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this C library: the thread still watches
            pass
    if os.getppid() != parent:  # the parent died before the above took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent, poll_s), name="coalign-parent-watch", daemon=True
    ).start()


# tiles this worker process has started and finished
_tiles = {"started": 0, "finished": 0}


def _pool_tile(job: TileJob) -> TileResult:
    """:func:`match_tile` in a pool worker, counted for :func:`_trim_when_idle`."""
    _tiles["started"] += 1
    try:
        return match_tile(job)
    finally:
        _tiles["finished"] += 1


def _trim_when_idle(idle_s: float = 0.25, stop: threading.Event | None = None) -> None:
    """Hand the worker's freed memory back once no tile has run for ``idle_s`` (between levels,
    while the run composes the field), once per stretch of tiles; until ``stop`` is set."""
    stop = stop or threading.Event()
    trimmed = 0
    while not stop.wait(idle_s):
        finished = _tiles["finished"]
        if finished == trimmed or _tiles["started"] != finished:
            continue
        if not stop.wait(idle_s) and _tiles["started"] == finished:
            return_freed_memory()
            trimmed = finished


def _worker_init(parent: int) -> None:
    # one tile per process: OpenCV's own threads would only contend with the other workers
    cv2.setNumThreads(1)
    die_with_parent(parent)
    # each tile allocates what the last one freed: reused, not faulted in and zeroed again
    keep_freed_memory()
    threading.Thread(target=_trim_when_idle, name="coalign-idle-trim", daemon=True).start()


class TilePool:
    """A process pool for tile jobs, started on first use and kept for every level of one run.

    Its workers end with the process that started them (:func:`die_with_parent`). They keep
    the memory a tile frees for the next tile (:func:`~core.memory.keep_freed_memory`) and
    hand it back once idle (:func:`_trim_when_idle`).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def map(self, fn: Callable[[TileJob], TileResult], jobs: list[TileJob]) -> Iterator[TileResult]:
        """``fn`` over ``jobs`` in the worker processes, results in job order."""
        return self._executor().map(fn, jobs)

    def submit(self, fn: Callable[[TileJob], TileResult], job: TileJob) -> Future[TileResult]:
        """``fn(job)`` in a worker process."""
        return self._executor().submit(fn, job)

    def close(self, abandon: bool = False) -> None:
        """Stop the workers: after the tiles running finish, or at once when ``abandon`` (an
        error or a signal ended the run: queued tiles are cancelled, running ones killed)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abandon:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=abandon)

    def __enter__(self) -> TilePool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(abandon=exc_type is not None)


def _run_on_dask(address: str, jobs: list[TileJob], steps: Steps) -> list[TileResult]:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    with Client(address) as client:
        futures = client.map(match_tile, jobs, pure=False)
        for _ in dask_completed(futures):
            steps.step()
        return list(client.gather(futures))


def _run_in_pool(
    jobs: list[TileJob], workers: int, steps: Steps, pool: TilePool | None
) -> list[TileResult]:
    """The jobs in ``pool`` (or a pool of ``workers`` started for them); a step per tile
    finished, in whatever order they finish."""
    p = TilePool(workers) if pool is None else pool
    futures: list[Future[TileResult]] = []
    try:
        futures = [p.submit(_pool_tile, job) for job in jobs]
        for future in as_completed(futures):
            future.result()  # a failed tile ends the run now
            steps.step()
        results = [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        if pool is None:
            p.close(abandon=True)
        raise
    if pool is None:
        p.close()
    return results


def run_tiles(
    jobs: list[TileJob],
    conf: LocalConfig,
    progress: Progress,
    stage: str,
    pool: TilePool | None = None,
) -> list[TileResult]:
    """Run tile jobs on Dask, in a process pool or in this process; results keep job order.

    Args:
        jobs: The tile jobs.
        conf: The settings (``dask_address``, ``workers``).
        progress: Called as ``(stage, done, total)``: 0 of the jobs at the start, then once
            per tile finished.
        stage: The stage name given to ``progress``.
        pool: The run's pool; without one a pool is started for these jobs alone.
    """
    steps = Steps(progress, stage, len(jobs))
    if conf.dask_address:
        return _run_on_dask(conf.dask_address, jobs, steps)
    workers = worker_count(conf)
    if workers > 1 and len(jobs) > 1:
        return _run_in_pool(jobs, workers, steps, pool)
    results = []
    with freed_after():
        for job in jobs:
            results.append(match_tile(job))
            steps.step()
    return results
