"""The whole-state diff, set-based: a run that changes much of a workspace stages every
contribution's rows in temporary tables of its transaction, and the database merges them and
diffs them with the stored current state. Python holds one batch of rows at a time.

Staged rows carry natural keys (names) and the rank of their contribution (fetch instant, then
deployment ID), so staging writes nothing but temporary tables: on SQLite it takes no lock on
the database file, and other workspaces' syncs go on while this one fetches. At the end
(`Staging.apply`), in the run's transaction:

1. the entities the staged rows name are created where missing (namespaces, catalogs,
   databases, tables, columns, deployments, edges), unless every row was staged by
   `add(..., creating_in=...)`, which created them batch by batch (PostgreSQL's early stager,
   while the fetch goes on);
2. per kind and entity the staged row of the highest rank wins (`history.merge`'s rule);
3. every winner without an equal current version gets a new version, and every current version
   of the workspace without an equal winner is closed (`history.diff`'s rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Column as SqlColumn
from sqlalchemy import (
    Connection,
    MetaData,
    Select,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import Table as SqlTable
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import JSON, String

from exporter import schema, store
from exporter.changes_sql import SQLITE_JSON_EQUAL
from exporter.history import Ranked
from exporter.normalize import KINDS
from exporter.sqltypes import UtcDateTime

_TABLE_KEY = ("namespace", "catalog", "database", "table_name", "owner")
_EDGE_KEY = (
    "namespace",
    "source_name",
    "source_owner",
    "destination_name",
    "destination_owner",
    "job_id",
)
# kind -> the names of its natural key's parts, in `normalize`'s order
KEY_NAMES: dict[str, tuple[str, ...]] = {
    "tables": _TABLE_KEY,
    "columns": (*_TABLE_KEY, "column_name"),
    "jobs": ("namespace", "deployment_id"),
    "table_edges": _EDGE_KEY,
    "column_edges": _EDGE_KEY,
}


def _key_type(name: str) -> Any:
    if name in ("owner", "source_owner", "destination_owner", "deployment_id", "job_id"):
        return String(128)
    return schema.tables.c.name.type if name != "namespace" else schema.namespaces.c.name.type


def _staged_table(kind: str, prefix: str = "staged") -> SqlTable:
    """A temporary table of one kind's staged rows: rank, natural key, attributes."""
    versions = store.VERSIONS[kind][0]
    return SqlTable(
        f"{prefix}_{kind}",
        MetaData(),
        SqlColumn("ranked_at", UtcDateTime()),
        SqlColumn("ranked_by", String(128)),
        *(SqlColumn(name, _key_type(name)) for name in KEY_NAMES[kind]),
        *(SqlColumn(a, versions.c[a].type) for a in store.ATTRS[kind]),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _winners_table(kind: str) -> SqlTable:
    """A temporary table of one kind's merged rows: entity ID (unique), attributes."""
    versions = store.VERSIONS[kind][0]
    return SqlTable(
        f"winners_{kind}",
        MetaData(),
        SqlColumn("entity_id", versions.c[store.VERSIONS[kind][1]].type, primary_key=True),
        *(SqlColumn(a, versions.c[a].type) for a in store.ATTRS[kind]),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


_STAGED = {kind: _staged_table(kind) for kind in KINDS}
_BATCH = {kind: _staged_table(kind, "batch") for kind in KINDS}
_WINNERS = {kind: _winners_table(kind) for kind in KINDS}

Tables = dict[str, SqlTable]  # kind -> a temporary table of its staged rows


class Staging:
    """A run's staged rows, in temporary tables of the connection that will commit the run."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._names: set[str] = set()  # namespaces named by staged rows
        self._entities_missing = False  # whether rows were staged without their entities
        for table in (*_STAGED.values(), *_WINNERS.values()):
            store.empty_scratch(conn, table)

    def add(self, contributions: Iterable[Ranked], creating_in: str | None = None) -> None:
        """Stage the rows of these contributions. With `creating_in` (their workspace), also
        create now every entity they name that does not exist yet: while a fetch goes on, the
        database does it a batch at a time instead of all of it after the last response."""
        names: set[str] = set()
        rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in KINDS}
        values_of = {kind: _values(store.ATTRS[kind]) for kind in KINDS}
        for ranked in contributions:
            rank = (ranked.fetched_at, ranked.deployment_id)
            for kind in KINDS:
                attrs = values_of[kind]
                rows[kind].extend((*rank, *key, *attrs(a)) for key, a in ranked.state[kind].items())
                names.update(key[0] for key in ranked.state[kind])
        self._names |= names
        if creating_in is None:
            self._entities_missing = True
            _insert_rows(self._conn, _STAGED, rows)
        else:
            self._stage_creating(rows, names, creating_in)

    def _stage_creating(
        self, rows: dict[str, list[tuple[Any, ...]]], names: set[str], workspace_id: str
    ) -> None:
        """Stage a batch's rows through their own tables, creating the entities they name."""
        conn = self._conn
        for table in _BATCH.values():
            store.empty_scratch(conn, table)
        _insert_rows(conn, _BATCH, rows)
        store.ensure_namespaces(conn, workspace_id, names)
        # A batch is small and the entity tables grow with every batch: each staged row looks
        # its parents and itself up through their unique indexes (the cost of a batch stays
        # that of its rows), in the order the joins are written.
        with store.through_indexes(conn), store.planner_settings(conn, join_collapse_limit="1"):
            _create_entities(conn, workspace_id, _BATCH, by_lookup=True)
        for kind, batch in _BATCH.items():
            columns = [c.name for c in batch.columns]
            conn.execute(insert(_STAGED[kind]).from_select(columns, select(batch)))

    def apply(self, workspace_id: str, run_id: int, now: datetime) -> dict[str, tuple[int, int]]:
        """Diff the staged contributions, as the whole wanted state, with the workspace's
        current versions and write the difference at `now`; returns kind -> (opened, closed)."""
        conn = self._conn
        store.ensure_namespaces(conn, workspace_id, self._names)
        # The planner's estimates mean nothing here: temporary tables have no statistics, and
        # the entity tables' predate this transaction (a first sync's say "empty"). Every
        # statement below reads whole tables and lists its joins in the one sensible order
        # (staged rows, then namespace, catalog, database, table, column): kept in that order
        # and hashed, each costs the same whatever the planner believes. (Left to choose, it
        # joined columns to staged rows by column name alone: millions of rows at 1,000
        # deployments; or looped over a table it believed empty, once per staged row.)
        with store.planner_settings(conn, join_collapse_limit="1", enable_nestloop="off"):
            if self._entities_missing:
                _create_entities(conn, workspace_id, _STAGED)
            for kind in KINDS:
                _merge(conn, kind, workspace_id)
            changes = {kind: _diff(conn, kind, workspace_id, run_id, now) for kind in KINDS}
        self.discard()
        return changes

    def discard(self) -> None:
        """Drop the temporary tables on SQLite, which keeps them as long as the connection (and
        the pool keeps that); PostgreSQL drops them when the transaction ends."""
        if self._conn.dialect.name == "sqlite":
            for table in (*_STAGED.values(), *_BATCH.values(), *_WINNERS.values()):
                self._conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")


def _insert_rows(conn: Connection, tables: Tables, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    for kind, values in rows.items():
        if values:
            table = tables[kind]
            store.insert_tuples(conn, table, list(table.columns), values)


def _values(names: Sequence[str]) -> Any:
    """attributes -> their values in `names`' order, as a tuple."""
    if not names:
        return lambda attrs: ()
    if len(names) == 1:
        return lambda attrs: (attrs[names[0]],)
    return itemgetter(*names)


def _named(staged: SqlTable, workspace_id: str, *columns: Any) -> Select[Any]:
    """`columns` over the staged rows joined to the namespaces they name."""
    in_ns = and_(
        schema.namespaces.c.workspace_id == workspace_id,
        schema.namespaces.c.name == staged.c.namespace,
    )
    return select(*columns).select_from(staged).join(schema.namespaces, in_ns)


def _with_catalog(query: Select[Any], staged: SqlTable) -> Select[Any]:
    """`query` (from `_named`) joined on to the catalog its rows name."""
    same = and_(
        schema.catalogs.c.namespace_id == schema.namespaces.c.id,
        schema.catalogs.c.name == staged.c.catalog,
    )
    return query.join(schema.catalogs, same)


def _with_database(query: Select[Any], staged: SqlTable) -> Select[Any]:
    """`query` (from `_named`) joined on to the catalog and database its rows name."""
    same = and_(
        schema.databases.c.catalog_id == schema.catalogs.c.id,
        schema.databases.c.name == staged.c.database,
    )
    return _with_catalog(query, staged).join(schema.databases, same)


def _with_table(query: Select[Any], staged: SqlTable) -> Select[Any]:
    """`query` (from `_named`) joined on down to the table its rows name."""
    return _with_database(query, staged).join(
        schema.tables,
        and_(
            schema.tables.c.database_id == schema.databases.c.id,
            schema.tables.c.name == staged.c.table_name,
            schema.tables.c.owner_deployment_id == staged.c.owner,
        ),
    )


def _with_deployment(query: Select[Any], staged: SqlTable) -> Select[Any]:
    return query.join(
        schema.deployments,
        and_(
            schema.deployments.c.namespace_id == schema.namespaces.c.id,
            schema.deployments.c.deployment_id == staged.c.deployment_id,
        ),
    )


def _same_edge(staged: SqlTable, edge: SqlTable) -> list[Any]:
    """Conditions: the edge is the one a staged row names (in the namespace joined)."""
    same_ends = [edge.c[name] == staged.c[name] for name in _EDGE_KEY[1:]]
    return [edge.c.namespace_id == schema.namespaces.c.id, *same_ends]


def _with_edge(query: Select[Any], staged: SqlTable, edge: SqlTable) -> Select[Any]:
    return query.join(edge, and_(*_same_edge(staged, edge)))


def _insert_missing(conn: Connection, table: SqlTable, source: Select[Any], *match: Any) -> None:
    """Insert into `table` the distinct rows of `source` (in its columns' order, without the
    ID) that match no existing row. No ON CONFLICT clause: the workspace's lease keeps any
    other writer of these rows away."""
    names = [c.name for c in table.columns if c.name != "id"]
    missing = source.where(~select(table.c.id).where(*match).exists()).distinct()
    conn.execute(insert(table).from_select(names, missing))


def _create_entities(
    conn: Connection, workspace_id: str, staged_in: Tables, by_lookup: bool = False
) -> None:
    """Create every catalog, database, table, column, deployment and edge the staged rows name
    that does not exist yet (a column's table is always staged too: `normalize` reports both).
    `by_lookup` (PostgreSQL): each column row finds its table and itself by their whole keys
    (`_insert_missing_columns_by_lookup`)."""
    tables, columns, jobs = staged_in["tables"], staged_in["columns"], staged_in["jobs"]
    _insert_missing(
        conn,
        schema.catalogs,
        _named(tables, workspace_id, schema.namespaces.c.id, tables.c.catalog),
        schema.catalogs.c.namespace_id == schema.namespaces.c.id,
        schema.catalogs.c.name == tables.c.catalog,
    )
    _insert_missing(
        conn,
        schema.databases,
        _with_catalog(
            _named(tables, workspace_id, schema.catalogs.c.id, tables.c.database), tables
        ),
        schema.databases.c.catalog_id == schema.catalogs.c.id,
        schema.databases.c.name == tables.c.database,
    )
    _insert_missing(
        conn,
        schema.tables,
        _with_database(
            _named(
                tables, workspace_id, schema.databases.c.id, tables.c.table_name, tables.c.owner
            ),
            tables,
        ),
        schema.tables.c.database_id == schema.databases.c.id,
        schema.tables.c.name == tables.c.table_name,
        schema.tables.c.owner_deployment_id == tables.c.owner,
    )
    if by_lookup:
        _insert_missing_columns_by_lookup(conn, workspace_id, columns)
    else:
        _insert_missing(
            conn,
            schema.columns,
            _with_table(
                _named(columns, workspace_id, schema.tables.c.id, columns.c.column_name), columns
            ),
            schema.columns.c.table_id == schema.tables.c.id,
            schema.columns.c.name == columns.c.column_name,
        )
    _insert_missing(
        conn,
        schema.deployments,
        _named(jobs, workspace_id, schema.namespaces.c.id, jobs.c.deployment_id),
        schema.deployments.c.namespace_id == schema.namespaces.c.id,
        schema.deployments.c.deployment_id == jobs.c.deployment_id,
    )
    for kind, edge in (("table_edges", schema.table_edges), ("column_edges", schema.column_edges)):
        staged = staged_in[kind]
        ends = [staged.c[name] for name in _EDGE_KEY[1:]]
        _insert_missing(
            conn,
            edge,
            _named(staged, workspace_id, schema.namespaces.c.id, *ends),
            *_same_edge(staged, edge),
        )


def _insert_missing_columns_by_lookup(
    conn: Connection, workspace_id: str, staged: SqlTable
) -> None:
    """`_insert_missing` of the staged rows' columns, each row looking its table and itself up
    by their whole unique keys. Joined plainly, the planner (trusting statistics from before the
    run: "empty") probed tables by database alone and columns by table alone, and filtered the
    rest: at 1,000 deployments 320,000 rows per batch of 100, a number that grows with the
    workspace. A LATERAL subquery with a LIMIT, and an EXISTS with an OFFSET, are planned on
    their own, where the whole key is the index condition."""
    table = (
        select(schema.tables.c.id)
        .where(
            schema.tables.c.database_id == schema.databases.c.id,
            schema.tables.c.name == staged.c.table_name,
            schema.tables.c.owner_deployment_id == staged.c.owner,
        )
        .limit(1)
        .lateral()
    )
    rows = _with_database(_named(staged, workspace_id, table.c.id, staged.c.column_name), staged)
    rows = rows.join(table, literal(True))
    column = select(schema.columns.c.id).where(
        schema.columns.c.table_id == table.c.id, schema.columns.c.name == staged.c.column_name
    )
    missing = rows.where(~column.offset(0).exists()).distinct()
    conn.execute(insert(schema.columns).from_select(["table_id", "name"], missing))


def _entity(kind: str, workspace_id: str) -> tuple[Select[Any], Any]:
    """A select from one kind's staged rows joined to their entities, and the entity's ID."""
    staged = _STAGED[kind]
    if kind == "tables":
        return _with_table(
            _named(staged, workspace_id, schema.tables.c.id), staged
        ), schema.tables.c.id
    if kind == "columns":
        query = _with_table(_named(staged, workspace_id, schema.columns.c.id), staged).join(
            schema.columns,
            and_(
                schema.columns.c.table_id == schema.tables.c.id,
                schema.columns.c.name == staged.c.column_name,
            ),
        )
        return query, schema.columns.c.id
    if kind == "jobs":
        return _with_deployment(
            _named(staged, workspace_id, schema.deployments.c.id), staged
        ), schema.deployments.c.id
    edge = schema.table_edges if kind == "table_edges" else schema.column_edges
    return _with_edge(_named(staged, workspace_id, edge.c.id), staged, edge), edge.c.id


def _merge(conn: Connection, kind: str, workspace_id: str) -> None:
    """The winners of one kind: per entity, the staged row of the highest rank."""
    staged, winners = _STAGED[kind], _WINNERS[kind]
    attrs = store.ATTRS[kind]
    query, entity_id = _entity(kind, workspace_id)
    if not attrs:  # an edge: nothing to choose between its rows (hashed, not sorted)
        conn.execute(insert(winners).from_select(["entity_id"], query.distinct()))
        return
    place = (
        func.row_number()
        .over(
            partition_by=entity_id,
            order_by=(staged.c.ranked_at.desc(), staged.c.ranked_by.desc()),
        )
        .label("place")
    )
    ranked = query.add_columns(*(staged.c[a] for a in attrs), place).subquery()
    first = select(*(ranked.c[c.name] for c in (entity_id, *(staged.c[a] for a in attrs))))
    first = first.where(ranked.c.place == 1)
    conn.execute(insert(winners).from_select(["entity_id", *attrs], first))


def _scope(kind: str, workspace_id: str) -> Select[Any]:
    """The IDs of the workspace's entities of one kind."""
    in_workspace = schema.namespaces.c.workspace_id == workspace_id
    if kind in ("tables", "columns"):
        query = (
            select(schema.tables.c.id)
            if kind == "tables"
            else select(schema.columns.c.id).join(schema.tables)
        )
        return (
            query.join(schema.databases, schema.databases.c.id == schema.tables.c.database_id)
            .join(schema.catalogs, schema.catalogs.c.id == schema.databases.c.catalog_id)
            .join(schema.namespaces, schema.namespaces.c.id == schema.catalogs.c.namespace_id)
            .where(in_workspace)
        )
    if kind == "jobs":
        return select(schema.deployments.c.id).join(schema.namespaces).where(in_workspace)
    edge = schema.table_edges if kind == "table_edges" else schema.column_edges
    return select(edge.c.id).join(schema.namespaces).where(in_workspace)


def _same(conn: Connection, kind: str, version: SqlTable, winners: SqlTable) -> list[Any]:
    """Conditions: the version has the winner's attributes (NULL equals NULL)."""
    sqlite = conn.dialect.name == "sqlite"
    same: list[ColumnElement[bool]] = []
    for name in store.ATTRS[kind]:
        ours, theirs = version.c[name], winners.c[name]
        equal = ours.is_not_distinct_from(theirs)
        if sqlite and isinstance(ours.type, JSON):
            equal = or_(equal, getattr(func, SQLITE_JSON_EQUAL)(ours, theirs) == 1)
        same.append(equal)
    return same


def _diff(
    conn: Connection, kind: str, workspace_id: str, run_id: int, now: datetime
) -> tuple[int, int]:
    """Open a version for each winner without an equal current one, then close every current
    version of the workspace without an equal winner; returns (opened, closed)."""
    versions, entity_name = store.VERSIONS[kind]
    winners = _WINNERS[kind]
    attrs = store.ATTRS[kind]
    entity = versions.c[entity_name]
    current_equal = (
        select(versions.c.id)
        .where(entity == winners.c.entity_id, versions.c.valid_to.is_(None))
        .where(*_same(conn, kind, versions, winners))
    )
    opened = conn.execute(
        insert(versions).from_select(
            [entity_name, "valid_from", "run_id", *attrs],
            select(
                winners.c.entity_id,
                literal(now, versions.c.valid_from.type),
                literal(run_id, versions.c.run_id.type),
                *(winners.c[a] for a in attrs),
            ).where(~exists(current_equal)),
        ),
        execution_options={"preserve_rowcount": True},  # (an INSERT's count is not kept else)
    ).rowcount
    winner_equal = (
        select(winners.c.entity_id)
        .where(winners.c.entity_id == entity)
        .where(*_same(conn, kind, versions, winners))
    )
    closed = conn.execute(
        update(versions)
        .where(
            versions.c.valid_to.is_(None),
            versions.c.run_id != run_id,
            entity.in_(_scope(kind, workspace_id)),
            ~exists(winner_equal),
        )
        .values(valid_to=now)
    ).rowcount
    return opened, closed
