"""The vocabulary of lineage questions: instants in every form the CLI and the explorer take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.errors import QueryError
from exporter.questions import DIRECTIONS, parse_instant


def test_parse_instant_forms() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_instant("now", now) == now
    assert parse_instant("7d", now) == now - timedelta(days=7)
    assert parse_instant("12h", now) == now - timedelta(hours=12)
    assert parse_instant("30m", now) == now - timedelta(minutes=30)
    assert parse_instant("2w", now) == now - timedelta(weeks=2)
    assert parse_instant("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_instant("2026-03-01T10:00:00Z", now) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_instant("2026-03-01T10:00:00+02:00", now) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_instant("2026-03-01 10:00", now) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(QueryError, match="not an instant"):
        parse_instant("last tuesday", now)


def test_directions_name_what_a_traversal_follows() -> None:
    assert DIRECTIONS == {
        "upstream": ("upstream",),
        "downstream": ("downstream",),
        "both": ("upstream", "downstream"),
    }
