"""Health and metrics for operators: `/healthz` and `/metrics` on an optional HTTP port.

`/healthz` answers from the database, so every replica gives the same answer: 200 when the
latest finished run of every configured workspace succeeded, and finished within two schedule
intervals; 503 with the reasons otherwise (including "database unreachable").

`/metrics` is the Prometheus text format (prometheus-client), from this process's own runs: last
success time per workspace, run durations, runs by status, rows added and closed, API requests,
retries and errors by code. Each daemon has its own registry (no process-wide state).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Connection, Engine, Subquery, func, select
from sqlalchemy.exc import SQLAlchemyError

from exporter import schema
from exporter.sync import SyncSummary

log = logging.getLogger(__name__)


class Metrics:
    """The daemon's Prometheus metrics, fed one sync summary at a time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ws = ["workspace"]
        self.last_success = Gauge(
            "lineage_exporter_last_success_timestamp_seconds",
            "When the workspace's last successful sync finished (Unix time)",
            ws,
            registry=self.registry,
        )
        self.duration = Histogram(
            "lineage_exporter_run_duration_seconds",
            "Wall time of a sync run (fetch + write)",
            ws,
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.runs = Counter(
            "lineage_exporter_runs", "Sync runs by outcome", [*ws, "status"], registry=self.registry
        )
        self.rows_added = Counter(
            "lineage_exporter_rows_added", "History rows opened", ws, registry=self.registry
        )
        self.rows_closed = Counter(
            "lineage_exporter_rows_closed", "History rows closed", ws, registry=self.registry
        )
        self.requests = Counter(
            "lineage_exporter_api_requests", "API requests sent", ws, registry=self.registry
        )
        self.retries = Counter(
            "lineage_exporter_api_retries", "API requests retried", ws, registry=self.registry
        )
        self.errors = Counter(
            "lineage_exporter_api_errors",
            "API errors by code (retried or not)",
            [*ws, "code"],
            registry=self.registry,
        )

    def record(self, summary: SyncSummary, finished_at: datetime) -> None:
        """Account for one finished (or skipped) sync."""
        ws = summary.workspace_id
        self.runs.labels(ws, summary.status).inc()
        if summary.status == "skipped":
            return
        if summary.ok:
            self.last_success.labels(ws).set(finished_at.timestamp())
        self.duration.labels(ws).observe(summary.fetch_seconds + summary.write_seconds)
        self.rows_added.labels(ws).inc(summary.rows_added)
        self.rows_closed.labels(ws).inc(summary.rows_closed)
        self.requests.labels(ws).inc(summary.api_requests)
        self.retries.labels(ws).inc(summary.api_retries)
        for code, count in summary.api_errors.items():
            self.errors.labels(ws, code).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def health(
    engine: Engine, workspaces: list[str], interval: timedelta, now: datetime
) -> tuple[bool, list[str]]:
    """(healthy, reasons): the latest finished run of each workspace, as the database has it."""
    runs = schema.sync_runs.c
    latest = (
        select(runs.workspace_id, func.max(runs.id).label("run_id"))
        .where(runs.status != "running", runs.workspace_id.in_(workspaces))
        .group_by(runs.workspace_id)
        .subquery()
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(runs.workspace_id, runs.status, runs.finished_at).join(
                    latest, latest.c.run_id == runs.id
                )
            ).all()
            failed = _failed_in(conn, latest)
    except SQLAlchemyError as exc:
        return False, [f"database unreachable: {type(exc).__name__}"]
    last = {ws: (status, finished) for ws, status, finished in rows}
    reasons = []
    for ws in workspaces:
        if ws not in last:
            reasons.append(f"workspace {ws}: no finished run yet")
            continue
        status, finished = last[ws]
        if status != "succeeded":
            reasons.append(f"workspace {ws}: last run {status}{_which(failed.get(ws, []))}")
        elif finished is None or now - finished > 2 * interval:
            reasons.append(
                f"workspace {ws}: last success at {finished:%Y-%m-%dT%H:%M:%SZ}, "
                f"more than two intervals ({2 * interval}) ago"
            )
    return not reasons, reasons


def _failed_in(conn: Connection, latest: Subquery) -> dict[str, list[str]]:
    """workspace -> what failed in its latest run (lineage_job_failures), briefly."""
    failures = schema.job_failures.c
    rows = conn.execute(
        select(
            latest.c.workspace_id,
            failures.namespace,
            failures.deployment_name,
            failures.deployment_id,
            failures.stage,
        )
        .join(latest, latest.c.run_id == failures.run_id)
        .order_by(failures.id)
    ).all()
    failed: dict[str, list[str]] = {}
    for ws, namespace, name, deployment_id, stage in rows:
        what = f"{namespace}/{name or deployment_id}" if deployment_id else namespace
        failed.setdefault(ws, []).append(f"{what[:80]} [{stage}]")
    return failed


def _which(failed: list[str], most: int = 3) -> str:
    if not failed:
        return ""
    more = f", and {len(failed) - most} more" if len(failed) > most else ""
    return f" ({len(failed)} failed: {', '.join(failed[:most])}{more}; see lineage_job_failures)"


class HealthServer:
    """`/healthz` and `/metrics` on a port, served from a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        engine: Engine,
        workspaces: list[str],
        interval: timedelta,
        metrics: Metrics,
    ) -> None:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.engine, self.workspaces, self.interval, self.metrics = (
            engine,
            workspaces,
            interval,
            metrics,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics on port %d (/healthz, /metrics)", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: HealthServer

    def do_GET(self) -> None:
        owner = self.owner
        if self.path == "/healthz":
            ok, reasons = health(owner.engine, owner.workspaces, owner.interval, datetime.now(UTC))
            body = ("ok\n" if ok else "\n".join(reasons) + "\n").encode()
            self._send(200 if ok else 503, "text/plain; charset=utf-8", body)
        elif self.path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, owner.metrics.render())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health: " + format, *args)
