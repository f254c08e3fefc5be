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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, bindparam, text

from exporter.collector import young_collections_only
from exporter.sqltypes import TIME_INDEX_GUARD, UtcDateTime

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
    opened or closed between them; the database pairs each entity's version at the start with
    its version at the end, and returns only the entities that differ."""
    with young_collections_only():  # a week's changes are 100,000s of long-lived objects
        return list(iter_diff(conn, start, end, workspace_id, live_only))


def iter_diff(
    conn: Connection,
    start: datetime,
    end: datetime,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> Iterator[Change]:
    """`diff`'s changes one by one as the database sends them (kind by kind, each in key
    order), holding a batch of rows at a time: a writer's memory does not grow with the
    answer. The connection stays busy until the iterator is exhausted or closed."""
    if start == end:
        return
    lo, hi = min(start, end), max(start, end)
    params = {"lo": lo, "hi": hi, "t1": start, "t2": end, "ws": workspace_id}
    for kind in ENTITY_KINDS:
        yield from _kind_changes(conn, kind, params, live_only)


# Rows fetched per round trip of a streamed diff: large enough that the round trips cost
# little next to the rows, small enough that a batch is a few MB.
STREAM_BATCH = 5000


def _kind_changes(
    conn: Connection, kind: str, params: dict[str, Any], live_only: bool
) -> Iterator[Change]:
    """The changes of one kind, in key order (the database sorts: keys are NOT NULL text,
    compared as code points as Python compares them)."""
    dialect = conn.dialect.name
    scoped = params["ws"] is not None
    if kind.endswith("_edge"):
        sql = _edge_changes_sql(kind.removesuffix("_edge"), live_only, scoped, dialect)
        backwards = False  # its rows are already at the start, at the end
    else:
        sql = _entity_changes_sql(kind, scoped, dialect)
        backwards = params["t1"] > params["t2"]  # its rows are at the earlier, the later end
    times = [t for t in ("lo", "hi", "t1", "t2") if f":{t}" in sql]
    statement = text(sql).bindparams(*(bindparam(t, type_=UtcDateTime) for t in times))
    _, key_sql, _, attributes = _SNAPSHOT[kind]
    key_width = 2 + len(key_sql.split(","))
    names = list(attributes)
    at_lo = slice(key_width + 1, key_width + 1 + len(names))  # each end's attributes
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

    def values(row: Row[Any], at: slice) -> dict[str, Any]:
        found = dict(zip(names, row[at], strict=True))
        for name, typ in decoded:
            found[name] = _decode(found[name], typ)
        return found

    batches = conn.execute(statement.execution_options(yield_per=STREAM_BATCH), params)
    for row in (row for batch in batches.partitions(STREAM_BATCH) for row in batch):
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
        yield Change(kind, row[0], row[1], row[key_width], change, old, new)


def _collate(dialect: str) -> str:
    """The collation that compares text as Python does: byte order (SQLite's default)."""
    return ' COLLATE "C"' if dialect == "postgresql" else ""


def _key_order(keys: list[str], dialect: str) -> str:
    """ORDER BY the namespace's rank (`_ranked_namespaces`), then the key expressions after
    workspace and namespace, as Python orders their strings (by code point): the bytes of UTF-8
    sort the same, PostgreSQL's "C" collation and SQLite's default compare bytes."""
    return "ORDER BY nr.rank, " + ", ".join(f"({key.strip()}){_collate(dialect)}" for key in keys)


def _ranked_namespaces(dialect: str) -> str:
    """A join giving each namespace `n` its rank `nr.rank` in the order Python gives (workspace
    ID, name): a diff then sorts by one integer, not by two strings that are equal in nearly
    every comparison (on PostgreSQL a week's column query: 0.6 -> 0.5 s)."""
    collate = _collate(dialect)
    return f"""JOIN (SELECT id, ROW_NUMBER() OVER (
        ORDER BY workspace_id{collate}, name{collate}) AS rank FROM namespaces) nr
        ON nr.id = n.id"""  # noqa: S608 - constants only


def _in_window(v: str, dialect: str) -> str:
    """A version that began or ended in the window (lo, hi]; on SQLite with the term that lets
    it use its time indexes (exporter.sqltypes.TIME_INDEX_GUARD)."""
    began, ended = _window_branches(v, dialect)
    return f"(({began}) OR ({ended}))"


def _window_branches(v: str, dialect: str) -> tuple[str, str]:
    """(began in the window, ended in it): asked as two queries, each one index range (SQLite
    would scan the whole table for their OR)."""
    guard = f" AND {v}{TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    return (
        f"{v}valid_from > :lo AND {v}valid_from <= :hi{guard}",
        f"{v}valid_to > :lo AND {v}valid_to <= :hi{guard}",
    )


