"""Everything an activation and a comparison write is readable by others when the umask says so."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flows.activation import activation
from flows.compare import run_compare

SHARED = ("pairs", "catalog", "mlartifacts", "compare")


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of every file and folder under the shared parts of a workdir."""
    found = {}
    for part in SHARED:
        for path in [root / part, *(root / part).rglob("*")]:
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_activation_outputs_follow_the_umask(mask, umask, sample, activation_params, new_workdir):
    umask(mask)
    work = new_workdir(f"modes-{mask:o}")
    summary = activation(**activation_params(work, event=f"modes-{mask:o}"))
    assert summary["failed"] == 0
    run_compare(f"modes-{mask:o}", str(work))
    modes = _modes(work)
    files = {p: m for p, m in modes.items() if (work / p).is_file()}
    folders = {p: m for p, m in modes.items() if (work / p).is_dir()}
    # products, QA pictures, published copies, MLflow artifact copies and comparison outputs
    for part in SHARED:
        assert any(p.startswith(part + "/") for p in files), f"nothing written under {part}"
    assert {p: m for p, m in files.items() if m != 0o666 & ~mask} == {}
    assert {p: m for p, m in folders.items() if m != 0o777 & ~mask} == {}
