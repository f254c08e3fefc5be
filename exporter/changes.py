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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from exporter.models import TIME_INDEX_GUARD, UtcDateTime

# kind -> (view, key columns, display-name SQL, {attribute: (column, type)})
_SNAPSHOT: dict[str, tuple[str, str, str, dict[str, tuple[str, str]]]] = {
    "job": (
        "lineage_jobs_history",
        "deployment_id",
        "COALESCE(deployment_name, deployment_id)",
        {
            "job_id": ("job_id", "text"),
            "deployment_name": ("deployment_name", "text"),
            "properties": ("properties", "json"),
            # As lineage_changes shows them (times are in the views, not in change values).
            "status": ("job_status", "text"),
            "engine_version": ("engine_version", "text"),
            "execution_mode": ("execution_mode", "text"),
            "creator": ("job_creator", "text"),
            "deployment_description": ("deployment_description", "text"),
            "deployment_labels": ("deployment_labels", "json"),
            "deployment_target": ("deployment_target", "text"),
            "deployment_creator": ("deployment_creator", "text"),
            "deployment_modifier": ("deployment_modifier", "text"),
        },
    ),
    "table": (
        "lineage_tables_history",
        "qualified_name, owner_deployment_id",
        "qualified_name",
        {
            "table_id": ("table_id", "text"),
            "connector": ("connector", "text"),
            "is_temporary": ("is_temporary", "bool"),
            "with": ("with_options", "json"),
            "properties": ("properties", "json"),
            "node_id": ("node_id", "text"),
        },
    ),
    "column": (
        "lineage_columns_history",
        "qualified_name, owner_deployment_id",
        "qualified_name",
        {
            "column_id": ("column_id", "text"),
            "type": ("column_type", "text"),
            "native_type": ("column_native_type", "text"),
            "nullable": ("nullable", "bool"),
            "description": ("description", "text"),
            "creator": ("column_creator", "text"),
            "modifier": ("column_modifier", "text"),
        },
    ),
    **{
        f"{level}_edge": (
            f"lineage_{level}_edges_history",
            "source_name, source_owner, destination_name, destination_owner, job_id",
            "source_name || ' -> ' || destination_name",
            {"job_id": ("job_id", "text")},
        )
        for level in ("table", "column")
    },
}
ENTITY_KINDS = tuple(_SNAPSHOT)

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Entity:
    """One thing as it was at an instant: its display name and its attributes."""

    name: str
    attributes: dict[str, Any]


Snapshot = dict[str, dict[Key, Entity]]  # kind -> key -> entity


@dataclass(frozen=True)
class Change:
    """One entity that appeared, disappeared or changed between two instants."""

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
        return dict(self.__dict__)


def snapshot(
    conn: Connection, at: datetime, workspace_id: str | None = None, live_only: bool = False
) -> Snapshot:
    """Everything that was valid at instant `at`, per entity kind; with `live_only`, only the
    edges whose carrying job was live at `at`."""
    result: Snapshot = {}
    for kind, (view, key_sql, name_sql, attributes) in _SNAPSHOT.items():
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
        key_width = 2 + len(key_sql.split(","))
        entities: dict[Key, Entity] = {}
        for row in conn.execute(statement, {"at": at, "ws": workspace_id}):
            values = [
                _decode(value, typ)
                for value, (_, typ) in zip(row[key_width + 1 :], attributes.values(), strict=True)
            ]
            entities[tuple(row[:key_width])] = Entity(
                row[key_width], dict(zip(attributes, values, strict=True))
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
    conn: Connection,
    start: datetime,
    end: datetime,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> list[Change]:
    """What changed in the lineage between two instants (with `live_only`: in the live
    lineage, so an edge whose job stopped running is `removed`), read from the versions that
    opened or closed between them."""
    if start == end:
        return []
    before: Snapshot = {}
    after: Snapshot = {}
    for kind in ENTITY_KINDS:
        before[kind], after[kind] = {}, {}
        for key, entity, at_start, at_end in _window(
            conn, kind, start, end, workspace_id, live_only
        ):
            if at_start:
                before[kind][key] = entity
            if at_end:
                after[kind][key] = entity
    return diff_snapshots(before, after)


def _in_window(v: str, dialect: str) -> str:
    """A version that began or ended in the window (lo, hi]; on SQLite with the term that lets
    it use its time indexes (exporter.models.TIME_INDEX_GUARD)."""
    guard = f" AND {v}{TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    return (
        f"(({v}valid_from > :lo AND {v}valid_from <= :hi)"
        f" OR ({v}valid_to > :lo AND {v}valid_to <= :hi)){guard}"
    )


