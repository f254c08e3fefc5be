"""Store: loads the current state, applies changes, logs runs (with `staging`, which merges
and diffs a large run's rows in the database, the only modules that write).

A run's changes are applied inside one transaction that the caller opens with
`exporter.database.transaction()`, so a crash leaves the database as before the run or as after
it.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from operator import itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import Column as SqlColumn
from sqlalchemy import Table as SqlTable
from sqlalchemy import cast as sql_cast
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import Text, TypeEngine

from exporter import schema
from exporter.api.wire import Job
from exporter.changes_sql import TIME_INDEX_GUARD, namespace_joins
from exporter.database import transaction
from exporter.failures import JobFailure
from exporter.history import Changes, CurrentState
from exporter.normalize import JOB_RECORD_ATTRS, KINDS, ROWS_VERSION, Attrs, Key
from exporter.redact import Redactor
from exporter.sqltypes import UtcDateTime

CHUNK = 500
T = TypeVar("T")
TABLE_ATTRS = ("node_id", "table_uid", "connector", "is_temporary", "with_options", "properties")
COLUMN_ATTRS = (
    "column_uid",
    "column_type",
    "column_native_type",
    "nullable",
    "description",
    "column_created_at",
    "column_modified_at",
    "column_creator",
    "column_modifier",
)
JOB_ATTRS = ("job_id", "deployment_name", "properties", *JOB_RECORD_ATTRS)


# -- runs -----------------------------------------------------------------------------------


def start_run(
    engine: Engine, workspace_id: str, now: datetime, rows_version: int = ROWS_VERSION
) -> tuple[int, datetime]:
    """Record a `running` run; returns its id and its clock (after any earlier run's clock).

    A run left `running` by a crash is marked `failed` here: its writes were rolled back.
    """
    runs, workspaces = schema.sync_runs, schema.workspaces
    with transaction(engine) as conn:
        if conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id)) is None:
            conn.execute(insert(workspaces).values(id=workspace_id))
        conn.execute(
            update(runs)
            .where(runs.c.workspace_id == workspace_id, runs.c.status == "running")
            .values(status="failed", finished_at=now, error_summary="interrupted: nothing written")
        )
        last = conn.scalar(
            select(func.max(runs.c.started_at)).where(runs.c.workspace_id == workspace_id)
        )
        if last is not None:
            last = _aware(last)
            if now <= last:  # keep valid_from strictly increasing even if the clock steps back
                now = last + timedelta(microseconds=1)
        run_id = conn.execute(
            insert(runs)
            .values(
                workspace_id=workspace_id,
                started_at=now,
                status="running",
                rows_version=rows_version,
            )
            .returning(runs.c.id)
        ).scalar_one()
    return run_id, now


def last_rows_version(engine: Engine, workspace_id: str) -> int | None:
    """The rules version of the workspace's latest run that wrote (None: none did, or it
    predates the column)."""
    runs = schema.sync_runs.c
    with engine.connect() as conn:
        return conn.scalar(
            select(runs.rows_version)
            .where(runs.workspace_id == workspace_id, runs.status.in_(("succeeded", "partial")))
            .order_by(runs.id.desc())
            .limit(1)
        )


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class RunOutcome:
    status: str
    deployments_total: int
    jobs_total: int
    jobs_failed: int
    rows_added: int
    rows_closed: int
    error_summary: str | None


def finish_run(conn: Connection, run_id: int, finished_at: datetime, outcome: RunOutcome) -> None:
    conn.execute(
        update(schema.sync_runs)
        .where(schema.sync_runs.c.id == run_id)
        .values(
            finished_at=finished_at,
            status=outcome.status,
            deployments_total=outcome.deployments_total,
            jobs_total=outcome.jobs_total,
            jobs_failed=outcome.jobs_failed,
            rows_added=outcome.rows_added,
            rows_closed=outcome.rows_closed,
            error_summary=outcome.error_summary,
        )
    )


# The feed's rows of a range of runs, counted by run, namespace, kind and change (migration 0010
# counts the runs before it with the same query).
_COUNT_RUN_CHANGES = text("""
INSERT INTO run_change_counts (run_id, namespace, entity_kind, change, changes)
SELECT run_id, namespace, entity_kind, change, COUNT(*)
FROM lineage_changes
WHERE run_id BETWEEN :first AND :last
GROUP BY run_id, namespace, entity_kind, change""")


# A run that changed this many rows counts them with hash joins. The planner's statistics
# predate the run, so it looks each changed version's entity, table, database and catalog up
# one at a time: right for a few thousand rows, but an initial sync of 1,000 deployments
# (130,000 versions) took 1.3 s to count that way and 0.35 s hashed.
MANY_CHANGED_ROWS = 50_000


def record_run_counts(
    conn: Connection,
    workspace_id: str,
    run_id: int,
    at: datetime,
    by_kind: Mapping[str, tuple[int, int]],
) -> None:
    """`record_change_counts` of one sync run (at `at`), given the versions it opened and
    closed of each kind, counted straight from those versions: each is found through a time
    index and paired with its predecessor or successor at `at`, as the feed pairs them (tests
    compare the two on real histories). The feed's query finds a run's versions through all of
    the workspace's entities: 65 ms for a run of 700 changes at 1,000 deployments, 1.6-2.1 s
    for an initial sync at 10,000."""
    kinds = [kind for kind, (opened, closed) in by_kind.items() if opened or closed]
    hashed = sum(sum(by_kind[kind]) for kind in kinds) >= MANY_CHANGED_ROWS
    params = {"run": run_id, "ws": workspace_id, "at": at}
    # The planner's statistics predate the run. Each count starts from the run's versions (a
    # range of a time index) and joins what names them in the order written: a few versions
    # look each up by primary key, many are hashed. Left to choose, a run of 2,500 changes at
    # 10,000 deployments hashed all 640,000 column edges, twice (0.75-0.96 s).
    joins = (
        {"enable_nestloop": "off"}
        if hashed
        else {"enable_hashjoin": "off", "enable_mergejoin": "off"}
    )
    with planner_settings(conn, join_collapse_limit="1", **joins):
        for kind in kinds:
            closed_any = by_kind[kind][1] > 0
            conn.execute(_count_run_statement(kind, conn.dialect.name, closed_any), params)


@cache
def _count_run_statement(kind: str, dialect: str, closed_any: bool) -> Any:
    """The run's rows of one kind in the feed, counted by namespace and change. A run that
    closed no version of the kind (`closed_any` false: every first sync) removed none and
    changed none: each version it opened was added, and none is looked up for a predecessor
    (a first sync at 10,000 deployments counted in 0.94 s with 760,000 such lookups, in
    0.61 s without)."""
    feed_kind, (version_table, fk) = kind.removesuffix("s"), VERSIONS[kind]  # feed name: "column"
    versions, joins = version_table.name, namespace_joins(feed_kind, f"v.{fk}")
    guard = f" AND v.{TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    change = "'added'"
    if closed_any:
        change = f"""CASE WHEN EXISTS (
        SELECT 1 FROM {versions} p WHERE p.{fk} = v.{fk} AND p.valid_to = v.valid_from
    ) THEN 'changed' ELSE 'added' END"""  # noqa: S608
    # Table names, joins and kinds are constants; values are bound parameters.
    sql = f"""INSERT INTO run_change_counts (run_id, namespace, entity_kind, change, changes)
