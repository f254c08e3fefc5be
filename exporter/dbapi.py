"""A bare driver connection (psycopg or sqlite3) for a query command whose start-up would be most
of its time: `diff --format json` reads what the database encodes and writes it, and importing
SQLAlchemy alone takes longer than the database's answer to a day's question.

It reads the same URLs as the engine (`exporter.database.make_engine`): SQLAlchemy's form
(`postgresql+psycopg://user:password@host:port/database?option=value`,
`sqlite:///path/to/file.db`), its parts decoded as SQLAlchemy decodes them (a test compares the
two on URLs of every form). SQL is written with named parameters (`:name`), as for
SQLAlchemy's `text()`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from exporter.changes_sql import READER_SETTINGS, SQLITE_JSON_EQUAL, same_json
from exporter.errors import StoreError
from exporter.migrate import require_head

# SQLAlchemy's own pattern for a URL (sqlalchemy.engine.url._parse_url), so both read the
# same parts of the same text.
_URL = re.compile(
    r"""(?P<name>[\w\+]+)://
    (?:
        (?P<username>[^:/]*)
        (?::(?P<password>[^@]*))?
    @)?
    (?:
        (?:
            \[(?P<ipv6host>[^/\?]+)\] |
            (?P<ipv4host>[^/:\?]+)
        )?
        (?::(?P<port>[^/\?]*))?
    )?
    (?:/(?P<database>[^\?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)
# A named parameter of `text()`: `:name`, not a cast's `::type`.
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class DatabaseUrl:
    """The parts of a database URL, decoded."""

    backend: str  # postgresql or sqlite
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)


def parse_url(url: str) -> DatabaseUrl:
    """The parts of `url`; a StoreError when it is not a PostgreSQL or SQLite URL."""
    match = _URL.match(url)
    backend = match.group("name").split("+")[0] if match else ""
    if match is None or backend not in ("postgresql", "sqlite"):
        raise StoreError("database url must start with postgresql:// or sqlite://")
    parts = match.groupdict()
    query = {}
    for pair in (parts["query"] or "").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            query[unquote(key)] = unquote(value)
    port = parts["port"]
    if port is not None and not port.isdigit():
        raise StoreError(f"database url has an invalid port {port!r}")
    return DatabaseUrl(
        backend=backend,
        username=unquote(parts["username"]) if parts["username"] is not None else None,
        password=unquote(parts["password"]) if parts["password"] is not None else None,
        host=parts["ipv6host"] or parts["ipv4host"],
        port=int(port) if port else None,
        database=parts["database"] or None,
        query=query,
    )


class Connection:
    """One driver connection that reads: rows of a query, streamed, and nothing else.

    Its queries read one snapshot, the database as it was at the first of them: `diff` asks one
    query per kind of entity, and a sync that commits between two of them must not make its
    answer half before and half after that sync. (PostgreSQL: a read-only REPEATABLE READ
    transaction; SQLite: one read transaction, which in WAL mode writers do not wait for.)
    """

    def __init__(self, url: str) -> None:
        parts = parse_url(url)
        self.dialect = parts.backend
        connect = _connect_postgresql if self.dialect == "postgresql" else _connect_sqlite
        self._driver: Any  # psycopg's or sqlite3's connection
        self._errors: _Errors  # what its driver raises
        try:
            self._driver, self._errors = connect(parts)
        except Exception as exc:  # the driver's own error types; reported as the store's
            raise StoreError(f"database unreachable: {type(exc).__name__}: {exc}") from exc

    def rows(
        self, sql: str, params: Mapping[str, Any], batch: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of `sql` as the database sends them, about `batch` at a time, never the
        whole answer; datetimes in `params` are bound as the schema stores them."""
        bound = {name: self._bound(value) for name, value in params.items()}
        try:
            if self.dialect == "postgresql":
                yield from self._streamed(
                    _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%")), bound, batch
                )
            else:
                cursor = self._driver.execute(sql, bound)
                while chunk := cursor.fetchmany(batch):
                    yield from chunk
        except self._errors as exc:
            raise StoreError(f"database error: {type(exc).__name__}: {exc}") from exc

    @property
    def parallel(self) -> bool:
        """Whether PostgreSQL may run this connection's reads in parallel: they are plain
        queries streamed in chunks (libpq 17 and later), not server-side cursors, which it
        never runs in parallel."""
        if self.dialect != "postgresql":
            return False
        import psycopg

        return bool(psycopg.pq.version() >= 170000)

    def _streamed(self, sql: str, params: dict[str, Any], batch: int) -> Iterator[tuple[Any, ...]]:
        """PostgreSQL's rows as it sends them: in chunks where libpq can (17 and later), with
        no round trip per batch (a server-side cursor waits for each FETCH); else through a
        server-side cursor, `batch` rows per FETCH."""
        if self.parallel:
            yield from self._driver.cursor().stream(sql, params, size=batch)
            return
        with self._driver.cursor(name="lineage_rows") as cursor:
            cursor.itersize = batch
            cursor.execute(sql, params)
            yield from cursor

    def scalar(self, sql: str) -> Any:
        """The first column of the first row of `sql`, or None."""
        return next(iter(self.rows(sql, {}, batch=1)), (None,))[0]

    def require_current(self) -> None:
        """A StoreError telling the user to run `db upgrade` unless the schema is the one this
        release reads (as exporter.migrate.require_current says it)."""
        exists = (
            "SELECT to_regclass('alembic_version') IS NOT NULL"
            if self.dialect == "postgresql"
            else "SELECT COUNT(*) FROM sqlite_master WHERE name = 'alembic_version'"
        )
        current = None  # no table: no migration ever ran
        if self.scalar(exists):
            current = self.scalar("SELECT version_num FROM alembic_version")
        require_head(current)

    def _bound(self, value: Any) -> Any:
        """A datetime as exporter.sqltypes.UtcDateTime binds it: aware, and naive UTC text with
        microseconds on SQLite."""
        if not isinstance(value, datetime):
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        if self.dialect == "sqlite":
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_Errors = tuple[type[Exception], ...]


def _connect_postgresql(parts: DatabaseUrl) -> tuple[Any, _Errors]:
    """As SQLAlchemy's psycopg dialect connects: the URL's parts, then its query as options."""
    import psycopg  # only here: a SQLite reader never pays for importing it

    options: dict[str, Any] = {
        "host": parts.host,
        "port": parts.port,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.database,
    }
    options = {key: value for key, value in options.items() if value is not None}
    options.update(parts.query)
    planned = [f"-c {name}={value}" for name, value in READER_SETTINGS.items()]
    options["options"] = " ".join([options.get("options", ""), *planned]).strip()
    connection = psycopg.connect(**options)
    connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
    connection.read_only = True
    return connection, (psycopg.Error,)


def _connect_sqlite(parts: DatabaseUrl) -> tuple[Any, _Errors]:
    """The file the URL names (none: a new database in memory; `?uri=true`: a SQLite URI, as
    SQLAlchemy reads it), waiting for a writer as the engine does, with the JSON comparison
    the engine registers."""
    database = parts.database or ":memory:"
    uri = parts.query.get("uri") == "true"
    if uri:
        options = "&".join(f"{k}={v}" for k, v in parts.query.items() if k != "uri")
        database = f"{database}?{options}" if options and "?" not in database else database
    connection = sqlite3.connect(database, timeout=30, uri=uri)
    connection.create_function(SQLITE_JSON_EQUAL, 2, same_json, deterministic=True)
    connection.execute("PRAGMA query_only = ON")  # a reader, as PostgreSQL's is read-only
    connection.execute("BEGIN")  # one read transaction: its snapshot is taken by the first read
    return connection, (sqlite3.Error,)
