"""The bare driver connection reads the URLs the engine reads, binds instants as the schema
stores them, streams rows, and checks the schema as the engine's readers do."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import make_url

from exporter import migrate
from exporter.dbapi import Connection, parse_url
from exporter.errors import StoreError
from exporter.sqltypes import UtcDateTime

URLS = [
    "postgresql+psycopg://postgres@127.0.0.1:5432/lineage",
    "postgresql+psycopg://exporter:s%40cr%2Fet@db.internal:6432/lineage?sslmode=verify-full",
    "postgresql://u:p@[::1]:5432/db?application_name=lineage%20exporter&connect_timeout=5",
    "postgresql+psycopg:///lineage?host=/var/run/postgresql",
    "sqlite:///lineage.db",
    "sqlite:////var/lib/lineage/lineage.db",
    "sqlite://",
]


@pytest.mark.parametrize("url", URLS)
def test_a_url_has_the_parts_sqlalchemy_finds_in_it(url: str) -> None:
    ours, theirs = parse_url(url), make_url(url)
    assert ours.backend == theirs.get_backend_name()
    assert (ours.username, ours.password) == (theirs.username, theirs.password)
    assert (ours.host, ours.port, ours.database) == (theirs.host, theirs.port, theirs.database)
    assert ours.query == dict(theirs.query)
    assert "s@cr/et" not in repr(ours)  # a password is never shown


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url", "postgresql://h:port/db"])
def test_a_url_it_cannot_read_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError):
        parse_url(url)


def test_instants_are_bound_as_the_schema_stores_them(db_url: str) -> None:
    """Instants written through SQLAlchemy's UTC type compare with instants bound here exactly
    as with the engine's, to the microsecond, whatever the instant's time zone."""
    written = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    engine = create_engine(db_url)
    insert = text(
        "INSERT INTO sync_runs (workspace_id, started_at, status) VALUES ('w', :t, 'ok')"
    ).bindparams(bindparam("t", type_=UtcDateTime))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO workspaces (id) VALUES ('w')"))
        for offset in (-1, 0, 1):
            conn.execute(insert, {"t": written + timedelta(microseconds=offset)})
    engine.dispose()
    in_cet = written.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+01:00").tzinfo)
    with Connection(db_url) as conn:
        asked = "SELECT COUNT(*) FROM sync_runs WHERE started_at <= :t"
        assert [row[0] for row in conn.rows(asked, {"t": in_cet})] == [2]
        with pytest.raises(ValueError, match="naive"):
            list(conn.rows(asked, {"t": written.replace(tzinfo=None)}))


def test_rows_come_in_batches_as_the_database_sends_them(db_url: str) -> None:
    with Connection(db_url) as conn:
        sql = "SELECT status FROM live_job_statuses UNION ALL SELECT 'x:y' ORDER BY 1"
        rows = list(conn.rows(sql, {}, batch=1))
        assert rows[-1] == ("x:y",) and len(rows) >= 2  # ':y' inside a literal is no parameter
        with pytest.raises(StoreError, match="database error"):
            list(conn.rows("SELECT * FROM no_such_table", {}))


def test_the_schema_is_checked_as_the_engine_checks_it(empty_db_url: str) -> None:
    with Connection(empty_db_url) as conn, pytest.raises(StoreError, match="at revision none"):
        conn.require_current()
    migrate.upgrade(empty_db_url, "0009")
    with Connection(empty_db_url) as conn, pytest.raises(StoreError, match="db upgrade"):
        conn.require_current()
    migrate.upgrade(empty_db_url)
    with Connection(empty_db_url) as conn:
        conn.require_current()


def test_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unreachable"):
        Connection("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="unreachable"):
        Connection(f"sqlite:///{tmp_path}/no/such/folder/x.db")


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("url_from", ["environment", "config file"])
def test_diff_starts_without_sqlalchemy(
    sqlite_url: str, fmt: str, url_from: str, tmp_path: Path
) -> None:
    """The reason for this module: `diff` neither imports SQLAlchemy nor needs it (measured:
    0.5 -> 0.2 s for an empty window), wherever its database URL comes from (a password in
    the file is looked for as SQLAlchemy would read it)."""
    config = tmp_path / "lineage.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n')
    config.chmod(0o600)
    program = (
        "import sys\n"
        "from exporter.cli import main\n"
        f"code = main(['--config', {str(config)!r}, 'diff', '--from', '2000-01-01', "
        f"'--format', '{fmt}'])\n"
        "assert code == 0, code\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    if url_from == "environment":
        env["LINEAGE_EXPORTER_DATABASE_URL"] = sqlite_url
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != ""


def test_a_stream_left_early_leaves_the_connection_usable(db_url: str) -> None:
    """`diff` piped into `head` stops reading: the next question on the connection still works."""
    with Connection(db_url) as conn:
        many = "SELECT s.status FROM live_job_statuses s, sync_runs, workspaces"
        rows = conn.rows("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3", {}, batch=1)
        assert next(rows) == (1,)
        rows.close()
        assert [row[0] for row in conn.rows("SELECT 42", {})] == [42]
        assert list(conn.rows(many, {})) == []


def test_a_postgresql_reader_plans_for_index_ranges(pg_url: str) -> None:
    """Index reads priced as on SSD or cache, no JIT: changes_sql.READER_SETTINGS (a year at
    10,000 deployments read its column versions whole otherwise)."""
    with Connection(pg_url) as conn:
        assert conn.scalar("SHOW jit") == "off"
        assert float(conn.scalar("SHOW random_page_cost")) == 1.1
    with Connection(pg_url + "?options=-c%20statement_timeout%3D5000") as conn:
        assert conn.scalar("SHOW statement_timeout") == "5s"  # the URL's own options kept
        assert conn.scalar("SHOW jit") == "off"


def test_a_sqlite_uri_url_is_opened_as_sqlalchemy_opens_it(sqlite_url: str) -> None:
    """`sqlite:///file:PATH?mode=ro&uri=true`: a read-only reader of the same file."""
    path = sqlite_url.removeprefix("sqlite:///")
    with Connection(f"sqlite:///file:{path}?mode=ro&uri=true") as conn:
        conn.require_current()
        with pytest.raises(StoreError, match="readonly"):
            list(conn.rows("INSERT INTO workspaces (id) VALUES ('w')", {}))


def test_every_query_reads_the_snapshot_of_the_first(db_url: str) -> None:
    """A run committed between two of `diff`'s queries is in neither (one read snapshot), and a
    reader refuses to write."""
    engine = create_engine(db_url)
    insert = text("INSERT INTO workspaces (id) VALUES (:id)")
    count = "SELECT COUNT(*) FROM workspaces"
    try:
        with Connection(db_url) as conn:
            before = conn.scalar(count)
            with engine.begin() as other:
                other.execute(insert, {"id": "committed-meanwhile"})
            assert conn.scalar(count) == before
            with pytest.raises(StoreError):
                conn.scalar("INSERT INTO workspaces (id) VALUES ('from-the-reader') RETURNING id")
        with Connection(db_url) as conn:  # a new reader sees it
            assert conn.scalar(count) == before + 1
    finally:
        engine.dispose()