_VALID_AT = "({v}valid_from <= :{t} AND ({v}valid_to IS NULL OR {v}valid_to > :{t}))"


def _present(valid: str) -> str:
    return f"CASE WHEN {valid} THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class _Versioned:
    """Where a kind's versions are and how an entity (`x`, its ID) gets its key and name: what
    the kind's history view joins, for a diff that pairs versions by entity ID before naming."""

    versions: str
    fk: str
    joins: str  # from the entity ID (`{x}`) to namespaces `n`
    key: str  # after workspace and namespace, as in _SNAPSHOT
    name: str  # `{v}` prefixes the shown version's columns (at the later end, else the earlier)
    renamed: dict[str, str]  # a view's column -> the version table's, where they differ


# From a row holding a table ID ({table}) to its table, database, catalog and namespace.
TABLE_CHAIN = """JOIN tables t ON t.id = {table}
    JOIN databases db ON db.id = t.database_id
    JOIN catalogs c ON c.id = db.catalog_id
    JOIN namespaces n ON n.id = c.namespace_id"""
_TABLE_NAME = "c.name || '.' || db.name || '.' || t.name"
_VERSIONED = {
    "job": _Versioned(
        "job_versions",
        "deployment_fk",
        "JOIN deployments d ON d.id = {x}\n    JOIN namespaces n ON n.id = d.namespace_id",
        "d.deployment_id",
        "COALESCE({v}deployment_name, d.deployment_id)",
        {},
    ),
    "table": _Versioned(
        "table_versions",
        "table_fk",
        TABLE_CHAIN.format(table="{x}"),
        f"{_TABLE_NAME}, t.owner_deployment_id",
        _TABLE_NAME,
        {"table_id": "table_uid"},
    ),
    "column": _Versioned(
        "column_versions",
        "column_fk",
        "JOIN columns col ON col.id = {x}\n    " + TABLE_CHAIN.format(table="col.table_id"),
        f"{_TABLE_NAME} || '.' || col.name, t.owner_deployment_id",
        f"{_TABLE_NAME} || '.' || col.name",
        {"column_id": "column_uid"},
    ),
}


def _entity_changes_sql(kind: str, scoped: bool, dialect: str) -> str:
    """Rows (key, name, attributes at the earlier end `lo`, at the later end `hi`, present at
    `lo`, at `hi`) of the entities of `kind` whose version at one end differs from the other's.

    The version at `lo` of an entity that changed ends inside the window, and the one at `hi`
    begins inside it (versions of one entity do not overlap): each end is one range of a time
    index. The two are paired by entity ID (narrow keys: a hash join), and only the entities
    that differ are named.
    """
    spec = _VERSIONED[kind]
    _, _, _, attributes = _SNAPSHOT[kind]
    columns = [spec.renamed.get(column, column) for column, _ in attributes.values()]
    json_columns = {spec.renamed.get(c, c) for c, typ in attributes.values() if typ == "json"}
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"

    def differs(c: str) -> str:
        a, b = (f"CAST({v}.{c} AS TEXT)" if c in json_columns else f"{v}.{c}" for v in "ab")
        return f"{a} {distinct} {b}"

    def listed(v: str) -> str:
        return ", ".join(f"{v}.{c} AS {v}_{c}" for c in columns)

    guard = f" AND {TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    # Table and column names are the constants above; values are bound parameters.
    at_lo, at_hi = (
        f"SELECT {spec.fk} AS x, {', '.join(columns)} FROM {spec.versions}\n"  # noqa: S608
        f"        WHERE {where}{guard}"
        for where in (
            "valid_to > :lo AND valid_to <= :hi AND valid_from <= :lo",
            "valid_from > :lo AND valid_from <= :hi AND (valid_to IS NULL OR valid_to > :hi)",
        )
    )
    shown = spec.name.format(v="p.b_"), spec.name.format(v="p.a_")
    # SQLite would flatten the ends into the join and read the earlier one without its index.
    materialized = " MATERIALIZED" if dialect == "sqlite" else ""
    return f"""WITH a AS{materialized} (
    {at_lo}
), b AS{materialized} (
    {at_hi}
)
SELECT n.workspace_id, n.name, {spec.key},
       CASE WHEN p.at_hi = 1 THEN {shown[0]} ELSE {shown[1]} END,
       {", ".join(f"p.{side}_{c}" for side in "ab" for c in columns)},
       p.at_lo, p.at_hi
FROM (
    {_paired(listed("a"), listed("b"), " OR ".join(differs(c) for c in columns), dialect)}
) p
    {spec.joins.format(x="p.x")}
    {_ranked_namespaces(dialect)}
{"WHERE n.workspace_id = :ws" if scoped else ""}
{_key_order(spec.key.split(","), dialect)}"""  # noqa: S608


