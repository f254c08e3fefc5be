"""Logging set-up: plain text for people, JSON lines for log pipelines.

Every record carries the workspace and run id of the sync it belongs to (from a context
variable that `sync` sets and the fetch threads inherit), so one run's lines can be found among
many workspaces'.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_RUN_CONTEXT: ContextVar[tuple[str | None, int | None]] = ContextVar(
    "lineage_exporter_run", default=(None, None)
)
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic")


@contextmanager
def run_context(workspace_id: str, run_id: int | None = None) -> Iterator[None]:
    """Tag the log records emitted inside the block with the workspace and run id."""
    token = _RUN_CONTEXT.set((workspace_id, run_id))
    try:
        yield
    finally:
        _RUN_CONTEXT.reset(token)


class _RunContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.workspace, record.run_id = _RUN_CONTEXT.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, workspace, run_id (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "workspace": getattr(record, "workspace", None),
            "run_id": getattr(record, "run_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger once, for the CLI and the daemon."""
    handler = logging.StreamHandler()
    handler.addFilter(_RunContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    for name in QUIET_LOGGERS:
        # httpx logs every request at INFO; alembic narrates every migration step.
        logging.getLogger(name).setLevel(logging.WARNING)
