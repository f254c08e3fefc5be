"""What the table models and the raw-SQL readers (`diff`, the explorer) share: the UTC time
type and the term that lets SQLite use its time indexes. SQLAlchemy Core only: a reader imports
this without the ORM."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; timestamptz on PostgreSQL, naive-UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite's planner has no histograms: it takes `valid_from <= T` (an as-of question, true of half
# a year's rows) for a selective range and would walk lineage through the time index instead of
# the endpoint index. On SQLite the time indexes cover only queries that say this (always true)
# term, as lineage_changes and `diff` do; PostgreSQL's planner needs no such help.
TIME_INDEX_GUARD = "run_id IS NOT NULL"
