"""Early staging: the rows of a run that changes much, staged while its fetch still goes on.

A run that changes much of a workspace (its first sync, a new rules version) diffs its whole
state in the database (`staging`). Each changed contribution's rows are known as soon as it is
digested, so a stager thread stages them then, in the transaction that will commit the run:
the database works while the network does, the rows leave Python's memory as they arrive, and
little is left to do when the last response arrives. On PostgreSQL the stager also saves the
contributions' payloads and creates the entities their rows name (tables, columns, edges, ...);
on SQLite it writes only temporary tables, which lock nothing, so other workspaces' syncs on
the same file go on meanwhile.

Nothing is visible to anyone before the run commits, so a failed or stopped run leaves no trace.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from exporter import database, store
from exporter.history import Ranked
from exporter.normalize import State
from exporter.staging import Staging

log = logging.getLogger(__name__)

# Contributions per write, at least, until the fetch nears its end: each write has a fixed
# cost (a few statements per kind), so fewer, larger writes cost less in all; but what is
# left when the last response arrives is written while the run waits, so the last writes
# are small: each takes what has arrived once fewer than MIN_BATCH deployments are left.
MIN_BATCH = 100

Key2 = tuple[str, str]  # (namespace, deployment_id)


class ManyChanges(Protocol):
    """Whether the run changes enough to diff the whole state (told by the run)."""

    @property
    def reached(self) -> bool: ...


class Releasable(Protocol):
    """A changed contribution's digest: its rows, until they are staged."""

    state: State | None


@dataclass
class Staged:
    """What the stager staged and saved, in the transaction it leaves open on `connection`."""

    connection: Connection
    staging: Staging
    contributions: set[Key2] = field(default_factory=set)  # whose rows are staged
    saved: set[Key2] = field(default_factory=set)  # whose payloads are saved


class EarlyStager:
    """Stages changed contributions' rows as they arrive (see the module docstring).

    Stages nothing until the run has many changes: a run that changes a few contributions
    diffs just their keys at the end instead. `offer` is called from fetch threads; `finish`
    and `close` from the run's own thread.
    """

    def __init__(
        self,
        engine: Engine,
        workspace_id: str,
        run_id: int,
        now: datetime,
        many: ManyChanges,
        stored: dict[Key2, store.StoredContribution],
        outstanding: Callable[[], int] = lambda: MIN_BATCH,
    ) -> None:
        """`outstanding` tells how many deployments are still being fetched."""
        self._engine = engine
        self._outstanding = outstanding
        self._workspace_id = workspace_id
        self._run_id = run_id
        self._now = now
        self._many = many
        self._stored = stored
        self._writes = engine.dialect.name == "postgresql"  # SQLite: lock nothing while fetching
        self._queue: queue.SimpleQueue[tuple[store.NewContribution, Releasable] | None] = (
            queue.SimpleQueue()
        )
        self._staged: Staged | None = None
        self._error: BaseException | None = None
        # In a copy of the caller's context: its log records keep the run's tags.
        self._thread = threading.Thread(
            target=copy_context().run, args=(self._run,), name="early-stager", daemon=True
        )
        self._thread.start()

    def offer(self, contribution: store.NewContribution, digested: Releasable) -> None:
        """A changed contribution and its digest, whose rows are released once staged (from a
        fetch thread)."""
        self._queue.put((contribution, digested))

    def finish(self) -> Staged | None:
        """Stage what is still queued and hand over the open transaction (None: none began).

        Raises the stager's error, if it had one, after rolling its transaction back.
        """
        self._stop()
        if self._error is not None:
            self.close()
            error = self._error
            raise database.store_error(error) if isinstance(error, SQLAlchemyError) else error
        staged, self._staged = self._staged, None
        return staged

    def close(self) -> None:
        """Roll back whatever was not handed over (the run failed or was stopped)."""
        self._stop()
        if self._staged is not None:
            staged, self._staged = self._staged, None
            connection = staged.connection
            try:
                connection.rollback()
                staged.staging.discard()
                connection.close()
            except SQLAlchemyError as exc:  # the connection is gone: so is its transaction
                log.warning("workspace %s: early staging: %s", self._workspace_id, exc)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        pending: list[tuple[store.NewContribution, Releasable]] = []
        done = False
        while not done:
            item = self._queue.get()
            while item is not None:
                pending.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            if self._error is not None:
                pending.clear()  # nothing more is staged; finish() reports the error
                continue
            if not self._many.reached:
                continue  # a run of few changes, so far: kept until it is one of many
            near_end = self._outstanding() < MIN_BATCH
            if not pending or (len(pending) < MIN_BATCH and not done and not near_end):
                continue
            try:
                self._write(pending)
            except BaseException as exc:  # raised by finish(), in the run's own thread
                self._error = exc
            pending = []

    def _write(self, batch: list[tuple[store.NewContribution, Releasable]]) -> None:
        if self._staged is None:
            connection = self._engine.connect()
            self._staged = Staged(connection, Staging(connection))
        staged = self._staged
        ranked = []
        for contribution, digested in batch:
            assert digested.state is not None
            ranked.append(Ranked(self._now, contribution.deployment_id, digested.state))
        # PostgreSQL: entities too, as the fetch goes on (SQLite: temporary tables only).
        staged.staging.add(ranked, self._workspace_id if self._writes else None)
        keys = {(c.namespace, c.deployment_id) for c, _ in batch}
        staged.contributions |= keys
        for _, digested in batch:
            digested.state = None  # staged: the run makes them again from the payload if need be
        if not self._writes:
            return
        contributions = [contribution for contribution, _ in batch]
        store.save_contributions(
            staged.connection,
            self._workspace_id,
            self._run_id,
            self._now,
            contributions,
            self._stored,
            (),
        )
        staged.saved |= keys