_VALID_AT = "({v}valid_from <= :{t} AND ({v}valid_to IS NULL OR {v}valid_to > :{t}))"
_LIVE_AT = """EXISTS (SELECT 1 FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE jv.job_id = e.job_id AND jd.namespace_id = e.namespace_id
      AND {valid} AND jv.job_status IN (SELECT status FROM live_job_statuses))"""
_EDGE_COLUMNS = """n.workspace_id, n.name, e.source_name, e.source_owner, e.destination_name,
    e.destination_owner, e.job_id, e.source_name || ' -> ' || e.destination_name, e.job_id"""
# Jobs whose status (or anything else) changed in the window: their edges' liveness may have.
_CHANGED_JOBS = """SELECT DISTINCT jd.namespace_id, jv.job_id
    FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE {window}"""


def _window(
    conn: Connection,
    kind: str,
    start: datetime,
    end: datetime,
    workspace_id: str | None,
    live_only: bool,
) -> list[tuple[Key, Entity, bool, bool]]:
    """(key, entity, valid at start, valid at end) of each version of `kind` that began or
    ended between the two instants."""
    view, key_sql, name_sql, attributes = _SNAPSHOT[kind]
    dialect = conn.dialect.name
    if kind.endswith("_edge"):
        sql = _edge_window_sql(kind.removesuffix("_edge"), live_only, workspace_id, dialect)
    else:
        columns = ", ".join(column for column, _ in attributes.values())
        at = {t: _VALID_AT.format(v="", t=t) for t in ("t1", "t2")}
        # View and column names are the constants above; values are bound parameters.
        # A version that began and ended inside the window is at neither end: left out.
        sql = (
            f"SELECT workspace_id, namespace, {key_sql}, {name_sql}, {columns}, "  # noqa: S608
            f"CASE WHEN {at['t1']} THEN 1 ELSE 0 END, CASE WHEN {at['t2']} THEN 1 ELSE 0 END "
            f"FROM {view} WHERE {_in_window('', dialect)} AND ({at['t1']} OR {at['t2']})"
            + (" AND workspace_id = :ws" if workspace_id is not None else "")
        )
    times = ("lo", "hi", "t1", "t2")
    statement = text(sql).bindparams(*(bindparam(t, type_=UtcDateTime) for t in times))
    lo, hi = min(start, end), max(start, end)
    params = {"lo": lo, "hi": hi, "t1": start, "t2": end, "ws": workspace_id}
    key_width = 2 + len(key_sql.split(","))
    names = list(attributes)
    # Only JSON and booleans need decoding (views lose their types on SQLite).
    decoded = [(i, typ) for i, (_, typ) in enumerate(attributes.values()) if typ != "text"]
    found = []
    for row in conn.execute(statement, params):
        values = list(row[key_width + 1 : -2])
        for i, typ in decoded:
            values[i] = _decode(values[i], typ)
        entity = Entity(row[key_width], dict(zip(names, values, strict=True)))
        found.append((tuple(row[:key_width]), entity, bool(row[-2]), bool(row[-1])))
    return found


def _edge_window_sql(level: str, live_only: bool, workspace_id: str | None, dialect: str) -> str:
    """Edge versions that began or ended in the window, from the version table itself (the
    history view's instants are computed, so its rows cannot be found by index); with
    `live_only` also the edges of jobs that changed in the window, each valid at an instant
    only while its job was live then."""

    def present(t: str) -> str:
        valid = _VALID_AT.format(v="v.", t=t)
        if live_only:
            valid += " AND " + _LIVE_AT.format(valid=_VALID_AT.format(v="jv.", t=t))
        return f"CASE WHEN {valid} THEN 1 ELSE 0 END"

    scope = " AND n.workspace_id = :ws" if workspace_id is not None else ""
    at_an_end = f" AND ({_VALID_AT.format(v='v.', t='t1')} OR {_VALID_AT.format(v='v.', t='t2')})"
    scope = at_an_end + scope
    columns = f"{_EDGE_COLUMNS}, {present('t1')}, {present('t2')}"
    # Only constants (the level, the fragments above) are spliced; values are parameters.
    sql = f"""SELECT {columns}
FROM {level}_edge_versions v
    JOIN {level}_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id
WHERE {_in_window("v.", dialect)}{scope}"""  # noqa: S608
    if live_only:
        sql += f"""
UNION ALL
SELECT {columns}
FROM ({_CHANGED_JOBS.format(window=_in_window("jv.", dialect))}) cj
    JOIN {level}_edges e ON e.namespace_id = cj.namespace_id AND e.job_id = cj.job_id
    JOIN {level}_edge_versions v ON v.edge_fk = e.id
    JOIN namespaces n ON n.id = e.namespace_id
WHERE v.valid_from <= :hi AND (v.valid_to IS NULL OR v.valid_to > :lo){scope}"""  # noqa: S608
    return sql


def _sort_key(key: Key) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
