"""Normalize: one deployment's lineage payload -> plain rows keyed by natural keys (pure).

Keys (every one starts with the namespace, so namespaces never collide):
- tables:       (namespace, catalog, database, table, owner)
- columns:      (namespace, catalog, database, table, owner, column)
- jobs:         (namespace, deployment_id)
- table_edges:  (namespace, source, source_owner, destination, destination_owner, job_id)
- column_edges: same shape, with column names
`owner` is '' for catalog tables and the declaring deployment's ID for temporary tables, so two
jobs' temporary tables of the same name never overwrite each other. Edge endpoints are resolved
to a table/column of the same payload by ID, else by qualified name; anything else is kept as
the raw string, never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from sys import intern
from typing import Any

from pydantic_core import to_json

from exporter.api.wire import (
    Deployment,
    LineageInfo,
    LineageTables,
    ListedDeployment,
    Node,
    Relation,
)
from exporter.errors import ApiContext, PayloadError
from exporter.storable import MAX_ID_BYTES, MAX_NAME_BYTES, describe_too_long, too_long

Key = tuple[str, ...]
Attrs = dict[str, Any]
KINDS = ("tables", "columns", "jobs", "table_edges", "column_edges")
# Bump when `normalize` turns the same payload into different rows: the first sync under new
# rules then compares the whole stored state with what the rules make of every contribution.
ROWS_VERSION = 2  # 2: jobs, tables and columns carry the API's whole record


@dataclass
class State:
    """Rows of every kind: kind -> natural key -> attributes."""

    rows: dict[str, dict[Key, Attrs]]

    @classmethod
    def empty(cls) -> State:
        return cls({kind: {} for kind in KINDS})

    def __getitem__(self, kind: str) -> dict[Key, Attrs]:
        return self.rows[kind]

    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass(frozen=True)
class JobIdentity:
    """What the listing said about the job whose lineage this is."""

    namespace: str
    deployment_id: str
    deployment_name: str | None
    job_id: str
    # The job's and its deployment's attributes (`job_attributes`), versioned with the job row.
    attributes: Mapping[str, Any] = field(default_factory=dict)


# The attributes of a job row beyond its ID, name and properties (see `job_attributes`).
JOB_RECORD_ATTRS = (
    "job_status",
    "job_started_at",
    "job_ended_at",
    "job_created_at",
    "engine_version",
    "execution_mode",
    "job_creator",
    "deployment_description",
    "deployment_labels",
    "deployment_creator",
    "deployment_modifier",
    "deployment_created_at",
    "deployment_modified_at",
    "deployment_target",
)


def job_attributes(job: Mapping[str, Any], deployment: Mapping[str, Any]) -> Attrs:
    """A job row's attributes from what ListJobs and ListDeployments said (their kept records,
    `wire.Job.record()` and `wire.Deployment.record()`; empty for payloads stored before they
    were kept). Times are aware UTC datetimes; people are named by name, else by ID."""
    status = job.get("status")
    target = deployment.get("deploymentTarget")
    return {
        "job_status": status.get("currentJobStatus") if isinstance(status, dict) else None,
        "job_started_at": _utc(job.get("startTime")),
        "job_ended_at": _utc(job.get("endTime")),
        "job_created_at": _utc(job.get("createdAt")),
        "engine_version": job.get("engineVersion") or deployment.get("engineVersion"),
        "execution_mode": job.get("executionMode") or deployment.get("executionMode"),
        "job_creator": job.get("creatorName") or job.get("creator"),
        "deployment_description": deployment.get("description"),
        "deployment_labels": deployment.get("labels") or {},
        "deployment_creator": deployment.get("creatorName") or deployment.get("creator"),
        "deployment_modifier": deployment.get("modifierName") or deployment.get("modifier"),
        "deployment_created_at": _utc(deployment.get("createdAt")),
        "deployment_modified_at": _utc(deployment.get("modifiedAt")),
        "deployment_target": target.get("name") if isinstance(target, dict) else None,
    }


def deployment_attributes(deployment: Deployment | ListedDeployment, has_job: bool) -> Attrs:
    """A listed deployment's row (`lineage_deployments_*`): what ListDeployments says of it."""
    record = deployment.record()
    attrs = job_attributes({}, record)
    return {
        "deployment_name": deployment.name or None,
        "description": attrs["deployment_description"],
        "labels": attrs["deployment_labels"],
        "engine_version": attrs["engine_version"],
        "execution_mode": attrs["execution_mode"],
        "creator": attrs["deployment_creator"],
        "modifier": attrs["deployment_modifier"],
        "created_at": attrs["deployment_created_at"],
        "modified_at": attrs["deployment_modified_at"],
        "deployment_target": attrs["deployment_target"],
        "has_job": has_job,
    }


