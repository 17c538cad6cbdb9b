"""Robustness test fixtures: a small synthetic pair, the CLI run in-process, folder listings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from samples.synth import SceneSpec, ShiftModel, SyntheticPair, synthesize_pair

PAIR_SIZE_M = 120.0
PAIR_ORIGIN = (377000.0, 4106000.0)
SHIFT_M = (8.0, -6.0)  # optical → SAR ground shift, metres east and north

CliRun = Callable[..., tuple[int, str]]


def small_spec(**changes: Any) -> SceneSpec:
    """A 120 m scene (240 × 240 optical pixels) with a pure translation of ``SHIFT_M``.

    The SAR is rendered from the optical luminance (same modality, 200 looks) as float32
    amplitude with NaN nodata, so global-affine recovers the shift reliably and quickly.

    Args:
        changes: ``SceneSpec`` fields to change (e.g. ``sar_rotation_deg=30.0``).
    """
    centre = (PAIR_ORIGIN[0] + PAIR_SIZE_M / 2, PAIR_ORIGIN[1] - PAIR_SIZE_M / 2)
    fields: dict[str, Any] = {
        "size_m": PAIR_SIZE_M,
        "origin": PAIR_ORIGIN,
        "sar_appearance": "luminance",
        "speckle_looks": 200.0,
        "sar_dtype": "float32",
        "n_tiepoints": 30,
        "shift": ShiftModel(offset=SHIFT_M, centre=centre),
    }
    fields.update(changes)
    return SceneSpec(**fields)


def expected_shift_px(spec: SceneSpec) -> tuple[float, float]:
    """The SN9 (dx, dy) in optical pixels of a translation-only spec (north-up optical grid)."""
    return spec.shift.offset[0] / spec.optical_res, -spec.shift.offset[1] / spec.optical_res


@pytest.fixture(scope="session")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPair:
    """``small_spec()`` written once per session into its own folder (never an output folder)."""
    return synthesize_pair(tmp_path_factory.mktemp("robustness-pair"), small_spec(), "small")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRun:
    """``cli(*argv)`` runs ``coalign`` in-process and returns (exit code, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors exit through SystemExit
            code = exc.code if isinstance(exc.code, int) else 1
        return code, capsys.readouterr().err

    return run


def error_line(stderr: str, command: str) -> str:
    """The one line ``coalign <command>: error: …`` that stderr must consist of; its message.

    Args:
        stderr: What the command wrote to stderr.
        command: The sub-command name, e.g. ``"register"``.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    prefix = f"coalign {command}: error: "
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]


def files_under(folder: str | Path) -> list[str]:
    """Every non-folder entry below ``folder`` (hidden and nested included), sorted, relative.

    Args:
        folder: The folder to list; a missing folder lists as empty.
    """
    root = Path(folder)
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())
