"""Early writes: the rows a run opens, written while its fetch is still going on (PostgreSQL).

A run that changes much of a workspace (its first sync, a new rules version) mostly opens rows
that no stored version has. Those rows are known as soon as each changed contribution is
digested, so a writer thread writes them then, in the run's one transaction: the database
works while the network does, and little is left to do when the last response arrives.

What is written early is what the end of the run would write for those keys, with one
exception that the end corrects (`history.reconcile`): a key that several contributions report
is written with the first one's attributes, and the merge may give it another's. Nothing is
visible to anyone before the run commits, so a failed or stopped run leaves no trace.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from exporter import database, store
from exporter.history import Changes
from exporter.history import CurrentState as CurrentRows
from exporter.normalize import KINDS, Attrs, Key, State

log = logging.getLogger(__name__)

# Contributions per write, at least, until the fetch nears its end: each write has a fixed
# cost (a few statements per kind), so fewer, larger writes cost less in all; but what is
# left when the last response arrives is written while the run waits, so the last writes
# are small: each takes what has arrived once fewer than MIN_BATCH deployments are left.
MIN_BATCH = 100

Key2 = tuple[str, str]  # (namespace, deployment_id)


class StoredState(Protocol):
    """The workspace's stored current state, loaded in the background once a run changes much."""

    @property
    def loading(self) -> bool: ...

    def get(self) -> CurrentRows: ...


@dataclass
class Written:
    """What the writer wrote, in the transaction it leaves open on `connection`."""

    connection: Connection
    rows: dict[str, dict[Key, Attrs]]  # kind -> key -> the attributes written
    contributions: set[Key2]

    def by_kind(self) -> dict[str, int]:
        return {kind: len(self.rows[kind]) for kind in KINDS}


class EarlyWriter:
    """Writes the new keys of changed contributions as they arrive (see the module docstring).

    Writes nothing until the stored state is loading: a run that changes a few contributions
    diffs just their keys at the end instead. `offer` is called from fetch threads; `finish`
    and `close` from the run's own thread.
    """

    def __init__(
        self,
        engine: Engine,
        workspace_id: str,
        run_id: int,
        now: datetime,
        current: StoredState,
        stored: dict[Key2, store.StoredContribution],
        outstanding: Callable[[], int] = lambda: MIN_BATCH,
    ) -> None:
        """`outstanding` tells how many deployments are still being fetched."""
        self._engine = engine
        self._outstanding = outstanding
        self._workspace_id = workspace_id
        self._run_id = run_id
        self._now = now
        self._current = current
        self._stored = stored
        self._queue: queue.SimpleQueue[tuple[store.NewContribution, State] | None] = (
            queue.SimpleQueue()
        )
        self._rows: dict[str, dict[Key, Attrs]] = {kind: {} for kind in KINDS}
        self._contributions: set[Key2] = set()
        self._connection: Connection | None = None
        self._error: BaseException | None = None
        # In a copy of the caller's context: its log records keep the run's tags.
        self._thread = threading.Thread(
            target=copy_context().run, args=(self._run,), name="early-writer", daemon=True
        )
        self._thread.start()

    def offer(self, contribution: store.NewContribution, state: State) -> None:
        """A changed contribution and its rows (from a fetch thread)."""
        self._queue.put((contribution, state))

    def finish(self) -> Written | None:
        """Write what is still queued and hand over the open transaction (None: none began).

        Raises the writer's error, if it had one, after rolling its transaction back.
        """
        self._stop()
        if self._error is not None:
            self.close()
            error = self._error
            raise database.store_error(error) if isinstance(error, SQLAlchemyError) else error
        connection, self._connection = self._connection, None
        if connection is None:
            return None
        return Written(connection, self._rows, self._contributions)

    def close(self) -> None:
        """Roll back whatever was not handed over (the run failed or was stopped)."""
        self._stop()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.rollback()
                connection.close()
            except SQLAlchemyError as exc:  # the connection is gone: so is its transaction
                log.warning("workspace %s: early writes: %s", self._workspace_id, exc)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        pending: list[tuple[store.NewContribution, State]] = []
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
                pending.clear()  # nothing more is written; finish() reports the error
                continue
            if not self._current.loading:
                continue  # a run of few changes, so far: kept until it is one of many
            near_end = self._outstanding() < MIN_BATCH
            if not pending or (len(pending) < MIN_BATCH and not done and not near_end):
                continue
            try:
                self._write(pending)
            except BaseException as exc:  # raised by finish(), in the run's own thread
                self._error = exc
            pending = []

    def _write(self, batch: list[tuple[store.NewContribution, State]]) -> None:
        current = self._current.get()
        opened: dict[str, list[tuple[Key, Attrs]]] = {kind: [] for kind in KINDS}
        for _, state in batch:
            for kind in KINDS:
                known, written, new = current[kind], self._rows[kind], opened[kind]
                for key, attrs in state[kind].items():
                    if key not in known and key not in written:
                        written[key] = attrs
                        new.append((key, attrs))
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.begin()
        conn = self._connection
        store.apply_changes(conn, self._workspace_id, self._run_id, self._now, Changes(opened))
        contributions = [contribution for contribution, _ in batch]
        store.save_contributions(
            conn, self._workspace_id, self._run_id, self._now, contributions, self._stored, ()
        )
        self._contributions.update((c.namespace, c.deployment_id) for c in contributions)
