"""The daemon as users run it: a real process, real schedule, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from conftest import write_config
from sqlalchemy import text

from exporter.config import ScheduleSettings
from exporter.daemon import make_trigger
from exporter.database import make_engine
from exporter.simulator import Simulator


def test_interval_trigger_with_jitter() -> None:
    trigger = make_trigger(
        ScheduleSettings(interval=timedelta(minutes=5), jitter=timedelta(seconds=7))
    )
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=5) and trigger.jitter == 7


def test_cron_trigger() -> None:
    trigger = make_trigger(ScheduleSettings(cron="*/15 * * * *"))
    assert isinstance(trigger, CronTrigger)
    assert str(trigger.fields[6]) == "*/15"  # the minute field


def test_default_schedule_is_every_15_minutes() -> None:
    trigger = make_trigger(ScheduleSettings())
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=15)


def _runs(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [
                (str(r[0]), str(r[1]))
                for r in conn.execute(
                    text("SELECT workspace_id, status FROM lineage_sync_runs ORDER BY run_id")
                )
            ]
    finally:
        engine.dispose()


def _start_daemon(
    config: Path, simulator: Simulator, log: Path | None = None
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = simulator.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = simulator.access_key_secret
    env.pop("LINEAGE_EXPORTER_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config", str(config), "run"],
        env=env,
        stdout=log.open("w", encoding="utf-8") if log else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_daemon_runs_scheduled_syncs_and_stops_on_sigterm(
    simulator: Simulator, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", simulator, db_url, interval="1s")
    # A second workspace that the API refuses: it fails every run, and must not stop the first.
    with config.open("a", encoding="utf-8") as f:
        f.write(
            f'\n[[workspaces]]\nid = "ws-refused"\nendpoint = "{simulator.url}"\n'
            'namespaces = ["default-namespace"]\nmax_attempts = 1\n'
        )
    daemon = _start_daemon(config, simulator)
    try:
        done = _wait_for(
            lambda: sum(1 for ws, s in _runs(db_url) if ws == "ws-test" and s == "succeeded") >= 2,
            timeout=30,
        )
        assert done, "the daemon did not complete two scheduled syncs"
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    runs = _runs(db_url)
    assert ("ws-refused", "failed") in runs
    assert all(status != "running" for _, status in runs)
    assert "daemon stopped" in output
    assert "ws-test: succeeded" in output


def test_sigterm_mid_sync_writes_nothing(simulator: Simulator, db_url: str, tmp_path: Path) -> None:
    simulator.faults.latency = 0.4  # each request is slow: the first sync is still fetching
    config = write_config(tmp_path / "c.toml", simulator, db_url, interval="1h", concurrency="1")
    daemon = _start_daemon(config, simulator)
    try:
        assert _wait_for(lambda: simulator.stats.by_action["ListJobs"] >= 1, timeout=20)
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=15)
        stopped_in = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert stopped_in < 10
    assert _runs(db_url) == [("ws-test", "failed")]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM lineage_tables_history")).scalar() == 0
        summary = conn.execute(text("SELECT error_summary FROM lineage_sync_runs")).scalar()
    engine.dispose()
    assert "stopped" in str(summary)


def _run_intervals(url: str) -> list[tuple[object, object]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT started_at, finished_at FROM lineage_sync_runs "
                    "WHERE workspace_id = 'ws-test' ORDER BY started_at"
                )
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        engine.dispose()


def test_two_daemons_on_one_postgres_never_overlap_on_a_workspace(
    simulator: Simulator, pg_url: str, tmp_path: Path
) -> None:
    simulator.faults.latency = 0.05  # a sync takes a while, so the two daemons' ticks collide
    config = write_config(tmp_path / "c.toml", simulator, pg_url, interval="1s", jitter="0s")
    logs = [tmp_path / f"daemon-{i}.log" for i in range(2)]
    # Output goes to files, not pipes: a full pipe would block a daemon that nobody reads.
    daemons = [_start_daemon(config, simulator, log) for log in logs]
    try:
        assert _wait_for(lambda: len(_run_intervals(pg_url)) >= 4, timeout=60)
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(timeout=40)
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.kill()
    outputs = [log.read_text(encoding="utf-8") for log in logs]
    assert [d.returncode for d in daemons] == [0, 0], outputs
    intervals = _run_intervals(pg_url)
    assert all(finished is not None for _, finished in intervals)
    for (_, finished), (next_start, _) in pairwise(intervals):
        assert finished <= next_start, f"two syncs of ws-test overlapped: {intervals}"  # type: ignore[operator]
    # Both replicas were there: each either synced or found the lease taken.
    assert all("ws-test: succeeded" in out or "another replica has it" in out for out in outputs)
    assert any("another replica has it" in out for out in outputs), outputs


def test_a_second_daemon_on_one_sqlite_file_says_why_it_stops(
    simulator: Simulator, sqlite_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", simulator, sqlite_url, interval="1h")
    first = _start_daemon(config, simulator)
    try:
        assert _wait_for(lambda: len(_runs(sqlite_url)) >= 1, timeout=30)
        second = _start_daemon(config, simulator)
        output, _ = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "SQLite supports a single replica; use PostgreSQL" in output
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)
    finally:
        for daemon in (first,):
            if daemon.poll() is None:
                daemon.kill()
    assert first.returncode == 0


def test_wait_or_stop_wakes_for_the_stop_and_for_the_timeout() -> None:
    import threading

    from exporter.daemon import wait_or_stop

    stop = threading.Event()
    assert wait_or_stop(stop, 0.3) is False  # timed out, not stopped
    threading.Timer(0.3, stop.set).start()
    assert wait_or_stop(stop) is True  # an unbounded wait still ends when stop is set
