"""Identifiers: the id of an optical/SAR pair and STAC-safe slugs."""

from __future__ import annotations

import re

from core.errors import InputError

__all__ = ["pair_id", "slug"]


def pair_id(optical_id: str, sar_id: str) -> str:
    """The id of the pair of two scenes: ``<optical id>__<sar id>`` with ``/`` turned into ``-``
    (Maxar item ids hold slashes), used as a folder name and in STAC ids.

    Args:
        optical_id: The optical scene's STAC item id.
        sar_id: The SAR scene's STAC item id.
    """
    return f"{optical_id}__{sar_id}".replace("/", "-")


def key_slug(text: str, fallback: str, limit: int | None = 100) -> str:
    """A Prefect artifact key or resource name: lowercase ASCII letters, digits and ``-``.

    Every run of other characters becomes one ``-``; leading and trailing ``-`` go; at most
    ``limit`` characters (None: no limit).

    Args:
        text: Any text (an event name, an experiment).
        fallback: What to return when nothing is left.
        limit: The longest key returned.
    """
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-") or fallback


def slug(text: str) -> str:
    """An id safe as a file name and in STAC API paths (letters, digits, ``.``, ``_``, ``-``).

    Every run of other characters becomes one ``-``; leading and trailing ``-`` and ``.`` go.

    Args:
        text: Any text (an activation name, a pair × method id).

    Raises:
        InputError: Nothing is left (``text`` has no ASCII letters or digits).
    """
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not s:
        raise InputError(f"cannot make a STAC id from {text!r}: it has no letters or digits")
    return s
