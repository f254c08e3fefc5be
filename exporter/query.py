"""Lineage questions over time, answered in SQL: traversal as of an instant.

The Python API behind `lineage-exporter lineage` (exporter.changes answers `diff`); on
PostgreSQL the functions `lineage_upstream` / `lineage_downstream` (migration 0003) give the
same traversal.

A traversal is one recursive query: it starts from the edges touching NAME that were valid at the
instant, and follows edges valid at that instant through the same namespace, hop by hop, up to a
depth. Cycles end because a hop is only added once per depth (UNION) and depth is bounded. Each
edge is reported once, at the smallest depth it was reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)

from exporter import schema
from exporter.errors import QueryError
from exporter.questions import DIRECTIONS, Direction
from exporter.sqltypes import UtcDateTime

Level = Literal["table", "column"]


# -- traversal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One edge reached by a traversal, and the job that carries it."""

    direction: Direction
    depth: int
    source_name: str
    destination_name: str
    job_id: str
    deployment_name: str | None
    namespace: str
    workspace_id: str


@dataclass(frozen=True)
class Traversal:
    """The answer to "what feeds / what is fed by NAME, as of an instant"."""

    name: str
    level: Level
    as_of: datetime
    max_depth: int
    directions: tuple[Direction, ...]
    hops: list[Hop] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "level": self.level,
            "as_of": self.as_of.isoformat(),
            "max_depth": self.max_depth,
            "directions": list(self.directions),
            "hops": [hop.__dict__ for hop in self.hops],
        }


def name_level(conn: Connection, name: str) -> Level:
    """`table` when NAME is a table (or a table edge's endpoint), else `column`.

    The same rule as the PostgreSQL function `lineage__is_table`.
    """
    edges = schema.table_edges
    qualified = schema.catalogs.c.name + "." + schema.databases.c.name + "." + schema.tables.c.name
    is_table = select(
        or_(
            exists().where(edges.c.destination_name == name),
            exists().where(edges.c.source_name == name),
            select(schema.tables.c.id)
            .join(schema.databases, schema.databases.c.id == schema.tables.c.database_id)
            .join(schema.catalogs, schema.catalogs.c.id == schema.databases.c.catalog_id)
            .where(qualified == name)
            .exists(),
        )
    )
    return "table" if conn.execute(is_table).scalar() else "column"


def traverse(
    conn: Connection,
    name: str,
    *,
    as_of: datetime,
    direction: str = "upstream",
    max_depth: int = 10,
    namespace: str | None = None,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> Traversal:
    """Every edge reachable from NAME within `max_depth` hops, as the lineage was at `as_of`;
    with `live_only`, only edges whose carrying job was live at `as_of` (live_job_statuses)."""
    if direction not in DIRECTIONS:
        raise QueryError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if max_depth < 1:
        raise QueryError(f"depth must be at least 1, not {max_depth}")
    level = name_level(conn, name)
    result = Traversal(name, level, as_of, max_depth, DIRECTIONS[direction])
    for way in result.directions:
        statement = _walk(level, way, name, as_of, max_depth, namespace, workspace_id, live_only)
        for row in conn.execute(statement):
            result.hops.append(Hop(way, *row))
    return result


def _valid_at(versions: Any, at: ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(
        versions.c.valid_from <= at, or_(versions.c.valid_to.is_(None), versions.c.valid_to > at)
    )


def _live_at(edges: Any, at: ColumnElement[datetime]) -> ColumnElement[bool]:
    """Whether the edge's carrying job (same ID, same namespace) was live at `at`."""
    jv = schema.job_versions.alias("live_jv")
    return exists(
        select(literal(1))
        .select_from(jv.join(schema.deployments, schema.deployments.c.id == jv.c.deployment_fk))
        .where(
            jv.c.job_id == edges.c.job_id,
            schema.deployments.c.namespace_id == edges.c.namespace_id,
            _valid_at(jv, at),
            jv.c.job_status.in_(select(schema.live_job_statuses.c.status)),
        )
    )


def _walk(
    level: Level,
    direction: Direction,
    name: str,
    as_of: datetime,
    max_depth: int,
    namespace: str | None,
    workspace_id: str | None,
    live_only: bool = False,
) -> Select[Any]:
    edge_table = schema.table_edges if level == "table" else schema.column_edges
    version_table = schema.table_edge_versions if level == "table" else schema.column_edge_versions
    # Upstream walks from a destination to its sources; downstream the other way round.
    near, far = ("destination", "source") if direction == "upstream" else ("source", "destination")
    at = bindparam("as_of", as_of, type_=UtcDateTime)

    scope = select(schema.namespaces.c.id)
    if namespace is not None:
        scope = scope.where(schema.namespaces.c.name == namespace)
    if workspace_id is not None:
        scope = scope.where(schema.namespaces.c.workspace_id == workspace_id)

    e, v = edge_table.alias("e"), version_table.alias("v")
    anchor = (
        select(
            literal(1).label("depth"),
            e.c.namespace_id,
            e.c[f"{far}_name"].label("next_name"),
            e.c[f"{far}_owner"].label("next_owner"),
            e.c.source_name,
            e.c.destination_name,
            e.c.job_id,
        )
        .join(v, v.c.edge_fk == e.c.id)
        .where(
            e.c[f"{near}_name"] == name,
            _valid_at(v, at),
            e.c.namespace_id.in_(scope),
            _live_at(e, at) if live_only else true(),
        )
    )
    walk = anchor.cte("walk", recursive=True)
    e2, v2 = edge_table.alias("e2"), version_table.alias("v2")
    step = (
        select(
            walk.c.depth + 1,
            e2.c.namespace_id,
            e2.c[f"{far}_name"],
            e2.c[f"{far}_owner"],
            e2.c.source_name,
            e2.c.destination_name,
            e2.c.job_id,
        )
        .select_from(walk)
        .join(
            e2,
            and_(
                e2.c[f"{near}_name"] == walk.c.next_name,
                e2.c[f"{near}_owner"] == walk.c.next_owner,
                e2.c.namespace_id == walk.c.namespace_id,
            ),
        )
        .join(v2, v2.c.edge_fk == e2.c.id)
        .where(
            walk.c.depth < max_depth, _valid_at(v2, at), _live_at(e2, at) if live_only else true()
        )
    )
    walk = walk.union(step)

    reached = (
        select(
            func.min(walk.c.depth).label("depth"),
            walk.c.namespace_id,
            walk.c.source_name,
            walk.c.destination_name,
            walk.c.job_id,
        )
        .group_by(walk.c.namespace_id, walk.c.source_name, walk.c.destination_name, walk.c.job_id)
        .subquery("reached")
    )
    jv = schema.job_versions.alias("jv")
    return (
        select(
            reached.c.depth,
            reached.c.source_name,
            reached.c.destination_name,
            reached.c.job_id,
            jv.c.deployment_name,
            schema.namespaces.c.name,
            schema.namespaces.c.workspace_id,
        )
        .join(schema.namespaces, schema.namespaces.c.id == reached.c.namespace_id)
        .outerjoin(jv, and_(jv.c.job_id == reached.c.job_id, _valid_at(jv, at)))
        .order_by(
            reached.c.depth,
            reached.c.destination_name,
            reached.c.source_name,
            reached.c.job_id,
            schema.namespaces.c.workspace_id,
            schema.namespaces.c.name,
        )
    )
