"""The daemon: an APScheduler job per workspace, syncing on the configured interval or cron.

Per workspace at most one sync at a time (max_instances=1), missed runs coalesced into one, and a
failing workspace only logs: the others go on. `stop` (set by SIGTERM/SIGINT) makes in-flight
syncs abandon their fetch (nothing written) and the scheduler shut down within seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from exporter import migrate
from exporter.api.credentials import CredentialSource, open_source
from exporter.config import ScheduleSettings, Settings, WorkspaceSettings
from exporter.errors import ExporterError, StoreError
from exporter.health import HealthServer, Metrics
from exporter.lease import daemon_lock
from exporter.sync import SyncSummary, sync_workspace

if TYPE_CHECKING:
    from exporter.web.server import Explorer

log = logging.getLogger(__name__)

SummaryCallback = Callable[[SyncSummary], None]


def make_trigger(schedule: ScheduleSettings) -> BaseTrigger:
    """The APScheduler trigger for the configured cron or interval, with jitter."""
    jitter = int(schedule.jitter.total_seconds()) or None
    if schedule.cron:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
        trigger.jitter = jitter
        return trigger
    return IntervalTrigger(
        seconds=schedule.effective_interval.total_seconds(), jitter=jitter, timezone=UTC
    )


def wait_or_stop(stop: threading.Event, seconds: float | None = None) -> bool:
    """Wait up to `seconds` (None: for ever) or until `stop` is set; True if it was set.

    Waits in short slices: a signal that the OS delivers to another thread only runs its
    Python handler when the main thread wakes, so an unbounded wait could miss SIGTERM.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        remaining = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if remaining <= 0:
            return stop.is_set()
        if stop.wait(remaining):
            return True


def schedule_interval(schedule: ScheduleSettings) -> timedelta:
    """The time between two runs: the interval, or the gap between a cron's next two times."""
    if not schedule.cron:
        return schedule.effective_interval
    trigger = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    first = trigger.get_next_fire_time(None, datetime.now(UTC))
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert first is not None and second is not None
    return second - first  # type: ignore[no-any-return]


def wait_for_database(engine: Engine, stop: threading.Event, max_delay: float = 60.0) -> bool:
    """Block until the schema is reachable and current; back off while unreachable.

    Returns False if `stop` was set first. Raises StoreError if the schema is not current,
    which no amount of waiting fixes.
    """
    delay = 1.0
    while not stop.is_set():
        try:
            migrate.require_current(engine)
            return True
        except StoreError as exc:
            if "unreachable" not in str(exc):
                raise
            log.warning("database unreachable, retrying in %.0fs: %s", delay, exc)
            wait_or_stop(stop, delay)
            delay = min(max_delay, delay * 2)
    return False


class Daemon:
    """Schedules a sync of every configured workspace until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        stop: threading.Event,
        on_summary: SummaryCallback | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.stop = stop
        self.on_summary = on_summary
        self.metrics = Metrics()
        # One provider per workspace for the daemon's life: what it fetched (temporary
        # credentials) serves every sync until the provider itself refreshes it.
        self._credentials: dict[str, CredentialSource] = {}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(1, len(settings.workspaces)))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,  # a late run still runs (once, coalesced)
            },
            timezone=UTC,
        )

    def run(self) -> None:
        """Start the schedule, block until `stop` is set, then shut down cleanly."""
        with daemon_lock(self.engine):
            server = self._health_server()
            explorer = self._explorer()
            try:
                self._run()
            finally:
                if explorer is not None:
                    explorer.stop()
                if server is not None:
                    server.stop()

    def _health_server(self) -> HealthServer | None:
        config = self.settings.health
        if config.port is None:
            return None
        return HealthServer(
            config.host,
            config.port,
            self.engine,
            [w.id for w in self.settings.workspaces],
            schedule_interval(self.settings.schedule),
            self.metrics,
        ).start()

    def _explorer(self) -> Explorer | None:
        """The lineage explorer beside /healthz and /metrics, when `[ui] port` is set."""
        if self.settings.ui.port is None:
            return None
        from exporter.web.server import Explorer

        return Explorer(self.engine, self.settings.ui).start()

    def _run(self) -> None:
        trigger = make_trigger(self.settings.schedule)
        for workspace in self.settings.workspaces:
            self.scheduler.add_job(
                self.sync_one,
                trigger=trigger,
                args=[workspace],
                id=f"sync:{workspace.id}",
                name=f"sync workspace {workspace.id}",
                next_run_time=datetime.now(UTC),  # first sync right away
            )
        self.scheduler.start()
        log.info(
            "daemon started: %d workspaces, schedule %s",
            len(self.settings.workspaces),
            self.settings.schedule.cron or self.settings.schedule.effective_interval,
        )
        wait_or_stop(self.stop)
        log.info("stopping: waiting for in-flight syncs to roll back or finish")
        self.scheduler.shutdown(wait=True)
        log.info("daemon stopped")

    def sync_one(self, workspace: WorkspaceSettings) -> None:
        """One scheduled sync; every failure is logged, never raised into the scheduler."""
        if self.stop.is_set():
            return
        try:
            summary = sync_workspace(
                self.engine,
                workspace,
                credentials=self._credential_source(workspace),
                stop=self.stop,
                retention=self.settings.retention,
                redactor=self.settings.redaction.redactor,
                live_statuses=self.settings.lineage.live_statuses,
            )
        except ExporterError as exc:
            log.error("workspace %s: sync failed: %s", workspace.id, exc)
            return
        except Exception:
            log.exception("workspace %s: sync crashed", workspace.id)
            return
        self.metrics.record(summary, datetime.now(UTC))
        if summary.status == "skipped":
            log.info("%s (another replica has it this time)", summary.line())
            return
        log.info("%s", summary.line())
        if self.on_summary is not None:
            self.on_summary(summary)

    def _credential_source(self, workspace: WorkspaceSettings) -> CredentialSource:
        """The workspace's provider, built at its first sync (a CredentialsError is that
        sync's failure, and the next sync tries again). Fixed keys are read again at every
        sync, as they always were: a secrets file rewritten by an agent takes effect."""
        if workspace.credentials.type in ("access_key", "sts"):
            return open_source(workspace)
        source = self._credentials.get(workspace.id)
        if source is None:
            source = self._credentials[workspace.id] = open_source(workspace)
        return source