SELECT :run, n.name, '{feed_kind}', {change}, COUNT(*)
FROM {versions} v
    {joins}
WHERE v.valid_from = :at{guard} AND n.workspace_id = :ws
GROUP BY 2, 4"""  # noqa: S608
    if closed_any:
        sql += f"""
UNION ALL
SELECT :run, n.name, '{feed_kind}', 'removed', COUNT(*)
FROM {versions} v
    {joins}
WHERE v.valid_to = :at{guard} AND n.workspace_id = :ws AND NOT EXISTS (
    SELECT 1 FROM {versions} x WHERE x.{fk} = v.{fk} AND x.valid_from = v.valid_to)
GROUP BY 2"""  # noqa: S608
    return text(sql).bindparams(
        bindparam("run", type_=BigInteger), bindparam("at", type_=UtcDateTime)
    )


def record_change_counts(conn: Connection, run_id: int, last_run_id: int | None = None) -> None:
    """Count what a run changed (`lineage_change_counts`) from the change feed itself, after
    its versions are written: for a history written straight into the schema (a benchmark's,
    a test's), where no sync counted it (a sync uses `record_run_counts`). With `last_run_id`,
    every run from `run_id` to it."""
    last = run_id if last_run_id is None else last_run_id
    conn.execute(_COUNT_RUN_CHANGES, {"first": run_id, "last": last})


def record_failures(conn: Connection, run_id: int, failures: Sequence[JobFailure]) -> None:
    """The run's failed listings, deployments and jobs (the `lineage_job_failures` view)."""
    if failures:
        conn.execute(
            insert(schema.job_failures),
            [
                {
                    "run_id": run_id,
                    "namespace": f.namespace,
                    "deployment_id": f.deployment_id,
                    "deployment_name": f.deployment_name,
                    "job_id": f.job_id,
                    "stage": f.stage,
                    "error": f.error,
                    "failed_at": f.failed_at,
                }
                for f in failures
            ],
        )


def fail_run(engine: Engine, run_id: int, finished_at: datetime, summary: str) -> None:
    """Mark a run failed in a transaction of its own (its data transaction was rolled back)."""
    with transaction(engine) as conn:
        conn.execute(
            update(schema.sync_runs)
            .where(schema.sync_runs.c.id == run_id)
            .values(status="failed", finished_at=finished_at, error_summary=summary[:4000])
        )


# -- contributions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredContribution:
    namespace: str
    deployment_id: str
    job_id: str
    fetched_at: datetime
    content_hash: str
    payload: dict[str, Any] | None  # loaded only when asked for


def live_contributions(
    conn: Connection, workspace_id: str, with_payload_for: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], StoredContribution]:
    """(namespace, deployment_id) -> the deployment's current contribution, payload on request."""
    rows = conn.execute(
        select(
            schema.namespaces.c.name,
            schema.deployments.c.deployment_id,
            schema.contributions.c.job_id,
            schema.contributions.c.fetched_at,
            schema.contributions.c.content_hash,
        )
        .join(schema.deployments, schema.deployments.c.id == schema.contributions.c.deployment_fk)
        .join(schema.namespaces, schema.namespaces.c.id == schema.deployments.c.namespace_id)
        .where(
            schema.namespaces.c.workspace_id == workspace_id,
            schema.contributions.c.removed_at.is_(None),
        )
    ).all()
    wanted = with_payload_for or set()
    payloads = _payloads(conn, workspace_id, wanted) if wanted else {}
    return {
        (ns, dep): StoredContribution(ns, dep, job, _aware(at), digest, payloads.get((ns, dep)))
        for ns, dep, job, at, digest in rows
    }


def with_payloads(
    conn: Connection,
    workspace_id: str,
    contributions: dict[tuple[str, str], StoredContribution],
    keys: set[tuple[str, str]],
) -> dict[tuple[str, str], StoredContribution]:
    """The contributions of `keys` (from `live_contributions`) with their payloads loaded."""
    payloads = _payloads(conn, workspace_id, keys) if keys else {}
    return {key: replace(contributions[key], payload=payloads.get(key)) for key in keys}


