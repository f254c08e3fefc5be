"""The vocabulary of lineage questions: instants and directions.

Without SQL, so that the CLI can parse a question before it connects (and without importing
the schema)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from exporter.errors import QueryError

Direction = Literal["upstream", "downstream"]
DIRECTIONS: dict[str, tuple[Direction, ...]] = {
    "upstream": ("upstream",),
    "downstream": ("downstream",),
    "both": ("upstream", "downstream"),
}
_RELATIVE = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# -- instants ---------------------------------------------------------------------------------


def parse_instant(value: str, now: datetime) -> datetime:
    """An instant from `now`, an ISO-8601 timestamp or date (UTC unless it says otherwise), or a
    relative form meaning that long ago: `90s`, `15m`, `12h`, `7d`, `2w`."""
    text_value = value.strip()
    if text_value.lower() == "now":
        return now
    relative = _RELATIVE.match(text_value.lower())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        if len(text_value) == 10:
            day = date.fromisoformat(text_value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text_value)
    except ValueError:
        raise QueryError(
            f"{value!r} is not an instant: use an ISO-8601 timestamp "
            "(2026-03-01T12:00:00Z), a date (2026-03-01), `now`, or a relative form (7d, 12h)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