def _aware(moment: datetime | None) -> datetime | None:
    """Times the API sends without an offset are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _utc(value: Any) -> datetime | None:
    """An ISO-8601 text (as a kept record holds times) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def normalize(job: JobIdentity, lineage: LineageInfo) -> State:
    """Turn one job's LineageInfo into rows; same input, same rows."""
    state = State.empty()
    ns = job.namespace
    table_refs: dict[str, tuple[str, str]] = {}  # API id or qualified name -> (name, owner)
    column_refs: dict[str, tuple[str, str]] = {}
    times: dict[datetime | None, datetime | None] = {}
    shared = times.setdefault  # shared(t, t): one object per distinct time in this payload
    for node in lineage.nodes:
        owner = job.deployment_id if node.is_temporary else ""
        for table in node.tables:
            qualified = intern(f"{node.catalog_name}.{node.database_name}.{table.table_name}")
            key = _interned(ns, node.catalog_name, node.database_name, table.table_name, owner)
            state["tables"][key] = _table_attrs(node, table.id, table.with_, table.properties)
            _remember(table_refs, table.id, qualified, owner)
            for column in table.columns:
                state["columns"][(*key, intern(column.column_name))] = {
                    "column_uid": column.id,
                    # A workspace's hundreds of thousands of columns have a few dozen types.
                    "column_type": _intern_or_none(column.column_type),
                    "column_native_type": _intern_or_none(column.column_native_type),
                    "nullable": column.nullable,
                    "description": column.description,
                    # Shared objects: a workspace's columns repeat a few times and people.
                    "column_created_at": shared(created := _aware(column.created_at), created),
                    "column_modified_at": shared(modified := _aware(column.modified_at), modified),
                    "column_creator": _intern_or_none(column.creator),
                    "column_modifier": _intern_or_none(column.modifier),
                }
                column_name = intern(f"{qualified}.{column.column_name}")
                _remember(column_refs, column.id, column_name, owner)
    state["jobs"][(ns, job.deployment_id)] = {
        "job_id": job.job_id,
        "deployment_name": job.deployment_name,
        "properties": _job_properties(job.job_id, lineage),
        **(job.attributes or job_attributes({}, {})),
    }
    for kind, relations, refs in (
        ("table_edges", lineage.edges.table_lineage, table_refs),
        ("column_edges", lineage.edges.column_lineage, column_refs),
    ):
        for relation in relations:
            state[kind][_edge_key(ns, relation, refs, job.job_id)] = {}
    return state


@dataclass(frozen=True, slots=True)
class Reports:
    """What one contribution's rows may share with another's, without its rows: its tables (a
    column's key begins with its table's) and the jobs its edges name (an edge's key ends with
    one). Job rows are never shared: each is keyed by its own deployment."""

    tables: frozenset[Key]
    edge_jobs: frozenset[str]

    @classmethod
    def of_keys(cls, keys: Mapping[str, Iterable[Key]]) -> Reports:
        """What rows with these keys (kind -> keys) may share."""
        tables = {*keys["tables"], *(key[:5] for key in keys["columns"])}
        jobs = {key[5] for kind in ("table_edges", "column_edges") for key in keys[kind]}
        return cls(frozenset(tables), frozenset(jobs))

    def overlaps(self, other: Reports) -> bool:
        return not (
            self.tables.isdisjoint(other.tables) and self.edge_jobs.isdisjoint(other.edge_jobs)
        )


