"""The normalized schema, as SQLAlchemy Core tables (`metadata`). Alembic creates it.

Two kinds of table:
- identity tables (workspaces, namespaces, catalogs, databases, tables, columns, deployments,
  table_edges, column_edges): one row per thing that was ever seen, never updated or deleted;
- version tables (`*_versions`): one row per period during which a thing existed with the same
  attributes, `valid_from` <= t < `valid_to` (NULL = current). A change closes a version and
  opens a new one; a disappearance only closes.
Timestamps are UTC: `timestamptz` on PostgreSQL, ISO text on SQLite.

Core tables, not ORM classes: nothing here maps rows to objects (every read and write is a
Core statement), and the ORM's import and mapper set-up cost every command about 0.1 s at
start-up. Code refers to a table through this module: `schema.sync_runs.c.status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from exporter.sqltypes import TIME_INDEX_GUARD, UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

JsonObject = JSON().with_variant(JSONB(), "postgresql")
# Names and the API's table and column IDs: unbounded text; what is stored is bounded by
# `storable` (the same limits on both databases). SQLite never enforces a declared length, so
# its files keep the type they were created with and need no rebuild.
NameText = Text().with_variant(String(255), "sqlite")
UidText = Text().with_variant(String(128), "sqlite")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def _key() -> Column[Any]:
    """An integer surrogate key, `id` (autoincrementing on both databases)."""
    return Column("id", Id, primary_key=True)


def _required(name: str, type_: Any, *args: Any, **kwargs: Any) -> Column[Any]:
    """A NOT NULL column (Core's columns are nullable unless told)."""
    return Column(name, type_, *args, nullable=False, **kwargs)


def _owner(name: str) -> Column[Any]:
    """'' for catalog tables; the declaring deployment's ID for temporary tables."""
    return _required(name, String(128), server_default=text("''"))


# -- identity ---------------------------------------------------------------------------------

workspaces = Table("workspaces", metadata, Column("id", String(128), primary_key=True))

namespaces = Table(
    "namespaces",
    metadata,
    _key(),
    _required("workspace_id", String(128), ForeignKey("workspaces.id")),
    _required("name", String(255)),
    UniqueConstraint("workspace_id", "name"),
)

catalogs = Table(
    "catalogs",
    metadata,
    _key(),
    _required("namespace_id", Id, ForeignKey("namespaces.id")),
    _required("name", NameText),
    UniqueConstraint("namespace_id", "name"),
)

databases = Table(
    "databases",
    metadata,
    _key(),
    _required("catalog_id", Id, ForeignKey("catalogs.id")),
    _required("name", NameText),
    UniqueConstraint("catalog_id", "name"),
)

# A table; a temporary table is owned by the deployment that declares it.
tables = Table(
    "tables",
    metadata,
    _key(),
    _required("database_id", Id, ForeignKey("databases.id")),
    _required("name", NameText),
    _owner("owner_deployment_id"),
    UniqueConstraint("database_id", "name", "owner_deployment_id"),
)

columns = Table(
    "columns",
    metadata,
    _key(),
    _required("table_id", Id, ForeignKey("tables.id")),
    _required("name", NameText),
    UniqueConstraint("table_id", "name"),
)

# A Flink deployment; its job instances are versions (job_versions.job_id).
deployments = Table(
    "deployments",
    metadata,
    _key(),
    _required("namespace_id", Id, ForeignKey("namespaces.id")),
    _required("deployment_id", String(128)),
    UniqueConstraint("namespace_id", "deployment_id"),
)


def _edge_table(name: str) -> Table:
    """source -> destination carried by a job; `*_owner` tells temporary tables apart."""
    return Table(
        name,
        metadata,
        _key(),
        _required("namespace_id", Id, ForeignKey("namespaces.id")),
        _required("source_name", Text),
        _owner("source_owner"),
        _required("destination_name", Text),
        _owner("destination_owner"),
        _required("job_id", String(128)),
        UniqueConstraint(
            "namespace_id",
            "source_name",
            "source_owner",
            "destination_name",
            "destination_owner",
            "job_id",
        ),
        # Traversal looks an endpoint up by name first (any namespace), then narrows.
        Index(f"ix_{name}_destination", "destination_name", "destination_owner", "namespace_id"),
        Index(f"ix_{name}_source", "source_name", "source_owner", "namespace_id"),
    )


# Names are `catalog.database.table`, or the raw endpoint.
table_edges = _edge_table("table_edges")
# Names are `catalog.database.table.column`, or the raw endpoint.
column_edges = _edge_table("column_edges")

# -- runs and raw payloads --------------------------------------------------------------------


def _count(name: str) -> Column[Any]:
    """A run's tally, 0 until the run finishes."""
    return _required(name, Integer, server_default=text("0"))


sync_runs = Table(
    "sync_runs",
    metadata,
    _key(),
    _required("workspace_id", String(128), ForeignKey("workspaces.id")),
    _required("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    _required("status", String(16)),  # running, succeeded, partial, failed
    _count("deployments_total"),
    _count("jobs_total"),
    _count("jobs_failed"),
    _count("rows_added"),
    _count("rows_closed"),
    Column("error_summary", Text),
    # The version of the rules that turned payloads into rows (normalize.ROWS_VERSION).
    Column("rows_version", Integer),
    Index("ix_sync_runs_workspace_started", "workspace_id", "started_at"),
    Index("ix_sync_runs_started_at", "started_at"),
)

# How many rows of a run's change feed there are of one namespace, kind and change: what
# `lineage_change_counts` answers window questions from (migration 0010).
run_change_counts = Table(
    "run_change_counts",
    metadata,
    Column("run_id", Id, ForeignKey("sync_runs.id"), primary_key=True),
    Column("namespace", Text, primary_key=True),
    Column("entity_kind", String(16), primary_key=True),
    Column("change", String(8), primary_key=True),
    _required("changes", Integer),
)

# A deployment's last successful fetch: the raw payload the current state is built from.
contributions = Table(
    "contributions",
    metadata,
    Column("deployment_fk", Id, ForeignKey("deployments.id"), primary_key=True),
    _required("job_id", String(128)),
    _required("run_id", Id, ForeignKey("sync_runs.id")),
    _required("fetched_at", UtcDateTime),
    _required("content_hash", String(64)),
    # `json`, not `jsonb`, on PostgreSQL: written and read whole, never queried inside.
    _required("payload", JSON),
    # Set when the deployment left its namespace's listing; the payload stays for audit.
    Column("removed_at", UtcDateTime),
)

# A job status that counts as live (`[lineage] live_statuses`; RUNNING by default).
live_job_statuses = Table(
    "live_job_statuses", metadata, Column("status", String(64), primary_key=True)
)

# A namespace listing, deployment or job that failed in a run, and why (see failures).
job_failures = Table(
    "job_failures",
    metadata,
    _key(),
    _required("run_id", Id, ForeignKey("sync_runs.id")),
    _required("namespace", Text),
    # Text, unbounded: an ID too long to store elsewhere is itself a failure to record.
    Column("deployment_id", Text),
    Column("deployment_name", Text),
    Column("job_id", Text),
    _required("stage", String(32)),
    _required("error", Text),
    _required("failed_at", UtcDateTime),
    Index("ix_job_failures_run_id", "run_id"),
)

# -- versions ---------------------------------------------------------------------------------


ONLY_ON = "only_on"  # a schema item's `info` key: the one dialect that has it


def _sqlite_only(constraint: ForeignKeyConstraint) -> ForeignKeyConstraint:
    """A foreign key SQLite enforces and PostgreSQL does not have (migration 0012).

    On PostgreSQL a foreign key checks each inserted row with a query and a row lock: an
    initial sync of 1,000 deployments writes 125,000 column and column edge versions, and
    their two foreign keys tripled the cost of inserting them (0.5 s -> 1.6 s per 60,000 rows).
    Nothing deletes an entity or a run, and a sync writes versions by joining the entities
    it has just created, in its own run, so neither key can dangle; tests check that after
    every kind of run. SQLite's checks are lookups in its own process (0.04 s per 60,000).
    """
    constraint.info[ONLY_ON] = "sqlite"
    return constraint.ddl_if(dialect="sqlite")


def created_on(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's `include_object` for a database of `dialect`: what the schema creates there
    (autogenerate and the schema-agrees-with-migrations test compare only that)."""

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only_on = getattr(item, "info", {}).get(ONLY_ON)
        return only_on is None or only_on == dialect

    return include


def _version_indexes(table: str, entity: str) -> tuple[Index, ...]:
    """An entity's versions in time order, its current version, and (migration 0009) the
    versions that opened or closed in a window of time, whichever entity they belong to, with
    the entity (the change feed then finds a version's predecessor in the index alone)."""
    return (
        Index(f"ix_{table}_{entity}_from", entity, "valid_from"),
        Index(
            f"ix_{table}_current",
            entity,
            postgresql_where=text("valid_to IS NULL"),
            sqlite_where=text("valid_to IS NULL"),
        ),
        Index(f"ix_{table}_valid_from", "valid_from", entity, sqlite_where=text(TIME_INDEX_GUARD)),
        Index(
            f"ix_{table}_valid_to",
            "valid_to",
            entity,
            postgresql_where=text("valid_to IS NOT NULL"),
            sqlite_where=text(f"valid_to IS NOT NULL AND {TIME_INDEX_GUARD}"),
        ),
    )


def _version_table(name: str, entity: str, entities: str, *attributes: Any) -> Table:
    """A version table: its period, the run that opened it, its entity (`entity` -> the
    `entities` table) and the attributes; keys to the entity and the run (`_sqlite_only`), and
    its indexes."""
    return Table(
        name,
        metadata,
        _required(entity, Id),
        *attributes,
        _key(),  # (in this order since the first release: entity and attributes, then period)
        _required("valid_from", UtcDateTime),
        Column("valid_to", UtcDateTime),
        _required("run_id", Id),  # the run that opened it
        _sqlite_only(ForeignKeyConstraint([entity], [f"{entities}.id"])),
        _sqlite_only(ForeignKeyConstraint(["run_id"], ["sync_runs.id"])),
        *_version_indexes(name, entity),
    )


table_versions = _version_table(
    "table_versions",
    "table_fk",
    "tables",
    Column("node_id", Text),  # the API's ID of the table's node
    Column("table_uid", UidText),  # the API's table ID
    Column("connector", UidText),
    _required("is_temporary", Boolean),
    _required("with_options", JsonObject),
    _required("properties", JsonObject),
)

column_versions = _version_table(
    "column_versions",
    "column_fk",
    "columns",
    Column("column_uid", UidText),  # the API's column ID
    Column("column_type", Text),
    Column("column_native_type", Text),
    Column("nullable", Boolean),
    Column("description", Text),
    Column("column_created_at", UtcDateTime),
    Column("column_modified_at", UtcDateTime),
    Column("column_creator", Text),
    Column("column_modifier", Text),
)

job_versions = _version_table(
    "job_versions",
    "deployment_fk",
    "deployments",
    _required("job_id", String(128)),
    Column("deployment_name", Text),
    _required("properties", JsonObject),
    # What ListJobs and ListDeployments say of the job and its deployment (normalize).
    Column("job_status", Text),
    Column("job_started_at", UtcDateTime),
    Column("job_ended_at", UtcDateTime),
    Column("job_created_at", UtcDateTime),
    Column("engine_version", Text),
    Column("execution_mode", Text),
    Column("job_creator", Text),
    Column("deployment_description", Text),
    Column("deployment_labels", JsonObject),
    Column("deployment_creator", Text),
    Column("deployment_modifier", Text),
    Column("deployment_created_at", UtcDateTime),
    Column("deployment_modified_at", UtcDateTime),
    Column("deployment_target", Text),
    Index("ix_job_versions_job_id", "job_id"),  # the job carrying an edge, by its ID
)

table_edge_versions = _version_table("table_edge_versions", "edge_fk", "table_edges")
column_edge_versions = _version_table("column_edge_versions", "edge_fk", "column_edges")

# A listed deployment's attributes, with or without a job (ListDeployments).
deployment_versions = _version_table(
    "deployment_versions",
    "deployment_fk",
    "deployments",
    Column("deployment_name", Text),
    Column("description", Text),
    Column("labels", JsonObject),
    Column("engine_version", Text),
    Column("execution_mode", Text),
    Column("creator", Text),
    Column("modifier", Text),
    Column("created_at", UtcDateTime),
    Column("modified_at", UtcDateTime),
    Column("deployment_target", Text),
    _required("has_job", Boolean),
)
