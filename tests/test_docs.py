"""The documentation names only environment variables and commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "models", "stac", "tracking", "tasks", "flows", "bench", "samples")


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _source() -> str:
    return (
        "\n".join(p.read_text() for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py")))
        + (REPO / "Makefile").read_text()
    )


def test_documented_environment_variables_are_read_by_the_code():
    source = _source()
    documented = {
        (doc.name, name)
        for doc in _documents()
        for name in re.findall(r"\bCOALIGN_[A-Z0-9_]+\b", doc.read_text())
    }
    assert documented, "the docs name no COALIGN_ variable"
    unread = sorted((doc, name) for doc, name in documented if f'"{name}"' not in source)
    assert unread == []


def test_documented_commands_exist():
    from flows.cli import build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    documented = {
        (doc.name, name)
        for doc in _documents()
        for name in re.findall(r"`coalign ([a-z][a-z-]*)", doc.read_text())
    }
    assert {name for _, name in documented} & commands
    assert sorted((doc, name) for doc, name in documented if name not in commands) == []
