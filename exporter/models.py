"""The normalized schema (SQLAlchemy 2 typed declarative models). Alembic creates it.

Two kinds of table:
- identity tables (workspaces, namespaces, catalogs, databases, tables, columns, deployments,
  table_edges, column_edges): one row per thing that was ever seen, never updated or deleted;
- version tables (`*_versions`): one row per period during which a thing existed with the same
  attributes, `valid_from` <= t < `valid_to` (NULL = current). A change closes a version and
  opens a new one; a disappearance only closes.
Timestamps are UTC: `timestamptz` on PostgreSQL, ISO text on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from exporter.sqltypes import TIME_INDEX_GUARD, UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


JsonObject = JSON().with_variant(JSONB(), "postgresql")
# Names and the API's table and column IDs: unbounded text; what is stored is bounded by
# `storable` (the same limits on both databases). SQLite never enforces a declared length, so
# its files keep the type they were created with and need no rebuild.
NameText = Text().with_variant(String(255), "sqlite")
UidText = Text().with_variant(String(128), "sqlite")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- identity ---------------------------------------------------------------------------------


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)


class Namespace(Base):
    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(255))


class Catalog(Base):
    __tablename__ = "catalogs"
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"))
    name: Mapped[str] = mapped_column(NameText)


class Database(Base):
    __tablename__ = "databases"
    __table_args__ = (UniqueConstraint("catalog_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id"))
    name: Mapped[str] = mapped_column(NameText)


class Table(Base):
    """A table; a temporary table is owned by the deployment that declares it."""

    __tablename__ = "tables"
    __table_args__ = (UniqueConstraint("database_id", "name", "owner_deployment_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id"))
    name: Mapped[str] = mapped_column(NameText)
    # '' for catalog tables; the declaring deployment's ID for temporary tables.
    owner_deployment_id: Mapped[str] = mapped_column(String(128), server_default=text("''"))


class Column(Base):
    __tablename__ = "columns"
    __table_args__ = (UniqueConstraint("table_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("tables.id"))
    name: Mapped[str] = mapped_column(NameText)


class Deployment(Base):
    """A Flink deployment; its job instances are versions (JobVersion.job_id)."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("namespace_id", "deployment_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"))
    deployment_id: Mapped[str] = mapped_column(String(128))


def _edge_table_args(table: str) -> tuple[UniqueConstraint | Index, ...]:
    return (
        UniqueConstraint(
            "namespace_id",
            "source_name",
            "source_owner",
            "destination_name",
            "destination_owner",
            "job_id",
        ),
        # Traversal looks an endpoint up by name first (any namespace), then narrows.
        Index(f"ix_{table}_destination", "destination_name", "destination_owner", "namespace_id"),
        Index(f"ix_{table}_source", "source_name", "source_owner", "namespace_id"),
    )


class _Edge:
    """source -> destination carried by a job; `*_owner` tells temporary tables apart."""

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"))
    source_name: Mapped[str] = mapped_column(Text)
    source_owner: Mapped[str] = mapped_column(String(128), server_default=text("''"))
    destination_name: Mapped[str] = mapped_column(Text)
    destination_owner: Mapped[str] = mapped_column(String(128), server_default=text("''"))
    job_id: Mapped[str] = mapped_column(String(128))


class TableEdge(_Edge, Base):
    """Names are `catalog.database.table`, or the raw endpoint."""

    __tablename__ = "table_edges"
    __table_args__ = _edge_table_args("table_edges")


class ColumnEdge(_Edge, Base):
    """Names are `catalog.database.table.column`, or the raw endpoint."""

    __tablename__ = "column_edges"
    __table_args__ = _edge_table_args("column_edges")


# -- runs and raw payloads --------------------------------------------------------------------


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_workspace_started", "workspace_id", "started_at"),
        Index("ix_sync_runs_started_at", "started_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, partial, failed
    deployments_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    jobs_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    jobs_failed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_added: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_closed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error_summary: Mapped[str | None] = mapped_column(Text)
    # The version of the rules that turned payloads into rows (normalize.ROWS_VERSION).
    rows_version: Mapped[int | None] = mapped_column(Integer)


class RunChangeCount(Base):
    """How many rows of a run's change feed there are of one namespace, kind and change: what
    `lineage_change_counts` answers window questions from (migration 0010)."""

    __tablename__ = "run_change_counts"
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), primary_key=True)
    namespace: Mapped[str] = mapped_column(Text, primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    change: Mapped[str] = mapped_column(String(8), primary_key=True)
    changes: Mapped[int] = mapped_column(Integer)


class Contribution(Base):
    """A deployment's last successful fetch: the raw payload the current state is built from."""

    __tablename__ = "contributions"
    deployment_fk: Mapped[int] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    # `json`, not `jsonb`, on PostgreSQL: written and read whole, never queried inside.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set when the deployment left its namespace's listing; the payload stays for audit.
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LiveJobStatus(Base):
    """A job status that counts as live (`[lineage] live_statuses`; RUNNING by default)."""

    __tablename__ = "live_job_statuses"
    status: Mapped[str] = mapped_column(String(64), primary_key=True)


class JobFailure(Base):
    """A namespace listing, deployment or job that failed in a run, and why (see failures)."""

    __tablename__ = "job_failures"
    __table_args__ = (Index("ix_job_failures_run_id", "run_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"))
    namespace: Mapped[str] = mapped_column(Text)
    # Text, unbounded: an ID too long to store elsewhere is itself a failure to record.
    deployment_id: Mapped[str | None] = mapped_column(Text)
    deployment_name: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime)


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
    """Alembic's `include_object` for a database of `dialect`: what the models create there
    (autogenerate and the models-agree-with-migrations test compare only that)."""

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only_on = getattr(item, "info", {}).get(ONLY_ON)
        return only_on is None or only_on == dialect

    return include


