"""Leases: one sync of a workspace at a time, across processes; SQLite runs one daemon."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from exporter.database import make_engine
from exporter.errors import StoreError
from exporter.lease import advisory_key, daemon_lock, workspace_lease


def test_advisory_keys_are_stable_and_distinct() -> None:
    assert advisory_key("ws-a") == advisory_key("ws-a")
    assert advisory_key("ws-a") != advisory_key("ws-b")
    assert -(2**63) <= advisory_key("ws-a") < 2**63


def test_a_lease_is_held_by_one_holder_at_a_time(db_url: str) -> None:
    engine = make_engine(db_url)
    with workspace_lease(engine, "ws-a") as first:
        assert first
        with workspace_lease(engine, "ws-a") as second:
            assert not second  # a second process (or thread) is told no
        with workspace_lease(engine, "ws-b") as other:
            assert other  # other workspaces are free
    with workspace_lease(engine, "ws-a") as again:
        assert again  # released on exit
    engine.dispose()


HOLD_LEASE = """
import sys, time
from exporter.lease import workspace_lease
from exporter.database import make_engine
with workspace_lease(make_engine(sys.argv[1]), "ws-a") as held:
    print("held" if held else "refused", flush=True)
    time.sleep(60)
"""


def test_a_replica_that_dies_releases_its_lease(db_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LEASE, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        engine = make_engine(db_url)
        with workspace_lease(engine, "ws-a") as held:
            assert not held
        holder.kill()  # no clean-up code runs: the lease must go with the connection/process
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            with workspace_lease(engine, "ws-a") as held:
                if held:
                    break
            assert time.monotonic() < deadline, "the dead replica's lease was never released"
            time.sleep(0.1)
        engine.dispose()
    finally:
        holder.kill()


def test_sqlite_refuses_a_second_daemon_on_the_same_file(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with daemon_lock(engine):
        second = daemon_lock(engine)
        with pytest.raises(StoreError, match="single replica; use PostgreSQL"):
            second.__enter__()
    with daemon_lock(engine):
        pass  # released when the first daemon stops


def test_postgres_allows_several_daemons(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with daemon_lock(engine), daemon_lock(engine):
        pass
    engine.dispose()
