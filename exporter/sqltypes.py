"""What the schema and the raw-SQL readers (`diff`, the explorer) share: the UTC time
type and the term that lets SQLite use its time indexes. SQLAlchemy Core only: a reader imports
this without the ORM."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, TypeDecorator

from exporter import changes_sql


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


# Defined with the SQL it guards (a module without SQLAlchemy); its why is told there.
TIME_INDEX_GUARD = changes_sql.TIME_INDEX_GUARD
