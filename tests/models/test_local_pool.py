"""Tile pool workers: idle workers hand their freed memory back."""

from __future__ import annotations

import threading
import time

import pytest

from models.methods.local import pool


def _wait_until(condition, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_idle_worker_trims_once_per_stretch_of_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(pool, "return_freed_memory", lambda: trims.append(1) or True)
    monkeypatch.setattr(pool, "_tiles", {"started": 0, "finished": 0})
    stop = threading.Event()
    watcher = threading.Thread(target=pool._trim_when_idle, args=(0.01, stop), daemon=True)
    watcher.start()
    try:
        time.sleep(0.1)
        assert trims == []  # no tile yet: nothing to hand back
        pool._tiles.update(started=1)
        time.sleep(0.1)
        assert trims == []  # a tile running
        pool._tiles.update(finished=1)
        assert _wait_until(lambda: len(trims) == 1)
        time.sleep(0.1)
        assert len(trims) == 1  # still idle: once per stretch
        pool._tiles.update(started=3, finished=3)
        assert _wait_until(lambda: len(trims) == 2)
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert not watcher.is_alive()