def reports(job: JobIdentity, lineage: LineageInfo | LineageTables) -> Reports:
    """`Reports.of_keys` of `normalize(job, lineage)`, at a fraction of its cost: what an
    unchanged contribution keeps instead of its rows."""
    tables = frozenset(
        _interned(
            job.namespace,
            node.catalog_name,
            node.database_name,
            table.table_name,
            job.deployment_id if node.is_temporary else "",
        )
        for node in lineage.nodes
        for table in node.tables
    )
    edges = (*lineage.edges.table_lineage, *lineage.edges.column_lineage)
    return Reports(tables, frozenset(relation.job_id or job.job_id for relation in edges))


def check_limits(state: State, context: ApiContext) -> None:
    """Raise a PayloadError naming the first name or ID too long to store (see `storable`)."""
    for kind, named, parts in (
        ("tables", "tableName", slice(1, 4)),
        ("columns", "columnName", slice(1, 4)),
    ):
        for key in state[kind]:
            names = (*key[parts], key[-1]) if kind == "columns" else key[parts]
            if sum(map(len, names)) + len(names) > MAX_NAME_BYTES // 4:
                qualified = ".".join(names)
                if too_long(qualified, MAX_NAME_BYTES):
                    problem = describe_too_long("the qualified name", qualified, MAX_NAME_BYTES)
                    raise PayloadError(context, "GetLineageInfo", named, problem)
    for kind, named in (("table_edges", "tableLineage"), ("column_edges", "columnLineage")):
        for _, source, _, destination, _, job_id in state[kind]:
            for end, name in (("source", source), ("destination", destination)):
                if too_long(name, MAX_NAME_BYTES):
                    problem = describe_too_long(f"the {end}", name, MAX_NAME_BYTES)
                    raise PayloadError(context, "GetLineageInfo", f"edges.{named}.{end}", problem)
            if too_long(job_id, MAX_ID_BYTES):
                problem = describe_too_long("the job ID", job_id, MAX_ID_BYTES)
                raise PayloadError(context, "GetLineageInfo", f"edges.{named}.jobId", problem)


def _intern_or_none(text: str | None) -> str | None:
    return None if text is None else intern(text)


def _interned(*parts: str) -> Key:
    """Keys share their name strings across jobs and runs: a workspace repeats them a lot."""
    return tuple(intern(part) for part in parts)


def _table_attrs(node: Node, uid: str | None, with_: Attrs, properties: Attrs) -> Attrs:
    return {
        "node_id": node.id,
        "table_uid": uid,
        "connector": node.connector,
        "is_temporary": node.is_temporary,
        "with_options": with_,
        "properties": properties,
    }


def _remember(refs: dict[str, tuple[str, str]], uid: str | None, name: str, owner: str) -> None:
    if uid:
        refs.setdefault(uid, (name, owner))
    refs.setdefault(name, (name, owner))


def _edge_key(ns: str, relation: Relation, refs: dict[str, tuple[str, str]], job_id: str) -> Key:
    source, source_owner = refs.get(relation.source, (relation.source, ""))
    destination, destination_owner = refs.get(relation.destination, (relation.destination, ""))
    return _interned(
        ns, source, source_owner, destination, destination_owner, relation.job_id or job_id
    )


def _job_properties(job_id: str, lineage: LineageInfo) -> Attrs:
    """The properties of this job's jobInfos entry (or of the only entry, if IDs differ)."""
    infos = lineage.job_infos
    mine = [info for info in infos if info.id == job_id] or (infos if len(infos) == 1 else [])
    merged: Attrs = {}
    for info in mine:
        merged.update(info.properties)
    return merged


def content_hash(payload: Any) -> str:
    """A stable hash of a JSON-able payload, keys in the order the API sent them.

    Sorting the keys would make it independent of that order, at three times the cost per
    body; an API that reordered its keys would only cost one rewrite of the stored payloads
    (the history is diffed row by row, not by hash).
    """
    return hashlib.sha256(to_json(payload, inf_nan_mode="null")).hexdigest()
