"""Acquisition times from text: ISO 8601 dates and dates with times, made timezone-aware."""

from __future__ import annotations

import datetime as dt


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    """An aware datetime from ISO 8601 (``Z`` allowed) or a datetime; UTC when no zone is given.

    Args:
        value: ISO 8601 text (a date, or a date and time), a datetime, or None.

    Returns:
        The aware datetime; None when ``value`` is None or empty.

    Raises:
        ValueError: ``value`` is text that is not ISO 8601.
    """
    if value is None or value == "":
        return None
    t = (
        value
        if isinstance(value, dt.datetime)
        else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
