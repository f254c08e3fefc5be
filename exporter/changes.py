"""What changed in the lineage between two instants: snapshots and their difference.

`snapshot(T)` is everything valid at T; `diff(T1, T2)` is what appeared, disappeared or changed
between them. A diff reads only the versions that opened or closed between the two instants
(through the time indexes of migration 0009), not two whole snapshots: an entity whose versions
neither begin nor end in the window is the same at both ends, and one that has a version
boundary in it has its version at each end among those versions (versions of one entity do not
overlap, so the one valid at the start ends inside the window and the one valid at the end
begins inside it). The answer is the same as comparing the two snapshots (tests check it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from exporter.changes_sql import (
    ENTITY_KINDS,
    READER_SETTINGS,
    SNAPSHOT,
    change_rows_sql,
    diff_params,
    key_width,
    namespace_order_sql,
)
from exporter.changes_sql import attributes as kind_attributes
from exporter.collector import young_collections_only
from exporter.dbapi import Connection as BareConnection

if TYPE_CHECKING:  # SQLAlchemy is imported when a SQLAlchemy connection is given
    from sqlalchemy import Connection

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Entity:
    """One thing as it was at an instant: its display name and its attributes."""

    name: str
    attributes: dict[str, Any]


Snapshot = dict[str, dict[Key, Entity]]  # kind -> key -> entity


@dataclass(slots=True)
class Change:
    """One entity that appeared, disappeared or changed between two instants (a value: not
    changed once made; not frozen, as a week's 100,000s are made 5x faster without)."""

    kind: str
    workspace_id: str
    namespace: str
    name: str
    change: Literal["added", "removed", "changed"]
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def changed_attributes(self) -> dict[str, tuple[Any, Any]]:
        """attribute -> (old, new), for the attributes that differ."""
        old, new = self.old or {}, self.new or {}
        return {k: (old.get(k), new.get(k)) for k in {**old, **new} if old.get(k) != new.get(k)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workspace_id": self.workspace_id,
            "namespace": self.namespace,
            "name": self.name,
            "change": self.change,
            "old": self.old,
            "new": self.new,
        }


def snapshot(
    conn: Connection, at: datetime, workspace_id: str | None = None, live_only: bool = False
) -> Snapshot:
    """Everything that was valid at instant `at`, per entity kind; with `live_only`, only the
    edges whose carrying job was live at `at`."""
    from sqlalchemy import bindparam, text

    from exporter.sqltypes import UtcDateTime

    result: Snapshot = {}
    for kind, (view, key_sql, name_sql, attributes) in SNAPSHOT.items():
        columns = ", ".join(column for column, _ in attributes.values())
        live = live_only and kind.endswith("_edge")
        # View and column names are the constants above; values are bound parameters.
        sql = (
            f"SELECT workspace_id, namespace, {key_sql}, {name_sql}, {columns} FROM {view} "  # noqa: S608
            "WHERE valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)"
            + (" AND workspace_id = :ws" if workspace_id is not None else "")
            + (" AND job_status IN (SELECT status FROM live_job_statuses)" if live else "")
        )
        statement = text(sql).bindparams(bindparam("at", type_=UtcDateTime))
        width = key_width(kind)
        entities: dict[Key, Entity] = {}
        for row in conn.execute(statement, {"at": at, "ws": workspace_id}):
            values = [
                _decode(value, typ)
                for value, (_, typ) in zip(row[width + 1 :], attributes.values(), strict=True)
            ]
            entities[tuple(row[:width])] = Entity(
                row[width], dict(zip(attributes, values, strict=True))
            )
        result[kind] = entities
    return result


def _decode(value: Any, typ: str) -> Any:
    """Views lose column types on SQLite: JSON comes back as text and booleans as 0/1."""
    if value is None:
        return None
    if typ == "json" and isinstance(value, str):
        return json.loads(value)
    if typ == "bool":
        return bool(value)
    return value


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[Change]:
    """What appeared, disappeared or changed from `before` to `after` (pure)."""
    changes: list[Change] = []
    for kind in ENTITY_KINDS:
        old, new = before.get(kind, {}), after.get(kind, {})
        for key in sorted(old.keys() | new.keys(), key=_sort_key):
            was, now = old.get(key), new.get(key)
            if was is not None and now is not None and was.attributes == now.attributes:
                continue
            change: Literal["added", "removed", "changed"] = (
                "added" if was is None else "removed" if now is None else "changed"
            )
            shown = now if now is not None else was
            assert shown is not None
            changes.append(
                Change(
                    kind,
                    key[0],
                    key[1],
                    shown.name,
                    change,
                    was.attributes if was else None,
                    now.attributes if now else None,
                )
            )
    return changes


def diff(
    conn: Connection | BareConnection,
    start: datetime,
    end: datetime,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> list[Change]:
    """What changed in the lineage between two instants (with `live_only`: in the live
    lineage, so an edge whose job stopped running is `removed`), read from the versions that
    opened or closed between them; the database pairs each entity's version at the start with
    its version at the end, and returns only the entities that differ."""
    with young_collections_only():  # a week's changes are 100,000s of long-lived objects
        return list(iter_diff(conn, start, end, workspace_id, live_only))


def iter_diff(
    conn: Connection | BareConnection,
    start: datetime,
    end: datetime,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> Iterator[Change]:
    """`diff`'s changes one by one as the database sends them (kind by kind, each in key
    order), holding a batch of rows at a time: a writer's memory does not grow with the
    answer. The connection (SQLAlchemy's, or a bare one: exporter.dbapi) stays busy until the
    iterator is exhausted or closed; on PostgreSQL, SQLAlchemy's keeps diff's planner settings
    (changes_sql.READER_SETTINGS) until its transaction ends."""
    if start == end:
        return
    if isinstance(conn, BareConnection):
        order = [row[0] for row in conn.rows(namespace_order_sql(conn.dialect), {})]
    else:
        order = list(conn.exec_driver_sql(namespace_order_sql(conn.dialect.name)).scalars())
        if conn.dialect.name == "postgresql":
            for name, value in READER_SETTINGS.items():  # constants; until the caller's commit
                conn.exec_driver_sql(f"SET LOCAL {name} = {value}")
    params = diff_params(start, end, workspace_id, order)
    for kind in ENTITY_KINDS:
        yield from _kind_changes(conn, kind, params, live_only, len(order))


# Rows fetched per round trip of a streamed diff: large enough that the round trips cost
# little next to the rows, small enough that a batch is a few MB.
STREAM_BATCH = 5000


def _kind_changes(
    conn: Connection | BareConnection,
    kind: str,
    params: dict[str, Any],
    live_only: bool,
    namespaces: int,
) -> Iterator[Change]:
    """The changes of one kind, in key order (the database sorts: keys are NOT NULL text,
    compared as code points as Python compares them)."""
    scoped = params["ws"] is not None
    if isinstance(conn, BareConnection):
        dialect = conn.dialect
        sql = change_rows_sql(kind, scoped, live_only, dialect, namespaces, conn.parallel)
        rows: Iterator[Sequence[Any]] = conn.rows(sql, params, STREAM_BATCH)
    else:  # SQLAlchemy streams through a server-side cursor: never run in parallel
        dialect = conn.dialect.name
        sql = change_rows_sql(kind, scoped, live_only, dialect, namespaces)
        rows = _sqlalchemy_rows(conn, sql, params)
    # An edge's rows are at the start, at the end; an entity's at the earlier, the later end.
    backwards = not kind.endswith("_edge") and params["t1"] > params["t2"]
    attributes = kind_attributes(kind)
    width = key_width(kind)
    names = list(attributes)
    at_lo = slice(width + 1, width + 1 + len(names))  # each end's attributes
    at_hi = slice(at_lo.stop, at_lo.stop + len(names))
    (old_at, new_at), (old_present, new_present) = (at_lo, at_hi), (-2, -1)
    if backwards:
        old_at, new_at, old_present, new_present = new_at, old_at, new_present, old_present
    # PostgreSQL returns JSON and booleans typed; SQLite returns them as text and 0/1.
    decoded = (
        []
        if dialect == "postgresql"
        else [(name, typ) for name, (_, typ) in attributes.items() if typ != "text"]
    )

    def values(row: Sequence[Any], at: slice) -> dict[str, Any]:
        found = dict(zip(names, row[at], strict=True))
        for name, typ in decoded:
            found[name] = _decode(found[name], typ)
        return found

    for row in rows:
        old = values(row, old_at) if row[old_present] else None
        new = values(row, new_at) if row[new_present] else None
        if old is None:
            change: Literal["added", "removed", "changed"] = "added"
        elif new is None:
            change = "removed"
        elif old == new:  # JSON that differs as text only
            continue
        else:
            change = "changed"
        yield Change(kind, row[0], row[1], row[width], change, old, new)


def _sqlalchemy_rows(conn: Connection, sql: str, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
    """The rows of `sql`, STREAM_BATCH at a time (a server-side cursor on PostgreSQL)."""
    from sqlalchemy import bindparam, text

    from exporter.sqltypes import UtcDateTime

    times = [t for t in ("lo", "hi", "t1", "t2") if f":{t}" in sql]
    statement = text(sql).bindparams(*(bindparam(t, type_=UtcDateTime) for t in times))
    batches = conn.execute(statement.execution_options(yield_per=STREAM_BATCH), params)
    for batch in batches.partitions(STREAM_BATCH):
        yield from batch


def _sort_key(key: Key) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
