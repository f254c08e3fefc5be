"""What the explorer's pages show, as plain JSON-able dicts (each page has a JSON twin).

Reads only: traversal through exporter.query (one recursive query per direction), everything else
from the SQL contract's views, every value a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from exporter.models import UtcDateTime
from exporter.query import Traversal, traverse

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
    table node that expands."""
    prefix = _like_prefix(table + ".")
    statement = text(
        "SELECT source_name, destination_name, job_id, job_status FROM "
        "lineage_column_edges_history WHERE (source_name LIKE :p ESCAPE '\\' "
        "OR destination_name LIKE :p ESCAPE '\\') "
        "AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at) "
        "ORDER BY source_name, destination_name, job_id"
    ).bindparams(*_times("at"))
    rows = conn.execute(statement, {"p": prefix, "at": at})
    return [
        {"source": s, "destination": d, "job": j, "status": status, "state": "both"}
        for s, d, j, status in rows
    ]


def _like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# -- search ---------------------------------------------------------------------------------------


def search(conn: Connection, q: str) -> dict[str, Any]:
    """Current tables and columns whose qualified name contains `q`, with their edge counts."""
    pattern = "%" + _like_prefix(q)[:-1] + "%" if q else "%"
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
    """The latest runs, each with what it changed (from lineage_changes, by run)."""
    runs: list[dict[str, Any]] = runs_page(conn, limit)["runs"]
    counts = text(
        "SELECT entity_kind, change, COUNT(*) FROM lineage_changes WHERE run_id = :r "
        "GROUP BY entity_kind, change ORDER BY entity_kind, change"
    )
    for run in runs:
        run["changes"] = [
            {"kind": kind, "change": change, "count": n}
            for kind, change, n in conn.execute(counts, {"r": run["run_id"]})
        ]
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


def run_instants(conn: Connection) -> list[dict[str, Any]]:
    """Each run's start, oldest first: the stops of the time slider."""
    rows = conn.execute(
        text("SELECT run_id, started_at, status FROM lineage_sync_runs ORDER BY started_at")
    )
    return [{"run_id": r, "started_at": iso(t), "status": s} for r, t, s in rows]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- a table --------------------------------------------------------------------------------------


def table_page(conn: Connection, name: str, at: datetime) -> dict[str, Any]:
    """A table as of the instant: its columns and types, its change history (the changes of it
    and of its columns), and the jobs that read and write it."""
    columns = conn.execute(
        text(
            "SELECT namespace, column_name, column_type, nullable, description "
            "FROM lineage_columns_history WHERE qualified_name LIKE :p ESCAPE '\\' "
            "AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at) "
            "ORDER BY namespace, column_name"
        ).bindparams(*_times("at")),
        {"p": _like_prefix(name + "."), "at": at},
    ).mappings()
    history = conn.execute(
        text(
            "SELECT run_id, changed_at, entity_kind, entity_name, change, old_value, new_value "
            "FROM lineage_changes WHERE entity_kind IN ('table', 'column') "
            "AND (entity_name = :n OR entity_name LIKE :p ESCAPE '\\') AND changed_at <= :at "
            "ORDER BY changed_at DESC, entity_name LIMIT 200"
        ).bindparams(*_times("at")),
        {"n": name, "p": _like_prefix(name + "."), "at": at},
    ).mappings()
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
    return {
        "name": name,
        "as_of": iso(at),
        "columns": [dict(c) | {"nullable": _bool(c["nullable"])} for c in columns],
        "history": [dict(h) | {"changed_at": iso(h["changed_at"])} for h in history],
        "jobs": [
            dict(j) | {"role": "writes" if j["destination_name"] == name else "reads"} for j in jobs
        ],
    }


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)
