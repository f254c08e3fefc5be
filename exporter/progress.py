"""Progress for people: deployments fetched of listed, per workspace.

On a terminal, a bar redrawn in place (at most ten times a second); elsewhere (logs, CI, a
pipe), a plain log line every few seconds and one at the end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

from exporter.extract import DeploymentFetch

log = logging.getLogger(__name__)
BAR_WIDTH = 30


class FetchProgress:
    """Implements `extract.Progress`; thread-safe (fetch threads report into it)."""

    def __init__(
        self,
        workspace_id: str,
        stream: TextIO,
        *,
        interactive: bool | None = None,
        log_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace_id = workspace_id
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.total = 0
        self.done = 0
        self.failed = 0
        self._log_every = log_every
        self._clock = clock
        self._last_shown = float("-inf")
        self._lock = threading.Lock()

    def listed(self, count: int) -> None:
        with self._lock:
            self.total += count
            self._show(force=False)

    def fetched(self, fetch: DeploymentFetch) -> None:
        with self._lock:
            self.done += 1
            self.failed += fetch.error is not None
            self._show(force=False)

    def close(self) -> None:
        """The final state; on a terminal, also ends the bar's line."""
        with self._lock:
            self._show(force=True)
            if self.interactive:
                self.stream.write("\n")
                self.stream.flush()

    def text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.workspace_id}: {self.done}/{self.total} deployments fetched{failed}"

    def bar(self) -> str:
        filled = BAR_WIDTH * self.done // self.total if self.total else 0
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.text()}"

    def _show(self, *, force: bool) -> None:
        now = self._clock()
        if self.interactive:
            if force or now - self._last_shown >= 0.1:
                self.stream.write("\r" + self.bar())
                self.stream.flush()
                self._last_shown = now
        elif force or now - self._last_shown >= self._log_every:
            log.info("%s", self.text())
            self._last_shown = now
