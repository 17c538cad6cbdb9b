"""Processes side by side: Ctrl-C during register, concurrent registers into one folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from samples.synth import SyntheticPair
from tests.robustness.conftest import error_line, files_under

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# `coalign` as its entry point runs it, announcing on stderr when every sub-command module is
# imported, so a signal sent after the announcement lands in the command's own work
DRIVER = (
    "import sys\n"
    "from flows import cli\n"
    "cli.build_parser()\n"
    "print('ready', file=sys.stderr, flush=True)\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def _coalign(*argv: str | Path, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *map(str, argv)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def _cropped_opticals(pair: SyntheticPair, folder: Path, widths: list[int]) -> list[Path]:
    """Copies of the optical image cut to ``widths`` columns: outputs of each differ in width."""
    folder.mkdir()
    paths = []
    with rasterio.open(pair.optical) as src:
        for width in widths:
            window = Window(0, 0, width, src.height)
            profile = {**src.profile, "width": width, "transform": src.window_transform(window)}
            path = folder / f"optical_{width}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(src.read(window=window))
            paths.append(path)
    return paths


def _check_map(path: Path, width: int, height: int) -> None:
    """``path`` is a complete SN9 map of ``width`` × ``height`` optical pixels."""
    with rasterio.open(path) as ds:
        assert (ds.count, ds.dtypes[0], ds.width, ds.height) == (2, "float32", width, height)
        assert np.isfinite(ds.read()).any()


def _register_global_affine(pair: SyntheticPair, out: Path) -> subprocess.Popen:
    """``coalign register`` of ``pair`` by global-affine into ``out``, announced by ``ready``."""
    proc = _coalign(
        "register",
        pair.optical,
        pair.sar,
        "-o",
        out / "d.tif",
        "--confidence",
        out / "c.tif",
        "--method",
        "global-affine",
        "--device",
        "cpu",
        "--no-progress",
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "ready"
    return proc


@pytest.fixture(scope="module")
def register_seconds(small_pair: SyntheticPair, tmp_path_factory) -> float:
    """How long the register of the SIGINT test works after ``ready`` when left alone, so the
    signal can be sent at a share of it on any machine.

    Measured on a second run: the first loads the libraries from a cold disk cache and takes
    longer than the runs the signal is sent to. The work ends when the displacement map is in
    place; the process then still writes the confidence map and shuts down, where a signal
    meets finished work.
    """
    working = 0.0
    for attempt in ("cold", "warm"):
        out = tmp_path_factory.mktemp(f"uninterrupted-{attempt}")
        proc = _register_global_affine(small_pair, out)
        start = time.perf_counter()
        while proc.poll() is None and not (out / "d.tif").exists():
            time.sleep(0.01)
        working = time.perf_counter() - start
        proc.communicate(timeout=300)
        assert proc.returncode == 0
    return working


@pytest.mark.parametrize("share", [0.05, 0.5])
def test_sigint_during_register_exits_130_and_leaves_nothing(
    share: float, register_seconds: float, small_pair: SyntheticPair, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _register_global_affine(small_pair, out)
    time.sleep(share * register_seconds)  # early (imports) and in the middle of the work
    assert proc.poll() is None, "register finished before the signal: the test needs more work"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted", err
    assert files_under(out) == []


def test_concurrent_registers_into_one_folder(small_pair: SyntheticPair, tmp_path: Path) -> None:
    widths = [240, 224, 208, 192]
    opticals = _cropped_opticals(small_pair, tmp_path / "in", widths)
    out = tmp_path / "out"
    out.mkdir()
    procs = [
        _coalign(
            "register",
            o,
            small_pair.sar,
            "-o",
            out / f"d{w}.tif",
            "--method",
            "zero",
            "--no-progress",
        )
        for o, w in zip(opticals, widths, strict=True)
    ]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert [code for code, _ in results] == [0] * len(widths), results
    assert files_under(out) == sorted(f"d{w}.tif" for w in widths)
    for w in widths:
        _check_map(out / f"d{w}.tif", w, 240)


def test_two_registers_to_one_output_leave_one_valid_file(
    small_pair: SyntheticPair, tmp_path: Path
) -> None:
    widths = [240, 208]
    opticals = _cropped_opticals(small_pair, tmp_path / "in", widths)
    out = tmp_path / "out"
    out.mkdir()
    procs = [
        _coalign("register", o, small_pair.sar, "-o", out / "d.tif", "--method", "zero")
        for o in opticals
    ]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = [code for code, _ in results]
    assert set(codes) <= {0, 2} and 0 in codes, results
    for code, err in results:
        if code == 2:  # a refusal is allowed: one clear line, nothing else
            error_line(err.removeprefix("ready\n"), "register")
    assert files_under(out) == ["d.tif"]
    with rasterio.open(out / "d.tif") as ds:
        width = ds.width
    assert width in [w for w, code in zip(widths, codes, strict=True) if code == 0]
    _check_map(out / "d.tif", width, 240)
