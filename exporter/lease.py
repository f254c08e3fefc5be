"""Leases: never two syncs of one workspace at once, across processes and replicas.

PostgreSQL: a session-level advisory lock per workspace, held on its own connection for the
length of a sync. Replicas of `lineage-exporter run` split the workspaces between them simply by
each skipping a workspace whose lease another holds; a replica that dies loses its connection
and with it its leases, so another replica takes the workspace at its next tick.

SQLite: an exclusive lock on a file beside the database (`<database>.lease-<workspace>`), and a
daemon lock (`<database>.daemon`) that lets only one daemon run on a file: SQLite is for a single
replica.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select

from exporter.errors import StoreError

log = logging.getLogger(__name__)


def advisory_key(workspace_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for the workspace."""
    digest = hashlib.sha256(f"lineage-exporter:{workspace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def workspace_lease(engine: Engine, workspace_id: str) -> Iterator[bool]:
    """Try to take the workspace's lease; yields whether this process holds it."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, advisory_key(workspace_id)) as held:
            yield held
    else:
        with _file_lock(_sqlite_sidecar(engine, f"lease-{_safe(workspace_id)}")) as held:
            yield held


@contextmanager
def daemon_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, refuse a second daemon on the same file; on PostgreSQL, replicas are welcome."""
    if engine.dialect.name != "sqlite":
        yield
        return
    path = _sqlite_sidecar(engine, "daemon")
    with _file_lock(path) as held:
        if not held:
            raise StoreError(
                f"another lineage-exporter daemon is already running on {engine.url.database}: "
                "SQLite supports a single replica; use PostgreSQL to run several"
            )
        yield


@contextmanager
def _advisory_lock(engine: Engine, key: int) -> Iterator[bool]:
    with engine.connect() as conn:
        held = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar())
        conn.commit()  # the lock is the session's; do not sit idle in a transaction
        try:
            yield held
        finally:
            if held:
                conn.execute(select(func.pg_advisory_unlock(key)))
                conn.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _sqlite_sidecar(engine: Engine, suffix: str) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise StoreError("SQLite leases need a database file, not an in-memory database")
    return Path(f"{database}.{suffix}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
