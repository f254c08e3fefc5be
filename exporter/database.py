"""The database connection: the engine, transactions, and the typed error of a failed call.

Apart from the store, which writes, the query commands use only this (and SQLAlchemy Core):
they start without the store's imports.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from exporter.changes_sql import SQLITE_JSON_EQUAL, same_json
from exporter.errors import DataRefused, StoreError

# At most this many connections at once per sync: its lease, its transaction (begun by the
# early stager while the fetch goes on), and a short query.
CONNECTIONS_PER_SYNC = 3


def make_engine(url: str, concurrent_syncs: int = 1) -> Engine:
    """An engine for the URL, its pool sized for that many syncs at once; SQLite gets foreign
    keys, WAL and a busy timeout."""
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
    else:
        pool_size = max(5, CONNECTIONS_PER_SYNC * concurrent_syncs)
        engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            dbapi_connection.create_function(SQLITE_JSON_EQUAL, 2, same_json, deterministic=True)

    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc


@contextmanager
def continued_transaction(connection: Connection) -> Iterator[Connection]:
    """End a transaction begun earlier on `connection` (e.g. by a writer thread): committed
    when the block ends, rolled back if it raises; the connection is closed either way."""
    try:
        with connection:
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc


@contextmanager
def trial_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that is always rolled back: to learn whether the database takes a write.
    A refusal is raised as DataRefused."""
    try:
        with engine.connect() as connection, connection.begin() as trial:
            try:
                yield connection
            finally:
                trial.rollback()
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc


def store_error(exc: SQLAlchemyError) -> StoreError:
    """The typed error for a failed database call, naming what the database said; DataRefused
    when it refused the data itself."""
    kind = DataRefused if is_refusal(exc) else StoreError
    return kind(f"database error: {type(exc).__name__}: {exc.args[0] if exc.args else exc}")


# What a database (or its driver) raises for the data it is given, as opposed to being
# unreachable: invalid values, values too large for an index, text it cannot encode.
_REFUSALS: tuple[type[BaseException], ...] = (
    DataRefused,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    UnicodeError,
    RecursionError,
    ValueError,
)


def _refusals() -> tuple[type[BaseException], ...]:
    """_REFUSALS and psycopg's, when it is loaded: only a process that loaded the driver (it
    talks to PostgreSQL) can meet its errors, and a SQLite one need not load it (40 ms)."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return _REFUSALS
    return (
        *_REFUSALS,
        psycopg.DataError,
        psycopg.IntegrityError,
        psycopg.errors.ProgramLimitExceeded,
    )


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database refusing the data it was given."""
    refusals = _refusals()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, refusals):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
