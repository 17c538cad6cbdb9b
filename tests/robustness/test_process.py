"""The process around a run: SIGTERM cleans up like Ctrl-C, tile workers die with a killed
parent, and the temporaries a killed run leaves behind are swept by the next write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
from affine import Affine
from pyproj import CRS

from core.grid import Grid
from models import cog
from models.cog import CogSpec, scratch_path, sweep_stale_temporaries, write_cog
from samples.synth import SyntheticPair
from tests.robustness.conftest import files_under

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0

# The CLI in a child process; a slow COG copy holds the run in its write phase so that a
# signal lands there (scratch file and temporary COG both on disk).
SLOW_WRITE = """
import sys, time
import models.cog
real = models.cog.rio_copy
def slow(src, dst, **kw):
    time.sleep(60)
    real(src, dst, **kw)
models.cog.rio_copy = slow
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""
CLI = "import sys\nfrom flows.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _start(code: str, *argv: str | Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(what: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``what`` until true; fail when the child ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"child ended early ({proc.returncode}):\n{err.decode()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out after {timeout} s waiting in the child")
        time.sleep(0.05)


def _pool_workers(pid: int) -> list[psutil.Process]:
    """The spawn workers among the children of ``pid``."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    workers = []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:
            continue
    return workers


def _register_with_pool(pair: SyntheticPair, out: Path) -> subprocess.Popen[bytes]:
    """``coalign register`` whose finest levels run their tiles on two spawn workers."""
    return _start(
        CLI, "register", pair.optical, pair.sar, "-o", out, "--no-progress",
        "--set", "global_prior=false", "--set", "workers=2", "--set", "tile_px=64",
    )  # fmt: skip


def _kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


@pytest.mark.slow
def test_sigterm_in_the_write_phase_exits_143_and_leaves_nothing(
    small_pair: SyntheticPair, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["register", small_pair.optical, small_pair.sar, "-o", out_dir / "d.tif"]
    proc = _start(SLOW_WRITE, *argv, "--method", "zero", "--no-progress")

    def writing() -> bool:  # the scratch GeoTIFF and the temporary COG both exist
        names = os.listdir(out_dir)
        return any(n.endswith(".scratch.tif") for n in names) and len(names) >= 2

    _wait_for(writing, proc, timeout=120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert "terminated" in err.decode()
    assert files_under(out_dir) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_tile_workers_end_with_their_parent(
    sig: signal.Signals, small_pair: SyntheticPair, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _register_with_pool(small_pair, out_dir / "d.tif")
    descendants: list[psutil.Process] = []
    try:
        _wait_for(lambda: len(_pool_workers(proc.pid)) >= 2, proc, timeout=180)
        # the workers and multiprocessing's resource tracker
        descendants = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        gone, alive = psutil.wait_procs(descendants, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err.decode()[-3000:]
            assert files_under(out_dir) == []
        else:
            assert proc.returncode == -signal.SIGKILL
    finally:
        proc.kill()
        _kill_all(descendants)


# --- the sweep of stale temporaries -----------------------------------------------------------
def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _touch(path: Path, age_s: float) -> Path:
    path.write_bytes(b"x")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_sweep_deletes_only_stale_coalign_temporaries(tmp_path: Path) -> None:
    host, me, dead = cog._host_id(), os.getpid(), _dead_pid()
    other_host = f"{(int(host, 16) + 1) % 16**8:08x}"
    dst = tmp_path / "d.tif"
    stale = [
        _touch(tmp_path / f".d.tif.{host}-{dead}.abcd_123.scratch.tif", HOUR),
        _touch(tmp_path / f".c.tif.{host}-{dead}.zzzzzzzz.scratch.tif", HOUR),  # another output
        _touch(tmp_path / f".d.tif.{other_host}-{dead}.abcdefgh.scratch.tif", 48 * HOUR),
        _touch(tmp_path / ".d.tif.k3j2h1g0.scratch.tif", 48 * HOUR),  # no owner in the name
        _touch(tmp_path / ".d.tif.q9w8e7r6.tif", 48 * HOUR),  # atomic_path's temporary COG
    ]
    kept = [
        _touch(tmp_path / f".d.tif.{host}-{me}.abcdefgh.scratch.tif", 48 * HOUR),  # live writer
        _touch(tmp_path / f".d.tif.{host}-{dead}.recent00.scratch.tif", 10.0),  # just written
        _touch(tmp_path / f".d.tif.{other_host}-{dead}.ijklmnop.scratch.tif", HOUR),
        _touch(tmp_path / ".c.tif.q9w8e7r6.tif", 48 * HOUR),  # another output's temporary
        _touch(tmp_path / ".d.tif.notes", 48 * HOUR),
        _touch(tmp_path / ".d.tif.too_long_name.scratch.tif", 48 * HOUR),
        _touch(tmp_path / "d.tif.abcdefgh.scratch.tif", 48 * HOUR),  # not hidden
        _touch(tmp_path / ".bashrc", 48 * HOUR),
    ]
    folder = tmp_path / f".d.tif.{host}-{dead}.folder00.scratch.tif"
    folder.mkdir()
    os.utime(folder, (time.time() - HOUR,) * 2)
    link = tmp_path / f".d.tif.{host}-{dead}.link0000.scratch.tif"
    link.symlink_to(kept[-1])

    removed = sweep_stale_temporaries(dst)

    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept) and folder.is_dir() and link.is_symlink()


def test_scratch_names_carry_host_and_pid(tmp_path: Path) -> None:
    with scratch_path(tmp_path / "d.tif", ".scratch.tif") as scratch:
        assert scratch.name.startswith(f".d.tif.{cog._host_id()}-{os.getpid()}.")
        assert sweep_stale_temporaries(tmp_path / "d.tif", now=time.time() + 48 * HOUR) == []
        assert scratch.exists()  # this process is alive: its scratch file is in use
    assert not scratch.exists()


def test_write_cog_sweeps_a_killed_runs_scratch(tmp_path: Path) -> None:
    leftover = _touch(
        tmp_path / f".d.tif.{cog._host_id()}-{_dead_pid()}.abcdefgh.scratch.tif", HOUR
    )
    grid = Grid(CRS.from_epsg(32637), Affine(1, 0, 377000, 0, -1, 4106000), 64, 64)
    spec = CogSpec(count=1, block=64)
    write_cog(tmp_path / "d.tif", grid, spec, lambda w: np.ones((1, w.height, w.width)))
    assert files_under(tmp_path) == ["d.tif"] and not leftover.exists()
