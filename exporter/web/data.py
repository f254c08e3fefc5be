"""What the explorer's pages show, as plain JSON-able dicts (each page has a JSON twin).

Reads only: traversal through exporter.query (one recursive query per direction), everything else
from the SQL contract's views, every value a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from exporter.changes_sql import TABLE_CHAIN
from exporter.query import Traversal, name_level, traverse
from exporter.sqltypes import UtcDateTime

MAX_SEARCH_RESULTS = 50
RECENT_RUNS = 10


@dataclass(frozen=True)
class GraphQuery:
    """Everything a graph view depends on: its URL carries exactly this."""

    name: str
    direction: str = "both"
    depth: int = 3
    as_of: datetime | None = None
    compare: datetime | None = None


def iso(value: Any) -> str | None:
    """An instant as ISO-8601 UTC text (SQLite views return text, PostgreSQL datetimes)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace(" ", "T"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def _times(*names: str) -> list[Any]:
    return [bindparam(name, type_=UtcDateTime) for name in names]


# -- the graph ------------------------------------------------------------------------------------


def graph(conn: Connection, query: GraphQuery, now: datetime) -> dict[str, Any]:
    """Nodes and edges reachable from the name as of the instant; with `compare`, the union of
    both instants' graphs, each edge and node marked `both`, `added` or `removed` (from the
    earlier instant to the later one)."""
    as_of = query.as_of or now
    edges = _edges_at(conn, query, as_of)
    if query.compare is not None:
        earlier, later = sorted((as_of, query.compare))
        before = _edges_at(conn, query, earlier)
        after = edges if later == as_of else _edges_at(conn, query, later)
        edges = _marked(before, after)
    else:
        edges = {key: {**edge, "state": "both"} for key, edge in edges.items()}
    return {
        "name": query.name,
        "level": name_level(conn, query.name),
        "direction": query.direction,
        "depth": query.depth,
        "as_of": iso(as_of),
        "compare": iso(query.compare),
        "nodes": _nodes(query.name, edges.values()),
        "edges": sorted(edges.values(), key=lambda e: (e["source"], e["destination"], e["job"])),
    }


EdgeKey = tuple[str, str, str]


def _edges_at(conn: Connection, query: GraphQuery, at: datetime) -> dict[EdgeKey, dict[str, Any]]:
    found: Traversal = traverse(
        conn, query.name, as_of=at, direction=query.direction, max_depth=query.depth
    )
    statuses = _job_statuses(conn, {hop.job_id for hop in found.hops}, at)
    edges: dict[EdgeKey, dict[str, Any]] = {}
    for hop in found.hops:
        key = (hop.source_name, hop.destination_name, hop.job_id)
        edges[key] = {
            "source": hop.source_name,
            "destination": hop.destination_name,
            "job": hop.job_id,
            "deployment": hop.deployment_name,
            "status": statuses.get(hop.job_id),
            "namespace": hop.namespace,
            "level": found.level,
        }
    return edges


def _job_statuses(conn: Connection, job_ids: set[str], at: datetime) -> dict[str, str | None]:
    if not job_ids:
        return {}
    statement = text(
        "SELECT job_id, job_status FROM lineage_jobs_history WHERE job_id IN :ids "
        "AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)"
    ).bindparams(bindparam("ids", expanding=True), *_times("at"))
    return dict(conn.execute(statement, {"ids": sorted(job_ids), "at": at}).all())


def _marked(
    before: dict[EdgeKey, dict[str, Any]], after: dict[EdgeKey, dict[str, Any]]
) -> dict[EdgeKey, dict[str, Any]]:
    marked: dict[EdgeKey, dict[str, Any]] = {}
    for key in before.keys() | after.keys():
        state = "both" if key in before and key in after else "added" if key in after else "removed"
        marked[key] = {**(after.get(key) or before[key]), "state": state}
    return marked


def _nodes(focus: str, edges: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One node per endpoint: `both` if any of its edges exists at both instants, else the
    state its edges share."""
    states: dict[str, set[str]] = {focus: {"both"}}
    for edge in edges:
        for end in (edge["source"], edge["destination"]):
            states.setdefault(end, set()).add(edge["state"])
    return [
        {
            "name": name,
            "focus": name == focus,
            "state": "both" if "both" in s or len(s) > 1 else next(iter(s)),
        }
        for name, s in sorted(states.items())
    ]


def column_edges_of_table(conn: Connection, table: str, at: datetime) -> list[dict[str, Any]]:
    """The column edges into and out of a table's columns as of the instant (one hop), for a
    table node that expands; found by the columns' names, through the edges' name indexes."""
    names = _column_names(conn, _tables_named(conn, table))
    if not names:
        return []
    statement = text(
        "SELECT source_name, destination_name, job_id, job_status FROM "
        "lineage_column_edges_history WHERE (source_name IN :names OR destination_name IN :names) "
        "AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at) "
        "ORDER BY source_name, destination_name, job_id"
    ).bindparams(bindparam("names", expanding=True), *_times("at"))
    rows = conn.execute(statement, {"names": names, "at": at})
    return [
        {"source": s, "destination": d, "job": j, "status": status, "state": "both"}
        for s, d, j, status in rows
    ]


def _column_names(conn: Connection, table_ids: list[int]) -> list[str]:
    """The qualified names of these tables' columns (every column ever seen)."""
    if not table_ids:
        return []
    statement = text(
        "SELECT DISTINCT c.name || '.' || db.name || '.' || t.name || '.' || col.name "  # noqa: S608
        f"FROM columns col {TABLE_CHAIN.format(table='col.table_id')} WHERE col.table_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    return sorted(str(row[0]) for row in conn.execute(statement, {"ids": table_ids}))


def _like_escaped(value: str) -> str:
    """`value` as a LIKE pattern matches it literally (with ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- search ---------------------------------------------------------------------------------------


def search(conn: Connection, q: str) -> dict[str, Any]:
    """Current tables and columns whose qualified name contains `q`, with their edge counts."""
    pattern = f"%{_like_escaped(q)}%"
    found: dict[str, list[dict[str, Any]]] = {}
    for level, plural in (("table", "tables"), ("column", "columns")):
        statement = text(
            f"SELECT x.workspace_id, x.namespace, x.qualified_name, "  # noqa: S608 - constants
            f"(SELECT COUNT(*) FROM lineage_{level}_edges_current e "
            f" WHERE e.destination_name = x.qualified_name AND e.namespace = x.namespace), "
            f"(SELECT COUNT(*) FROM lineage_{level}_edges_current e "
            f" WHERE e.source_name = x.qualified_name AND e.namespace = x.namespace) "
            f"FROM lineage_{plural}_current x WHERE x.qualified_name LIKE :q ESCAPE '\\' "
            f"ORDER BY x.qualified_name, x.namespace, x.workspace_id LIMIT {MAX_SEARCH_RESULTS}"
        )
        found[plural] = [
            {
                "workspace": ws,
                "namespace": ns,
                "name": name,
                "level": level,
                "upstream": up,
                "downstream": down,
            }
            for ws, ns, name, up, down in conn.execute(statement, {"q": pattern})
        ]
    return {"q": q, **found, "recent_runs": recent_runs(conn)}


def recent_runs(conn: Connection, limit: int = RECENT_RUNS) -> list[dict[str, Any]]:
    """The latest runs, each with what it changed (lineage_change_counts: each run's counts,
    not its feed, which for a first sync is every row of the workspace)."""
    runs: list[dict[str, Any]] = runs_page(conn, limit)["runs"]
    by_id = {run["run_id"]: run for run in runs}
    for run in runs:
        run["changes"] = []
    if not by_id:
        return runs
    counts = text(
        "SELECT run_id, entity_kind, change, SUM(changes) FROM lineage_change_counts "
        "WHERE run_id IN :ids "
        "GROUP BY run_id, entity_kind, change ORDER BY run_id, entity_kind, change"
    ).bindparams(bindparam("ids", expanding=True))
    for run_id, kind, change, n in conn.execute(counts, {"ids": list(by_id)}):
        by_id[run_id]["changes"].append({"kind": kind, "change": change, "count": int(n)})
    return runs


# -- runs -----------------------------------------------------------------------------------------


def runs_page(conn: Connection, limit: int = 200) -> dict[str, Any]:
    """Every sync run (the latest `limit`), newest first, with its failed jobs and reasons."""
    rows = conn.execute(
        text(
            "SELECT run_id, workspace_id, started_at, finished_at, status, deployments_total, "
            "jobs_total, jobs_failed, rows_added, rows_closed, error_summary "
            "FROM lineage_sync_runs ORDER BY run_id DESC LIMIT :n"
        ),
        {"n": limit},
    ).mappings()
    runs = []
    for row in rows:
        started, finished = iso(row["started_at"]), iso(row["finished_at"])
        seconds = None
        if started and finished:
            seconds = round((_parse(finished) - _parse(started)).total_seconds(), 2)
        runs.append({**dict(row), "started_at": started, "finished_at": finished,
                     "seconds": seconds, "failures": []})  # fmt: skip
    by_id = {run["run_id"]: run for run in runs}
    if by_id:
        failures = text(
            "SELECT run_id, namespace, deployment_id, deployment_name, job_id, stage, error "
            "FROM lineage_job_failures WHERE run_id IN :ids ORDER BY run_id, namespace, "
            "deployment_id"
        ).bindparams(bindparam("ids", expanding=True))
        for failure in conn.execute(failures, {"ids": list(by_id)}).mappings():
            by_id[failure["run_id"]]["failures"].append(dict(failure))
    return {"runs": runs}


MAX_INSTANTS = 1000


def run_instants(conn: Connection, limit: int = MAX_INSTANTS) -> list[dict[str, Any]]:
    """The stops of the time slider, oldest first: the starts of the latest `limit` runs that
    changed something (a year of runs every 15 minutes is 35,040, most of them changing
    nothing), and the first run."""
    rows = conn.execute(
        text(
            "SELECT run_id, started_at, status FROM lineage_sync_runs "
            "WHERE rows_added > 0 OR rows_closed > 0 OR run_id = (SELECT MIN(run_id) "
            "FROM lineage_sync_runs) ORDER BY started_at DESC LIMIT :n"
        ),
        {"n": limit},
    )
    found = [{"run_id": r, "started_at": iso(t), "status": s} for r, t, s in rows]
    return found[::-1]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- a table --------------------------------------------------------------------------------------


def table_page(conn: Connection, name: str, at: datetime) -> dict[str, Any]:
    """A table as of the instant: its columns and types, its change history (the changes of it
    and of its columns, as lineage_changes has them), and the jobs that read and write it.

    The table is found by name among the table identities, then its versions and its columns'
    versions by key: a year of a whole workspace's history is never read for one table.
    """
    table_ids = _tables_named(conn, name)
    versions = _versions(conn, table_ids, at)
    columns = [
        {"namespace": v.namespace, "column_name": v.entity.removeprefix(name + "."),
         "column_type": v.value["type"], "nullable": v.value["nullable"],
         "description": v.value["description"]}
        for v in versions
        if v.kind == "column" and _valid_at(v.valid_from, v.valid_to, at)
    ]  # fmt: skip
    columns.sort(key=lambda c: (c["namespace"], c["column_name"]))
    return {
        "name": name,
        "as_of": iso(at),
        "columns": columns,
        "history": _history(conn, versions)[:200],
        "jobs": _table_jobs(conn, name, at),
    }


@dataclass(frozen=True)
class _Version:
    kind: str  # table or column
    namespace: str
    entity: str  # its qualified name
    value: dict[str, Any]
    valid_from: Any
    valid_to: Any
    run_id: int


def _tables_named(conn: Connection, name: str) -> list[int]:
    """The IDs of every table whose qualified name is `name` (one per namespace and owner);
    the identity tables are small."""
    statement = text(
        "SELECT t.id FROM tables t JOIN databases db ON db.id = t.database_id "
        "JOIN catalogs c ON c.id = db.catalog_id "
        "WHERE c.name || '.' || db.name || '.' || t.name = :n"
    )
    return [int(row[0]) for row in conn.execute(statement, {"n": name})]


def _versions(conn: Connection, table_ids: list[int], at: datetime) -> list[_Version]:
    """Every version, up to the instant, of these tables and of their columns, oldest first."""
    if not table_ids:
        return []
    # Only constants are spliced (the chain of joins); values are bound parameters.
    queries = {
        "table": "SELECT n.name, c.name || '.' || db.name || '.' || t.name, v.connector, "  # noqa: S608
        "v.with_options, NULL, v.valid_from, v.valid_to, v.run_id FROM table_versions v "
        f"{TABLE_CHAIN.format(table='v.table_fk')} WHERE v.table_fk IN :ids "
        "AND v.valid_from <= :at",
        "column": "SELECT n.name, c.name || '.' || db.name || '.' || t.name || '.' || col.name, "  # noqa: S608
        "v.column_type, v.nullable, v.description, v.valid_from, v.valid_to, v.run_id "
        "FROM columns col JOIN column_versions v ON v.column_fk = col.id "
        f"{TABLE_CHAIN.format(table='col.table_id')} WHERE col.table_id IN :ids "
        "AND v.valid_from <= :at",
    }
    found = []
    for kind, sql in queries.items():
        statement = text(sql).bindparams(bindparam("ids", expanding=True), *_times("at"))
        for ns, entity, a, b, c, valid_from, valid_to, run_id in conn.execute(
            statement, {"ids": table_ids, "at": at}
        ):
            value = (
                {"connector": a, "with": json.loads(b) if isinstance(b, str) else b}
                if kind == "table"
                else {"type": a, "nullable": _bool(b), "description": c}
            )
            found.append(_Version(kind, ns, entity, value, valid_from, valid_to, run_id))
    found.sort(key=lambda v: (iso(v.valid_from) or "", v.entity))
    return found


def _valid_at(valid_from: Any, valid_to: Any, at: datetime) -> bool:
    start = _parse(iso(valid_from) or "")
    return start <= at and (valid_to is None or _parse(iso(valid_to) or "") > at)


def _history(conn: Connection, versions: list[_Version]) -> list[dict[str, Any]]:
    """Appearances, changes and disappearances, newest first, paired from consecutive versions
    of each entity as lineage_changes pairs them (a version that begins where the one before it
    ended is a change; one that ends with no successor, a removal)."""
    by_entity: dict[tuple[str, str, str], list[_Version]] = {}
    for version in versions:
        by_entity.setdefault((version.kind, version.namespace, version.entity), []).append(version)
    changes: list[dict[str, Any]] = []
    for rows in by_entity.values():
        for before, after in zip([None, *rows], [*rows, None], strict=True):
            joined = before is not None and after is not None
            joined = joined and iso(before.valid_to) == iso(after.valid_from)  # type: ignore[union-attr]
            if before is not None and before.valid_to is not None and not joined:
                changes.append(_change(before, before.valid_to, "removed", before.value, None))
            if after is not None:
                old = before.value if joined and before is not None else None
                change = "changed" if joined else "added"
                changes.append(_change(after, after.valid_from, change, old, after.value))
    runs = _runs_started(conn, {c["changed_at"] for c in changes if c["run_id"] is None})
    for item in changes:
        if item["run_id"] is None:
            item["run_id"] = runs.get(item["changed_at"])
    changes.sort(key=lambda c: (c["changed_at"], c["entity_name"]), reverse=True)
    return changes


def _change(version: _Version, at: Any, change: str, old: Any, new: Any) -> dict[str, Any]:
    return {"run_id": version.run_id if change != "removed" else None,
            "changed_at": iso(at), "entity_kind": version.kind, "entity_name": version.entity,
            "change": change, "old_value": old, "new_value": new}  # fmt: skip


def _runs_started(conn: Connection, instants: set[str | None]) -> dict[str | None, int]:
    """The run that started at each instant (a removal happens at a run's start)."""
    wanted = sorted(i for i in instants if i)
    if not wanted:
        return {}
    statement = text(
        "SELECT started_at, MIN(run_id) FROM lineage_sync_runs WHERE started_at IN :at "
        "GROUP BY started_at"
    ).bindparams(bindparam("at", expanding=True, type_=UtcDateTime))
    rows = conn.execute(statement, {"at": [_parse(i) for i in wanted]})
    return {iso(started): int(run) for started, run in rows}


def _table_jobs(conn: Connection, name: str, at: datetime) -> list[dict[str, Any]]:
    jobs = conn.execute(
        text(
            "SELECT e.source_name, e.destination_name, e.job_id, e.job_status, "
            "j.deployment_name FROM lineage_table_edges_history e "
            "LEFT JOIN lineage_jobs_history j ON j.job_id = e.job_id AND j.namespace = e.namespace "
            " AND j.valid_from <= :at AND (j.valid_to IS NULL OR j.valid_to > :at) "
            "WHERE (e.source_name = :n OR e.destination_name = :n) "
            "AND e.valid_from <= :at AND (e.valid_to IS NULL OR e.valid_to > :at) "
            "ORDER BY e.destination_name = :n DESC, e.job_id"
        ).bindparams(*_times("at")),
        {"n": name, "at": at},
    ).mappings()
    return [
        dict(j) | {"role": "writes" if j["destination_name"] == name else "reads"} for j in jobs
    ]


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)
