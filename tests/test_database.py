"""The database connection: engines, transactions that commit or roll back whole, and the
typed errors of failed calls, on both databases."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from exporter import database
from exporter.errors import DataRefused, StoreError


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = database.make_engine(db_url)
    yield made
    made.dispose()


def _workspaces(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT id FROM workspaces ORDER BY id")))


def test_a_transaction_commits_whole_or_not_at_all(engine: Engine) -> None:
    with database.transaction(engine) as conn:
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('kept')"))
    with pytest.raises(RuntimeError), database.transaction(engine) as conn:
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('rolled-back')"))
        raise RuntimeError("a failure mid-transaction")
    assert _workspaces(engine) == ["kept"]


def test_a_refused_write_is_data_refused_and_a_broken_query_a_store_error(
    engine: Engine,
) -> None:
    with database.transaction(engine) as conn:
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('w')"))
    with (
        pytest.raises(DataRefused, match="database error"),
        database.transaction(engine) as conn,
    ):
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('w')"))  # its primary key
    with pytest.raises(StoreError) as raised, database.transaction(engine) as conn:
        conn.execute(text("SELECT no_such_column FROM workspaces"))
    assert not isinstance(raised.value, DataRefused)
    assert not database.is_refusal(raised.value)


def test_a_sqlite_process_never_loads_the_postgresql_driver(sqlite_url: str) -> None:
    """SQLite is the default: a sync into it loads everything a sync does but psycopg (40 ms
    of every command's start-up), and still tells a refused write from a broken one."""
    program = (
        "import sys\n"
        "from sqlalchemy import text\n"
        "from exporter import cli, database, early, staging, store, sync\n"
        "from exporter.errors import DataRefused\n"
        f"engine = database.make_engine({sqlite_url!r})\n"
        "try:\n"
        "    with database.transaction(engine) as conn:\n"
        "        for _ in range(2):\n"
        "            conn.execute(text(\"INSERT INTO workspaces (id) VALUES ('w')\"))\n"
        "except DataRefused:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('a duplicate key was not refused')\n"
        "assert 'psycopg' not in sys.modules, 'psycopg was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_trial_transaction_is_always_rolled_back(engine: Engine) -> None:
    with database.trial_transaction(engine) as conn:
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('tried')"))
    assert _workspaces(engine) == []


def test_sqlite_enforces_foreign_keys_and_writes_ahead(sqlite_url: str) -> None:
    engine = database.make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_pool_holds_every_connection_of_concurrent_syncs(pg_url: str) -> None:
    engine = database.make_engine(pg_url, concurrent_syncs=4)
    try:
        assert engine.pool.size() == 4 * database.CONNECTIONS_PER_SYNC  # type: ignore[attr-defined]
    finally:
        engine.dispose()
