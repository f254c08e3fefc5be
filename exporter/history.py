"""History: merge deployments' contributions into the wanted state, diff it with the current one.

Pure functions: the store loads the current state and applies what `diff` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from exporter.normalize import KINDS, Attrs, Key, State

K = TypeVar("K", bound=tuple[str, ...])
T = TypeVar("T")
# kind -> natural key -> (version row id, attributes)
CurrentState = dict[str, dict[Key, tuple[int, Attrs]]]


@dataclass(frozen=True)
class Ranked:
    """A contribution with what decides whose attributes win: the latest fetch, then the ID."""

    fetched_at: datetime
    deployment_id: str
    state: State


@dataclass
class Changes:
    """What to write: versions to open (key, attributes) and version ids to close, per kind."""

    opened: dict[str, list[tuple[Key, Attrs]]] = field(
        default_factory=lambda: {kind: [] for kind in KINDS}
    )
    closed: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    @property
    def rows_added(self) -> int:
        return sum(len(rows) for rows in self.opened.values())

    @property
    def rows_closed(self) -> int:
        return sum(len(ids) for ids in self.closed.values())

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (opened, closed), for the per-run change log."""
        return {kind: (len(self.opened[kind]), len(self.closed[kind])) for kind in KINDS}


def merge(contributions: Iterable[Ranked]) -> State:
    """The union of all contributions; for an entity reported by several, the latest fetch wins."""
    merged = State.empty()
    for ranked in sorted(contributions, key=lambda r: (r.fetched_at, r.deployment_id)):
        for kind in KINDS:
            merged[kind].update(ranked.state[kind])
    return merged


def keys_of(states: Iterable[State]) -> dict[str, set[Key]]:
    """Every key the states report, per kind."""
    keys: dict[str, set[Key]] = {kind: set() for kind in KINDS}
    for state in states:
        for kind in KINDS:
            keys[kind].update(state[kind])
    return keys


def restrict(state: State, keys: dict[str, set[Key]]) -> State:
    """The rows of `state` whose keys are in `keys`."""
    return State({kind: _common(state[kind], keys[kind]) for kind in KINDS})


def _common(rows: dict[Key, Attrs], keys: set[Key]) -> dict[Key, Attrs]:
    """The rows whose keys are in `keys`, found from the smaller side: a run restricts each of
    its contributions (tens of rows) to every key the run affects (thousands of column edges
    at 10,000 deployments), and walking the keys for each of them took 1.8 s."""
    if len(rows) <= len(keys):
        return {key: attrs for key, attrs in rows.items() if key in keys}
    return {key: rows[key] for key in keys if key in rows}


def diff(wanted: State, current: CurrentState) -> Changes:
    """Open what is new or changed, close what is gone or changed; unchanged rows write nothing."""
    changes = Changes()
    for kind in KINDS:
        opened, closed = diff_rows(wanted[kind], current.get(kind, {}))
        changes.opened[kind].extend(opened)
        changes.closed[kind].extend(closed)
    return changes


def diff_made_rows(
    wanted: Mapping[K, T],
    make: Callable[[T], Attrs],
    now_rows: Iterable[tuple[K, int, Attrs]],
) -> tuple[list[tuple[K, Attrs]], list[int]]:
    """`diff_rows` of rows made one at a time (`make` of each wanted value) with stored rows
    read one at a time: neither side is held whole, only what changed (for 10,000 deployments,
    both sides' attributes held about 30 MB at the end of every run)."""
    pending = dict(wanted)
    opened: list[tuple[K, Attrs]] = []
    closed: list[int] = []
    for key, version_id, attrs in now_rows:
        want = make(pending.pop(key)) if key in pending else None
        if want != attrs:  # gone (None) or changed
            closed.append(version_id)
            if want is not None:
                opened.append((key, want))
    opened += [(key, make(source)) for key, source in pending.items()]
    return opened, closed


def diff_rows(
    want_rows: dict[K, Attrs], now_rows: dict[K, tuple[int, Attrs]]
) -> tuple[list[tuple[K, Attrs]], list[int]]:
    """One kind's (versions to open, version ids to close)."""
    if not now_rows:  # a first load: everything is new (and a lookup per row is costly)
        return list(want_rows.items()), []
    closed = [
        version_id
        for key, (version_id, attrs) in now_rows.items()
        if want_rows.get(key) != attrs  # gone (None) or changed
    ]
    opened = [
        (key, attrs)
        for key, attrs in want_rows.items()
        if (existing := now_rows.get(key)) is None or existing[1] != attrs
    ]
    return opened, closed
