"""The one timestamp format of every response: `YYYY-MM-DD HH:MM:SS`, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def api_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # strftime's result, at half its cost (every answer names a time or several).
    return value.isoformat(" ", "seconds")[:19]


def iso_time(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as in the delivered event body."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" → "Z"