def _version_table_args(table: str, entity: str, entities: str) -> tuple[Any, ...]:
    """A version table's keys to its entity and its run (`_sqlite_only`), and its indexes."""
    return (
        _sqlite_only(ForeignKeyConstraint([entity], [f"{entities}.id"])),
        _sqlite_only(ForeignKeyConstraint(["run_id"], ["sync_runs.id"])),
        *_version_indexes(table, entity),
    )


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


class _Version:
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_id: Mapped[int] = mapped_column(Id)  # the run that opened it (see _version_table_args)


class TableVersion(_Version, Base):
    __tablename__ = "table_versions"
    __table_args__ = _version_table_args("table_versions", "table_fk", "tables")
    table_fk: Mapped[int] = mapped_column(Id)
    node_id: Mapped[str | None] = mapped_column(Text)  # the API's ID of the table's node
    table_uid: Mapped[str | None] = mapped_column(UidText)  # the API's table ID
    connector: Mapped[str | None] = mapped_column(UidText)
    is_temporary: Mapped[bool]
    with_options: Mapped[dict[str, Any]] = mapped_column(JsonObject)
    properties: Mapped[dict[str, Any]] = mapped_column(JsonObject)


class ColumnVersion(_Version, Base):
    __tablename__ = "column_versions"
    __table_args__ = _version_table_args("column_versions", "column_fk", "columns")
    column_fk: Mapped[int] = mapped_column(Id)
    column_uid: Mapped[str | None] = mapped_column(UidText)  # the API's column ID
    column_type: Mapped[str | None] = mapped_column(Text)
    column_native_type: Mapped[str | None] = mapped_column(Text)
    nullable: Mapped[bool | None]
    description: Mapped[str | None] = mapped_column(Text)
    column_created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    column_modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    column_creator: Mapped[str | None] = mapped_column(Text)
    column_modifier: Mapped[str | None] = mapped_column(Text)


class JobVersion(_Version, Base):
    __tablename__ = "job_versions"
    __table_args__ = (
        *_version_table_args("job_versions", "deployment_fk", "deployments"),
        Index("ix_job_versions_job_id", "job_id"),  # the job carrying an edge, by its ID
    )
    deployment_fk: Mapped[int] = mapped_column(Id)
    job_id: Mapped[str] = mapped_column(String(128))
    deployment_name: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JsonObject)
    # What ListJobs and ListDeployments say of the job and its deployment (normalize).
    job_status: Mapped[str | None] = mapped_column(Text)
    job_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    job_ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    job_created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    engine_version: Mapped[str | None] = mapped_column(Text)
    execution_mode: Mapped[str | None] = mapped_column(Text)
    job_creator: Mapped[str | None] = mapped_column(Text)
    deployment_description: Mapped[str | None] = mapped_column(Text)
    deployment_labels: Mapped[dict[str, Any] | None] = mapped_column(JsonObject)
    deployment_creator: Mapped[str | None] = mapped_column(Text)
    deployment_modifier: Mapped[str | None] = mapped_column(Text)
    deployment_created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deployment_modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deployment_target: Mapped[str | None] = mapped_column(Text)


class TableEdgeVersion(_Version, Base):
    __tablename__ = "table_edge_versions"
    __table_args__ = _version_table_args("table_edge_versions", "edge_fk", "table_edges")
    edge_fk: Mapped[int] = mapped_column(Id)


class ColumnEdgeVersion(_Version, Base):
    __tablename__ = "column_edge_versions"
    __table_args__ = _version_table_args("column_edge_versions", "edge_fk", "column_edges")
    edge_fk: Mapped[int] = mapped_column(Id)


class DeploymentVersion(_Version, Base):
    """A listed deployment's attributes, with or without a job (ListDeployments)."""

    __tablename__ = "deployment_versions"
    __table_args__ = _version_table_args("deployment_versions", "deployment_fk", "deployments")
    deployment_fk: Mapped[int] = mapped_column(Id)
    deployment_name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JsonObject)
    engine_version: Mapped[str | None] = mapped_column(Text)
    execution_mode: Mapped[str | None] = mapped_column(Text)
    creator: Mapped[str | None] = mapped_column(Text)
    modifier: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deployment_target: Mapped[str | None] = mapped_column(Text)
    has_job: Mapped[bool]