def _payloads(
    conn: Connection, workspace_id: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in _chunks(sorted(keys)):
        rows = conn.execute(
            select(
                schema.namespaces.c.name,
                schema.deployments.c.deployment_id,
                schema.contributions.c.payload,
            )
            .join(
                schema.deployments, schema.deployments.c.id == schema.contributions.c.deployment_fk
            )
            .join(schema.namespaces, schema.namespaces.c.id == schema.deployments.c.namespace_id)
            .where(
                schema.namespaces.c.workspace_id == workspace_id,
                tuple_(schema.namespaces.c.name, schema.deployments.c.deployment_id).in_(chunk),
            )
        ).all()
        found.update({(ns, dep): payload for ns, dep, payload in rows})
    return found


@dataclass(frozen=True)
class NewContribution:
    namespace: str
    deployment_id: str
    job_id: str
    content_hash: str
    packed_payload: bytes  # `pack_payload` of the JSON text


def pack_payload(text: bytes) -> bytes:
    """A payload's JSON text (UTF-8) as a run holds it until it stores it: compressed (about a
    seventh of the text; a run that changes much holds thousands, 34 KB each on average)."""
    return zlib.compress(text, 1)


def unpack_payload(packed: bytes) -> str:
    """The JSON text `pack_payload` was given."""
    return zlib.decompress(packed).decode()


class JsonText(str):
    """JSON that is already serialized, to be written without parsing it again."""


def _json_text_param(conn: Connection, name: str) -> ColumnElement[Any]:
    """A parameter that takes JSON text as it is (a JSON column's own would encode it again)."""
    param = bindparam(name, type_=Text())
    return sql_cast(param, JSON) if conn.dialect.name == "postgresql" else param


def save_contributions(
    conn: Connection,
    workspace_id: str,
    run_id: int,
    now: datetime,
    fetched: Sequence[NewContribution],
    previous: dict[tuple[str, str], StoredContribution],
    removed: Iterable[tuple[str, str]],
) -> None:
    """Record this run's new or changed contributions and mark removals.

    Unchanged contributions are not touched: their `fetched_at` stays the time their content
    was first fetched, which is what ranks them when several jobs report one entity.
    """
    ids = ensure_deployments(conn, workspace_id, {(c.namespace, c.deployment_id) for c in fetched})
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for c in fetched:
        fk = ids[(c.namespace, c.deployment_id)]
        before = previous.get((c.namespace, c.deployment_id))
        row = {
            "fk": fk,
            "job_id": c.job_id,
            "run_id": run_id,
            "fetched_at": now,
            "content_hash": c.content_hash,
            "payload": c.packed_payload,  # unpacked a chunk at a time, as it is written
            "removed_at": None,
        }
        if before is None:
            new_rows.append(row)
        elif before.content_hash != c.content_hash:
            changed_rows.append(row)
    # A deployment that comes back may still have its removed contribution: replace it.
    for chunk in _chunks([row["fk"] for row in new_rows]):
        conn.execute(
            delete(schema.contributions).where(schema.contributions.c.deployment_fk.in_(chunk))
        )
    for rows in _chunks(new_rows):
        _insert(conn, schema.contributions, [_contribution_values(row) for row in rows])
    if changed_rows:
        values: dict[str, Any] = {
            k: bindparam(k) for k in changed_rows[0] if k not in ("fk", "payload")
        }
        statement = (
            update(schema.contributions)
            .where(schema.contributions.c.deployment_fk == bindparam("fk"))
            .values(payload=_json_text_param(conn, "payload"), **values)
        )
        for rows in _chunks(changed_rows):
            conn.execute(statement, [_unpacked(row) for row in rows])
    gone = ensure_deployments(conn, workspace_id, set(removed))
    for chunk in _chunks(sorted(gone.values())):
        conn.execute(
            update(schema.contributions)
            .where(schema.contributions.c.deployment_fk.in_(chunk))
            .values(removed_at=now)
        )


def _contribution_values(row: dict[str, Any]) -> dict[str, Any]:
    values = _unpacked(row)
    values["deployment_fk"] = values.pop("fk")
    return values


def _unpacked(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "payload": JsonText(unpack_payload(row["payload"]))}


# -- the current state ---------------------------------------------------------------------------


def load_current(
    conn: Connection, workspace_id: str, only: dict[str, set[Key]] | None = None
) -> CurrentState:
    """Every current version of the workspace, keyed like `normalize` keys its rows.

    With `only`, just the versions of those keys: the keys are written to a temporary table and
    joined to the entities by their whole natural key (the entities' unique indexes), so a
    run reads the versions it compares and no others.
    """
    current: CurrentState = {kind: {} for kind in KINDS}
    for kind, query, width in _current_queries(workspace_id):
        names, end = ATTRS[kind], 1 + width
        if only is not None:
            query = _of_keys(conn, kind, query, width, only[kind])
        # A comprehension over plain tuples: this runs once per current row it reads.
        current[kind] = {
            _interned(row[1:end]): (row[0], dict(zip(names, row[end:], strict=True)))
            for row in conn.execute(query)
        }
    return current


def _of_keys(conn: Connection, kind: str, query: Select[Any], width: int, keys: set[Key]) -> Any:
    """`query` (from `_current_queries`) narrowed to the rows of these natural keys."""
    wanted = _wanted_table(kind, width)
    empty_scratch(conn, wanted)
    insert_tuples(conn, wanted, list(wanted.columns), sorted(keys))
    if conn.dialect.name == "postgresql":  # temporary tables are never analyzed otherwise
        conn.exec_driver_sql(f"ANALYZE {wanted.name}")
    key_columns = list(query.selected_columns)[1 : 1 + width]
    same = [ours == theirs for ours, theirs in zip(key_columns, wanted.columns, strict=True)]
    return query.join(wanted, and_(*same))  # (the keys are distinct: one row per version)


@cache
def _wanted_table(kind: str, width: int) -> SqlTable:
    """A temporary table of the natural keys of one kind a keyed diff compares."""
    return SqlTable(
        f"wanted_{kind}",
        MetaData(),
        *(SqlColumn(f"part_{i}", Text) for i in range(width)),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _interned(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """One shared string object per name: the same names recur in thousands of keys."""
    return tuple([sys.intern(part) if part.__class__ is str else part for part in key])


ATTRS: dict[str, tuple[str, ...]] = {
    "tables": TABLE_ATTRS,
    "columns": COLUMN_ATTRS,
    "jobs": JOB_ATTRS,
    "table_edges": (),
    "column_edges": (),
}


# Per kind: the query, and how many key columns follow the version id.
_CurrentQuery = tuple[str, Select[Any], int]


def _current_queries(workspace_id: str) -> list[_CurrentQuery]:
    in_workspace = schema.namespaces.c.workspace_id == workspace_id
    table_key = (
        schema.namespaces.c.name,
        schema.catalogs.c.name,
        schema.databases.c.name,
        schema.tables.c.name,
        schema.tables.c.owner_deployment_id,
    )

    def table_chain(query: Select[Any]) -> Select[Any]:
        return (
            query.join(schema.databases, schema.databases.c.id == schema.tables.c.database_id)
            .join(schema.catalogs, schema.catalogs.c.id == schema.databases.c.catalog_id)
            .join(schema.namespaces, schema.namespaces.c.id == schema.catalogs.c.namespace_id)
            .where(in_workspace)
        )

    tables = table_chain(
        select(
            schema.table_versions.c.id,
            *table_key,
            *(schema.table_versions.c[a] for a in TABLE_ATTRS),
        )
        .join(schema.tables, schema.tables.c.id == schema.table_versions.c.table_fk)
        .where(schema.table_versions.c.valid_to.is_(None))
    )
    columns = table_chain(
        select(
            schema.column_versions.c.id,
            *table_key,
            schema.columns.c.name,
            *(schema.column_versions.c[a] for a in COLUMN_ATTRS),
        )
        .join(schema.columns, schema.columns.c.id == schema.column_versions.c.column_fk)
        .join(schema.tables, schema.tables.c.id == schema.columns.c.table_id)
        .where(schema.column_versions.c.valid_to.is_(None))
    )
    jobs = (
        select(
            schema.job_versions.c.id,
            schema.namespaces.c.name,
            schema.deployments.c.deployment_id,
            *(schema.job_versions.c[a] for a in JOB_ATTRS),
        )
        .join(schema.deployments, schema.deployments.c.id == schema.job_versions.c.deployment_fk)
        .join(schema.namespaces, schema.namespaces.c.id == schema.deployments.c.namespace_id)
        .where(in_workspace, schema.job_versions.c.valid_to.is_(None))
    )
    queries: list[_CurrentQuery] = [
        ("tables", tables, 5),
        ("columns", columns, 6),
        ("jobs", jobs, 2),
    ]
    for kind, edge, version in (
        ("table_edges", schema.table_edges, schema.table_edge_versions),
        ("column_edges", schema.column_edges, schema.column_edge_versions),
    ):
        queries.append(
            (
                kind,
                (
                    select(version.c.id, schema.namespaces.c.name, *_edge_key_columns(edge))
                    .join(edge, edge.c.id == version.c.edge_fk)
                    .join(schema.namespaces, schema.namespaces.c.id == edge.c.namespace_id)
                    .where(in_workspace, version.c.valid_to.is_(None))
                ),
                6,
            )
        )
    return queries


def _edge_key_columns(edge: SqlTable) -> tuple[Any, ...]:
    return (
        edge.c.source_name,
        edge.c.source_owner,
        edge.c.destination_name,
        edge.c.destination_owner,
        edge.c.job_id,
    )


# -- applying changes -----------------------------------------------------------------


def refresh_statistics(conn: Connection, rows_written: int) -> None:
    """Keep SQLite's query planner informed after writes (PostgreSQL's autovacuum does this).

    Without statistics SQLite walks lineage through the wrong index (a whole namespace per hop);
    a sampled ANALYZE takes milliseconds.
    """
    if rows_written and conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=400")
        conn.exec_driver_sql("ANALYZE")


def apply_changes(
    conn: Connection, workspace_id: str, run_id: int, now: datetime, changes: Changes
) -> None:
    """Close the versions `changes` closes and open the ones it opens, at instant `now`."""
    for kind, (versions, _) in VERSIONS.items():
        for chunk in _chunks(changes.closed[kind]):
            conn.execute(update(versions).where(versions.c.id.in_(chunk)).values(valid_to=now))
    open_versions(conn, workspace_id, run_id, now, changes.opened)


def open_versions(
    conn: Connection,
    workspace_id: str,
    run_id: int,
    now: datetime,
    opened: dict[str, list[tuple[Key, Attrs]]],
) -> None:
    """Insert the versions `opened` lists, and every entity they need that does not exist yet.

    Tables, deployments and namespaces (a few per thousand rows) get their IDs first. Columns
    and edges (most of the rows) go set-based: staged in a temporary table (COPY on
    PostgreSQL), then one INSERT ... SELECT creates the missing entities and one their
    versions, joined by natural key, so no column or edge ID travels to Python.
    """
    rows = {kind: opened.get(kind, []) for kind in KINDS}
    table_ids = _ensure_tables(
        conn, workspace_id, {k for k, _ in rows["tables"]} | {k[:5] for k, _ in rows["columns"]}
    )
    deployment_ids = ensure_deployments(conn, workspace_id, {(k[0], k[1]) for k, _ in rows["jobs"]})
    namespace_ids = ensure_namespaces(
        conn, workspace_id, {k[0] for kind in _EDGES for k, _ in rows[kind]}
    )
    base = {"valid_from": now, "valid_to": None, "run_id": run_id}
    _insert(
        conn,
        schema.table_versions,
        [{**base, "table_fk": table_ids[key], **attrs} for key, attrs in rows["tables"]],
    )
    _insert(
        conn,
        schema.job_versions,
        [
            {**base, "deployment_fk": deployment_ids[(key[0], key[1])], **attrs}
            for key, attrs in rows["jobs"]
        ],
    )
    column_attrs = itemgetter(*COLUMN_ATTRS)
    staged = {
        "columns": [
            (table_ids[key[:5]], key[5], *column_attrs(attrs)) for key, attrs in rows["columns"]
        ],
        **{kind: [(namespace_ids[key[0]], *key[1:]) for key, _ in rows[kind]] for kind in _EDGES},
    }
    with through_indexes(conn):
        for kind, values in staged.items():
            if values:
                _open_staged(conn, kind, values, run_id, now)


_EDGES = ("table_edges", "column_edges")


def _open_staged(
    conn: Connection, kind: str, values: list[tuple[Any, ...]], run_id: int, now: datetime
) -> None:
    """Create the missing entities of the staged rows, then one version for each row."""
    stage = _STAGES[kind]
    version_table, entity_column = VERSIONS[kind]
    entity = _ENTITIES[kind]
    keys = [c.name for c in entity.columns if c.name != "id"]
    _fill_scratch(conn, stage, values)
    same_key = and_(*(entity.c[key] == stage.c[key] for key in keys))
    # No ON CONFLICT clause (it would cost a speculative insertion per row): these rows belong
    # to one workspace, and its lease keeps any other writer away. Sorted: index pages fill
    # in order.
    missing = (
        select(*(stage.c[key] for key in keys))
        .where(~select(entity.c.id).where(same_key).exists())
        .distinct()
        .order_by(*(stage.c[key] for key in keys))
    )
    attrs = ATTRS[kind]
    versions = select(
        entity.c.id,
        literal(now, version_table.c.valid_from.type),
        literal(run_id, version_table.c.run_id.type),
        *(stage.c[a] for a in attrs),
    ).select_from(stage.join(entity, same_key))
    conn.execute(insert(entity).from_select(keys, missing))
    conn.execute(
        insert(version_table).from_select([entity_column, "valid_from", "run_id", *attrs], versions)
    )


@contextmanager
def through_indexes(conn: Connection) -> Iterator[None]:
    """Join staged rows to their entities through the entities' unique indexes (PostgreSQL).

    Statistics of the entity tables predate this transaction: during a first sync they say
    "empty", and the planner hashes the whole table for each write, a cost that grows with
    every write of the run. An index lookup per staged row costs the same at any size.
    """
    with planner_settings(conn, enable_hashjoin="off", enable_mergejoin="off"):
        yield


@contextmanager
def planner_settings(conn: Connection, **settings: str) -> Iterator[None]:
    """PostgreSQL's planner settings for the statements of the block (of this transaction)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    names = list(settings)
    before = conn.execute(
        select(
            *(func.current_setting(name) for name in names),
            *(func.set_config(name, settings[name], True) for name in names),
        )
    ).one()
    yield  # (a failed statement rolls back the transaction, and these settings with it)
    restore = zip(names, before[: len(names)], strict=True)
    conn.execute(select(*(func.set_config(name, value, True) for name, value in restore)))


def _stage_table(name: str, versions: SqlTable, columns: list[SqlColumn[Any]]) -> SqlTable:
    """A temporary table for a kind's rows: parent ID, the rest of the key, attributes."""
    return SqlTable(
        f"stage_{name}",
        MetaData(),
        *columns,
        *(SqlColumn(a, versions.c[a].type) for a in ATTRS[name]),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _edge_stage(kind: str, edge: SqlTable, version: SqlTable) -> SqlTable:
    key = [SqlColumn(c.name, c.type) for c in edge.columns if c.name != "id"]
    return _stage_table(kind, version, key)


_STAGES: dict[str, SqlTable] = {
    "columns": _stage_table(
        "columns",
        schema.column_versions,
        [
            SqlColumn("table_id", schema.columns.c.table_id.type),
            SqlColumn("name", schema.columns.c.name.type),
        ],
    ),
    "table_edges": _edge_stage("table_edges", schema.table_edges, schema.table_edge_versions),
    "column_edges": _edge_stage("column_edges", schema.column_edges, schema.column_edge_versions),
}
_ENTITIES: dict[str, SqlTable] = {
    "columns": schema.columns,
    "table_edges": schema.table_edges,
    "column_edges": schema.column_edges,
}


# kind -> the version table and its column that points at the entity
VERSIONS: dict[str, tuple[SqlTable, str]] = {
    "tables": (schema.table_versions, "table_fk"),
    "columns": (schema.column_versions, "column_fk"),
    "jobs": (schema.job_versions, "deployment_fk"),
    "table_edges": (schema.table_edge_versions, "edge_fk"),
    "column_edges": (schema.column_edge_versions, "edge_fk"),
}


def _insert(conn: Connection, table: SqlTable, rows: list[dict[str, Any]]) -> None:
    """Insert many rows into a table: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    columns = [c for c in table.columns if c.key in rows[0]]
    insert_tuples(conn, table, columns, [[row[c.key] for c in columns] for row in rows])


def insert_tuples(
    conn: Connection, table: SqlTable, columns: Sequence[SqlColumn[Any]], rows: Sequence[Any]
) -> None:
    """Insert rows given as values in `columns`' order: COPY on PostgreSQL, executemany on
    SQLite."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table.name, list(columns), rows)
        return
    _executemany_rows(conn, table, columns, rows)


def _executemany_rows(
    conn: Connection, table: SqlTable, columns: Sequence[SqlColumn[Any]], rows: Sequence[Any]
) -> None:
    """executemany on SQLite's own cursor, each value through its column's bind processor.

    SQLAlchemy's per-row parameter handling costs more than SQLite's insert itself; the
    processors (datetimes, JSON) are the same ones it would apply. JsonText goes in as it is.
    """
    names = [c.key for c in columns]
    compiled = insert(table).values({name: bindparam(name) for name in names}).compile(conn)

    def processor(index: int) -> Callable[[Any], Any] | None:
        if isinstance(rows[0][index], JsonText):
            return None  # already JSON text
        # The dialect's own type: the generic DateTime leaves a datetime to sqlite3, whose
        # isoformat drops a zero fraction ('... 00:00:00' vs '... 00:00:00.000000'), and text
        # times compare as text.
        column_type = columns[index].type
        dialect_type = column_type.dialect_impl(conn.dialect)
        process: Callable[[Any], Any] | None = dialect_type.bind_processor(conn.dialect)
        if process is not None and isinstance(
            getattr(column_type, "impl_instance", column_type), DateTime
        ):
            # Each distinct time converted once per call: rows share a few (every staged row
            # carries its contribution's fetch instant), and formatting them as SQLite's text
            # took a quarter of the GIL in an initial sync of 1,000 deployments.
            return cache(process)
        return process

    # The compiled statement's parameters, in its order: (index in a row, processor)
    keyed = [(i, processor(i)) for i in map(names.index, compiled.positiontup or ())]
    for chunk in _chunks(rows, 5000):
        values = [
            tuple(row[i] if process is None else process(row[i]) for i, process in keyed)
            for row in chunk
        ]
        conn.exec_driver_sql(str(compiled), values)


def _copy_rows(
    conn: Connection, table_name: str, columns: list[Any], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows into a PostgreSQL table in the binary format (names are the schema's own)."""
    import psycopg  # here: a sync into SQLite, the default, never loads the driver (40 ms)
    from psycopg.types.json import Json, Jsonb

    types = [_postgres_type(c.type) for c in columns]
    wrappers = {"json": Json, "jsonb": Jsonb}
    json_columns = [(i, wrappers[name]) for i, name in enumerate(types) if name in wrappers]
    names = ", ".join(c.name for c in columns)
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    statement = f"COPY {table_name} ({names}) FROM STDIN (FORMAT binary)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        if not json_columns:
            for row in rows:
                copy.write_row(row)
            return
        for row in rows:
            values = list(row)
            for i, wrapper in json_columns:
                value = values[i]
                values[i] = (
                    wrapper(value, dumps=str) if isinstance(value, JsonText) else wrapper(value)
                )
            copy.write_row(values)


def _postgres_type(sql_type: TypeEngine[Any]) -> str:
    """The PostgreSQL type name psycopg's binary COPY needs, e.g. `character varying`."""
    name: str = sql_type.compile(dialect=_POSTGRES).lower()
    return name.split("(")[0].replace("varchar", "character varying")


_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]


def ensure_namespaces(conn: Connection, workspace_id: str, names: set[str]) -> dict[str, int]:
    ids = _ensure(
        conn,
        schema.namespaces,
        (schema.namespaces.c.workspace_id, schema.namespaces.c.name),
        {(workspace_id, n) for n in names},
    )
    return {name: ids[(workspace_id, name)] for name in names}


DEPLOYMENT_ATTRS = (
    "deployment_name",
    "description",
    "labels",
    "engine_version",
    "execution_mode",
    "creator",
    "modifier",
    "created_at",
    "modified_at",
    "deployment_target",
    "has_job",
)


def current_deployments(
    conn: Connection, workspace_id: str, namespaces: Iterable[str]
) -> Iterator[tuple[tuple[str, str], int, Attrs]]:
    """((namespace, deployment_id), version id, attributes) of the namespaces' listed
    deployments as stored, one at a time."""
    query = (
        select(
            schema.deployment_versions.c.id,
            schema.namespaces.c.name,
            schema.deployments.c.deployment_id,
            *(schema.deployment_versions.c[a] for a in DEPLOYMENT_ATTRS),
        )
        .join(
            schema.deployments,
            schema.deployments.c.id == schema.deployment_versions.c.deployment_fk,
        )
        .join(schema.namespaces, schema.namespaces.c.id == schema.deployments.c.namespace_id)
        .where(
            schema.namespaces.c.workspace_id == workspace_id,
            schema.namespaces.c.name.in_(list(namespaces)),
            schema.deployment_versions.c.valid_to.is_(None),
        )
    )
    for row in conn.execute(query):
        yield (row[1], row[2]), row[0], dict(zip(DEPLOYMENT_ATTRS, row[3:], strict=True))


def apply_deployment_changes(
    conn: Connection,
    workspace_id: str,
    run_id: int,
    now: datetime,
    opened: list[tuple[tuple[str, str], Attrs]],
    closed: list[int],
) -> None:
    """Close and open deployment versions at instant `now` (a few per run: no staging)."""
    for chunk in _chunks(closed):
        conn.execute(
            update(schema.deployment_versions)
            .where(schema.deployment_versions.c.id.in_(chunk))
            .values(valid_to=now)
        )
    if not opened:
        return
    ids = ensure_deployments(conn, workspace_id, {key for key, _ in opened})
    conn.execute(
        insert(schema.deployment_versions),
        [
            {"deployment_fk": ids[key], "valid_from": now, "run_id": run_id, **attrs}
            for key, attrs in opened
        ],
    )


def set_live_statuses(engine: Engine, statuses: Iterable[str]) -> None:
    """Make `statuses` the job statuses that count as live (the live views and functions)."""
    wanted = sorted(set(statuses))
    with transaction(engine) as conn:
        stored = sorted(conn.scalars(select(schema.live_job_statuses.c.status)))
        if stored != wanted:
            conn.execute(delete(schema.live_job_statuses))
            conn.execute(insert(schema.live_job_statuses), [{"status": s} for s in wanted])


def ensure_deployments(
    conn: Connection, workspace_id: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """(namespace, deployment_id) -> deployments.id, creating what is missing."""
    ns_ids = ensure_namespaces(conn, workspace_id, {ns for ns, _ in keys})
    ids = _ensure(
        conn,
        schema.deployments,
        (schema.deployments.c.namespace_id, schema.deployments.c.deployment_id),
        {(ns_ids[ns], dep) for ns, dep in keys},
    )
    return {(ns, dep): ids[(ns_ids[ns], dep)] for ns, dep in keys}


def _ensure_tables(conn: Connection, workspace_id: str, keys: set[Key]) -> dict[Key, int]:
    """(namespace, catalog, database, table, owner) -> tables.id, creating the whole chain."""
    ns_ids = ensure_namespaces(conn, workspace_id, {k[0] for k in keys})
    catalog_ids = _ensure(
        conn,
        schema.catalogs,
        (schema.catalogs.c.namespace_id, schema.catalogs.c.name),
        {(ns_ids[k[0]], k[1]) for k in keys},
    )
    database_ids = _ensure(
        conn,
        schema.databases,
        (schema.databases.c.catalog_id, schema.databases.c.name),
        {(catalog_ids[(ns_ids[k[0]], k[1])], k[2]) for k in keys},
    )

    def db_of(k: Key) -> int:
        return database_ids[(catalog_ids[(ns_ids[k[0]], k[1])], k[2])]

    ids = _ensure(
        conn,
        schema.tables,
        (schema.tables.c.database_id, schema.tables.c.name, schema.tables.c.owner_deployment_id),
        {(db_of(k), k[3], k[4]) for k in keys},
    )
    return {k: ids[(db_of(k), k[3], k[4])] for k in keys}


def _ensure(
    conn: Connection, table: SqlTable, columns: tuple[Any, ...], keys: set[tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """Natural key -> id for an identity table, inserting the keys not there yet.

    Set-based on both databases: the keys go into a temporary table, the missing ones are
    inserted with one statement, and every ID comes back with one join.
    """
    if not keys:
        return {}
    names = tuple(c.name for c in columns)
    scratch = _scratch_table(table, names)
    _fill_scratch(conn, scratch, list(keys))
    match = and_(*(table.c[n] == scratch.c[n] for n in names))
    # The anti-join skips the keys already there in one pass. No ON CONFLICT clause (it would
    # cost a speculative insertion per row): these rows belong to one workspace, and its
    # lease keeps any other writer away. Sorted: index pages fill in order.
    missing = (
        select(*scratch.columns)
        .where(~select(table.c.id).where(match).exists())
        .order_by(*scratch.columns)
    )
    conn.execute(insert(table).from_select(names, missing))
    rows = conn.execute(select(table.c.id, *(table.c[n] for n in names)).join(scratch, match))
    return {tuple(row[1:]): row[0] for part in rows.partitions(10_000) for row in part}


@cache
def _scratch_table(table: SqlTable, names: tuple[str, ...]) -> SqlTable:
    """The temporary table that carries keys of `table` (one per table and key, so that the
    statements using it compile once)."""
    return SqlTable(
        f"scratch_{table.name}",
        MetaData(),
        *(SqlColumn(n, table.c[n].type) for n in names),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _fill_scratch(conn: Connection, scratch: SqlTable, rows: Sequence[Sequence[Any]]) -> None:
    """Make the temporary table hold exactly `rows` (values in its columns' order)."""
    empty_scratch(conn, scratch)
    insert_tuples(conn, scratch, list(scratch.columns), rows)


def empty_scratch(conn: Connection, scratch: SqlTable) -> None:
    """Make the temporary table exist and be empty: created on first use in a transaction (it
    lasts until the commit on PostgreSQL, the connection on SQLite), emptied on later uses."""
    postgres = conn.dialect.name == "postgresql"
    create = _create_if_missing(scratch, conn.dialect.name)
    empty = f"{'TRUNCATE' if postgres else 'DELETE FROM'} {scratch.name}"
    if postgres:
        conn.exec_driver_sql(f"{create}; {empty}")  # one round trip (no parameters)
        return
    conn.exec_driver_sql(create)  # SQLite runs one statement per call
    conn.exec_driver_sql(empty)


@cache
def _create_if_missing(scratch: SqlTable, dialect_name: str) -> str:
    dialect = _POSTGRES if dialect_name == "postgresql" else sqlite.dialect()
    return str(CreateTable(scratch, if_not_exists=True).compile(dialect=dialect))


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- retention --------------------------------------------------------------------------------


def prune(
    conn: Connection,
    workspace_id: str,
    now: datetime,
    payload_days: int | None,
    history_days: int | None,
) -> int:
    """Delete what the user's retention settings allow; returns the rows deleted.

    Payloads: only of deployments removed `payload_days` ago (a live deployment's payload is
    what its state is rebuilt from). History: only versions closed `history_days` ago.
    """
    deleted = 0
    namespaces = select(schema.namespaces.c.id).where(
        schema.namespaces.c.workspace_id == workspace_id
    )
    deployments = select(schema.deployments.c.id).where(
        schema.deployments.c.namespace_id.in_(namespaces)
    )
    if payload_days is not None:
        cutoff = now - timedelta(days=payload_days)
        result = conn.execute(
            delete(schema.contributions).where(
                schema.contributions.c.deployment_fk.in_(deployments),
                schema.contributions.c.removed_at < cutoff,
            )
        )
        deleted += result.rowcount
    if history_days is not None:
        cutoff = now - timedelta(days=history_days)
        for versions, owned in _history_owners(namespaces, deployments):
            result = conn.execute(delete(versions).where(owned, versions.c.valid_to < cutoff))
            deleted += result.rowcount
    return deleted


def _history_owners(namespaces: Select[Any], deployments: Select[Any]) -> list[tuple[Any, Any]]:
    """Each version table with the condition that selects the workspace's rows."""
    catalogs = select(schema.catalogs.c.id).where(schema.catalogs.c.namespace_id.in_(namespaces))
    databases = select(schema.databases.c.id).where(schema.databases.c.catalog_id.in_(catalogs))
    tables = select(schema.tables.c.id).where(schema.tables.c.database_id.in_(databases))
    columns = select(schema.columns.c.id).where(schema.columns.c.table_id.in_(tables))
    table_edges = select(schema.table_edges.c.id).where(
        schema.table_edges.c.namespace_id.in_(namespaces)
    )
    column_edges = select(schema.column_edges.c.id).where(
        schema.column_edges.c.namespace_id.in_(namespaces)
    )
    return [
        (schema.table_versions, schema.table_versions.c.table_fk.in_(tables)),
        (schema.column_versions, schema.column_versions.c.column_fk.in_(columns)),
        (schema.job_versions, schema.job_versions.c.deployment_fk.in_(deployments)),
        (schema.table_edge_versions, schema.table_edge_versions.c.edge_fk.in_(table_edges)),
        (schema.column_edge_versions, schema.column_edge_versions.c.edge_fk.in_(column_edges)),
    ]


# -- redaction of rows written before ---------------------------------------------------------


@dataclass(frozen=True)
class _Redactable:
    """A table whose JSON columns hold connector options, properties or payloads."""

    name: str
    key: str
    columns: dict[str, TypeEngine[Any]]
    # A column the sync rewrites with the JSON: an update applies only if it is unchanged, so a
    # sync committing meanwhile is never overwritten with an older value.
    guard: str | None = None


# Named here rather than taken from the schema so that migration 0006 keeps working whatever
# later migrations add to these tables.
_REDACTABLE = (
    _Redactable(
        "table_versions", "id", {"with_options": schema.JsonObject, "properties": schema.JsonObject}
    ),
    _Redactable("job_versions", "id", {"properties": schema.JsonObject}),
    _Redactable("contributions", "deployment_fk", {"payload": JSON()}, guard="content_hash"),
)


def scrub_secrets(conn: Connection, redactor: Redactor) -> dict[str, int]:
    """Redact secrets in rows stored before redaction existed or before a key was added to it.

    Covers every version (history included) and every stored payload (whose job record is also
    cut to what this release keeps: no configuration); returns the rows changed per table.
    Payloads changed here no longer match their content hash, so the next sync of each
    rewrites its contribution once (its rows do not change).
    """
    return {spec.name: _scrub_table(conn, spec, redactor) for spec in _REDACTABLE}


def _scrub_table(conn: Connection, spec: _Redactable, redactor: Redactor) -> int:
    names = [spec.key, *([spec.guard] if spec.guard else [])]
    table = sql_table(
        spec.name,
        *(sql_column(name) for name in names),
        *(sql_column(name, type_) for name, type_ in spec.columns.items()),
    )
    key = table.c[spec.key]
    condition = key == bindparam("_key")
    if spec.guard:
        condition = condition & (table.c[spec.guard] == bindparam("_guard"))
    update_row = (
        update(table)
        .where(condition)
        .values({name: bindparam(name, type_=type_) for name, type_ in spec.columns.items()})
    )
    changed, last = 0, None
    while True:
        query = select(table).order_by(key).limit(CHUNK)
        rows = conn.execute(query if last is None else query.where(key > last)).mappings().all()
        if not rows:
            return changed
        last = rows[-1][spec.key]
        updates = []
        for row in rows:
            values = {name: row[name] for name in spec.columns}
            # A list, not a generator: every column is redacted, not just up to the first.
            if any([_redact(name, values, redactor) for name in spec.columns]):
                guard = {"_guard": row[spec.guard]} if spec.guard else {}
                updates.append({"_key": row[spec.key], **guard, **values})
        if updates:
            conn.execute(update_row, updates)
            changed += len(updates)


def _clean_payload(payload: dict[str, Any], redactor: Redactor) -> bool:
    """A stored payload (changed in place) as this release stores it: its lineage and its
    deployment's labels redacted, its job without configuration; whether anything changed."""
    changed = redactor.redact_lineage(payload.get("lineage"))
    job = payload.get("job")
    if isinstance(job, dict) and (trimmed := Job.trimmed(job)) != job:
        payload["job"], changed = trimmed, True
    deployment = payload.get("deployment")
    labels = deployment.get("labels") if isinstance(deployment, dict) else None
    if isinstance(deployment, dict) and isinstance(labels, dict):
        deployment["labels"] = redactor.options(labels)
        changed |= deployment["labels"] is not labels
    return changed


def _redact(column: str, values: dict[str, Any], redactor: Redactor) -> bool:
    """Redact `values[column]` (a row just loaded, so changed in place); whether it changed."""
    value = values[column]
    if not isinstance(value, dict):
        return False
    if column == "payload":
        return _clean_payload(value, redactor)
    values[column] = redactor.options(value)
    return values[column] is not value