def _paired(at_lo: str, at_hi: str, differ: str, dialect: str) -> str:
    """The versions at `lo` (`a`) and at `hi` (`b`) paired by entity ID, where they differ.
    SQLite joins by nested loops and indexes a materialized side for a LEFT JOIN but never for
    a FULL one (a scan of one side per row of the other): there the FULL JOIN is spelled as a
    LEFT JOIN each way."""
    pair = f"""SELECT COALESCE(a.x, b.x) AS x, {at_lo}, {at_hi},
           CASE WHEN a.x IS NULL THEN 0 ELSE 1 END AS at_lo,
           CASE WHEN b.x IS NULL THEN 0 ELSE 1 END AS at_hi"""
    if dialect == "postgresql":
        return f"""{pair}
    FROM a FULL JOIN b ON b.x = a.x
    WHERE a.x IS NULL OR b.x IS NULL OR {differ}"""
    return f"""{pair}
    FROM a LEFT JOIN b ON b.x = a.x
    WHERE b.x IS NULL OR {differ}
    UNION ALL
    {pair}
    FROM b LEFT JOIN a ON a.x = b.x
    WHERE a.x IS NULL"""


_LIVE_AT = """EXISTS (SELECT 1 FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE jv.job_id = e.job_id AND jd.namespace_id = e.namespace_id
      AND {valid} AND jv.job_status IN (SELECT status FROM live_job_statuses))"""
# An edge's key after its workspace and namespace.
_EDGE_NAMES = "e.source_name, e.source_owner, e.destination_name, e.destination_owner, e.job_id"
# Jobs whose status (or anything else) changed in the window: their edges' liveness may have.
_CHANGED_JOBS = """SELECT DISTINCT jd.namespace_id, jv.job_id
    FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE {window}"""


def _edge_changes_sql(level: str, live_only: bool, scoped: bool, dialect: str) -> str:
    """Rows (key, name, job ID twice, present at the start, at the end) of the edges present at
    one end only. Read from the version table itself (the history view's instants are
    computed, so its rows cannot be found by index); with `live_only` also the edges of jobs
    that changed in the window, each present at an instant only while its job was live then."""

    def present(t: str) -> str:
        valid = _VALID_AT.format(v="v.", t=t)
        if live_only:
            valid += " AND " + _LIVE_AT.format(valid=_VALID_AT.format(v="jv.", t=t))
        return _present(valid)

    scope = f" AND ({_VALID_AT.format(v='v.', t='t1')} OR {_VALID_AT.format(v='v.', t='t2')})"
    if scoped:
        scope += " AND n.workspace_id = :ws"
    rows = f"e.id, {present('t1')} AS at_start, {present('t2')} AS at_end"
    # Only constants (the level, the fragments above) are spliced; values are parameters.
    versions = "\n    UNION ALL\n".join(
        f"""SELECT {rows}
    FROM {level}_edge_versions v
        JOIN {level}_edges e ON e.id = v.edge_fk
        JOIN namespaces n ON n.id = e.namespace_id
    WHERE {branch}{scope}"""  # noqa: S608
        for branch in _window_branches("v.", dialect)
    )
    if live_only:
        versions += f"""
    UNION ALL
    SELECT {rows}
    FROM ({_CHANGED_JOBS.format(window=_in_window("jv.", dialect))}) cj
        JOIN {level}_edges e ON e.namespace_id = cj.namespace_id AND e.job_id = cj.job_id
        JOIN {level}_edge_versions v ON v.edge_fk = e.id
        JOIN namespaces n ON n.id = e.namespace_id
    WHERE v.valid_from <= :hi AND (v.valid_to IS NULL OR v.valid_to > :lo){scope}"""  # noqa: S608
    # An edge's versions do not overlap, but in live mode one may be listed twice.
    return f"""SELECT n.workspace_id, n.name, {_EDGE_NAMES},
       e.source_name || ' -> ' || e.destination_name, e.job_id, e.job_id, p.at_start, p.at_end
FROM (SELECT id, MAX(at_start) AS at_start, MAX(at_end) AS at_end
      FROM ({versions}) u GROUP BY id) p
    JOIN {level}_edges e ON e.id = p.id
    JOIN namespaces n ON n.id = e.namespace_id
    {_ranked_namespaces(dialect)}
WHERE p.at_start <> p.at_end
{_key_order(_EDGE_NAMES.split(","), dialect)}"""  # noqa: S608


def _sort_key(key: Key) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
