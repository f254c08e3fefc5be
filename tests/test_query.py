"""Lineage questions over time: traversal as of instants (with a cycle), diffs, the change feed,
and the PostgreSQL functions agreeing with the Python API, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from conftest import Harness
from sqlalchemy import Engine, bindparam, text

from exporter import database, store
from exporter.changes import diff, diff_snapshots, snapshot
from exporter.history import diff as history_diff
from exporter.normalize import State, job_attributes
from exporter.query import traverse
from exporter.sqltypes import UtcDateTime

WS, NS = "ws-query", "ns"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)

# Table edges (source, destination, job) per instant. At T0 a -> b -> c -> a is a cycle fed by x;
# at T1 b -> c disappears and y -> b appears; at T2 b -> c re-appears.
EDGES_T0 = [("c.d.a", "c.d.b", "j1"), ("c.d.b", "c.d.c", "j2"), ("c.d.c", "c.d.a", "j3"),
            ("c.d.x", "c.d.c", "j4")]  # fmt: skip
EDGES_T1 = [e for e in EDGES_T0 if e[:2] != ("c.d.b", "c.d.c")] + [("c.d.y", "c.d.b", "j5")]
EDGES_T2 = [*EDGES_T1, ("c.d.b", "c.d.c", "j2")]
HISTORY = [(T0, EDGES_T0), (T1, EDGES_T1), (T2, EDGES_T2)]


def _state(edges: list[tuple[str, str, str]]) -> State:
    state = State.empty()
    for source, destination, job in edges:
        state["table_edges"][(NS, source, "", destination, "", job)] = {}
        # The same graph one level down, on column `k` of each table.
        state["column_edges"][(NS, f"{source}.k", "", f"{destination}.k", "", job)] = {}
    for job in sorted({job for *_, job in edges}):
        state["jobs"][(NS, f"dep-{job}")] = {
            "job_id": job,
            "deployment_name": f"deployment {job}",
            "properties": {"owner": "team"},
            **job_attributes({"status": {"currentJobStatus": "RUNNING"}}, {}),
        }
    return state


def write_history(
    engine: Engine, history: list[tuple[datetime, list[tuple[str, str, str]]]]
) -> list[int]:
    """Store each state as a run at its instant, through the real store; returns the run IDs."""
    run_ids = []
    for at, edges in history:
        run_id, now = store.start_run(engine, WS, at)
        with database.transaction(engine) as conn:
            changes = history_diff(_state(edges), store.load_current(conn, WS))
            store.apply_changes(conn, WS, run_id, now, changes)
            store.refresh_statistics(conn, changes.rows_added)  # as sync does
            outcome = store.RunOutcome(
                "succeeded", 0, 0, 0, changes.rows_added, changes.rows_closed, None
            )
            store.finish_run(conn, run_id, at, outcome)
        run_ids.append(run_id)
    return run_ids


@pytest.fixture
def graph(db_url: str) -> Engine:
    engine = database.make_engine(db_url)
    write_history(engine, HISTORY)
    return engine


def _edges(engine: Engine, name: str, at: datetime, direction: str = "upstream", depth: int = 10,
           **scope: Any) -> set[tuple[int, str, str, str]]:  # fmt: skip
    with engine.connect() as conn:
        result = traverse(conn, name, as_of=at, direction=direction, max_depth=depth, **scope)
    return {(h.depth, h.source_name, h.destination_name, h.job_id) for h in result.hops}


# -- traversal --------------------------------------------------------------------------------


def test_upstream_at_several_instants_with_a_cycle(graph: Engine) -> None:
    assert _edges(graph, "c.d.c", T0) == {
        (1, "c.d.b", "c.d.c", "j2"),
        (1, "c.d.x", "c.d.c", "j4"),
        (2, "c.d.a", "c.d.b", "j1"),
        (3, "c.d.c", "c.d.a", "j3"),  # the cycle closes; the walk stops without looping
    }
    # At T1 the edge b -> c is gone, so nothing upstream of b is reachable.
    assert _edges(graph, "c.d.c", T1) == {(1, "c.d.x", "c.d.c", "j4")}
    # Between instants the earlier state holds.
    assert _edges(graph, "c.d.c", T1 - timedelta(seconds=1)) == _edges(graph, "c.d.c", T0)
    # At T2 it re-appears, with y -> b that arrived at T1.
    assert _edges(graph, "c.d.c", T2) == _edges(graph, "c.d.c", T0) | {(2, "c.d.y", "c.d.b", "j5")}
    # Before the first run there was nothing.
    assert _edges(graph, "c.d.c", T0 - timedelta(seconds=1)) == set()


def test_depth_limits_the_walk(graph: Engine) -> None:
    assert {e[0] for e in _edges(graph, "c.d.c", T0, depth=1)} == {1}
    assert _edges(graph, "c.d.c", T0, depth=2) == {
        e for e in _edges(graph, "c.d.c", T0) if e[0] <= 2
    }


def test_downstream_and_both(graph: Engine) -> None:
    assert _edges(graph, "c.d.x", T0, "downstream") == {
        (1, "c.d.x", "c.d.c", "j4"),
        (2, "c.d.c", "c.d.a", "j3"),
        (3, "c.d.a", "c.d.b", "j1"),
        (4, "c.d.b", "c.d.c", "j2"),
    }
    with graph.connect() as conn:
        both = traverse(conn, "c.d.b", as_of=T2, direction="both")
    assert {h.direction for h in both.hops} == {"upstream", "downstream"}
    assert ("upstream", 1, "c.d.y") in {(h.direction, h.depth, h.source_name) for h in both.hops}


def test_column_level_follows_column_edges(graph: Engine) -> None:
    with graph.connect() as conn:
        result = traverse(conn, "c.d.c.k", as_of=T1)
    assert result.level == "column"
    assert {(h.depth, h.source_name, h.job_id) for h in result.hops} == {(1, "c.d.x.k", "j4")}
    assert _edges(graph, "c.d.c.k", T0) == {
        (d, f"{s}.k", f"{t}.k", j) for d, s, t, j in _edges(graph, "c.d.c", T0)
    }


def test_hops_name_the_job_and_scope_filters(graph: Engine) -> None:
    with graph.connect() as conn:
        result = traverse(conn, "c.d.c", as_of=T0)
    assert {(h.job_id, h.deployment_name) for h in result.hops if h.depth == 1} == {
        ("j2", "deployment j2"),
        ("j4", "deployment j4"),
    }
    assert all((h.namespace, h.workspace_id) == (NS, WS) for h in result.hops)
    assert _edges(graph, "c.d.c", T0, namespace="other") == set()
    assert _edges(graph, "c.d.c", T0, workspace_id="other") == set()
    assert _edges(graph, "c.d.c", T0, namespace=NS, workspace_id=WS) == _edges(graph, "c.d.c", T0)


# -- PostgreSQL functions ---------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["upstream", "downstream"])
@pytest.mark.parametrize("name", ["c.d.c", "c.d.b.k", "c.d.x"])
def test_postgres_functions_agree_with_the_python_api(
    pg_url: str, direction: str, name: str
) -> None:
    engine = database.make_engine(pg_url)
    write_history(engine, HISTORY)
    sql = text(
        f"SELECT depth, source_name, destination_name, job_id FROM lineage_{direction}("
        "CAST(:name AS text), CAST(:at AS timestamptz), CAST(:depth AS int))"
    ).bindparams(bindparam("at", type_=UtcDateTime))
    for at in (T0, T1, T2):
        for depth in (1, 3, 10):
            with engine.connect() as conn:
                rows = {
                    tuple(r) for r in conn.execute(sql, {"name": name, "at": at, "depth": depth})
                }
            assert rows == _edges(engine, name, at, direction, depth), (at, depth)
    with engine.connect() as conn:
        defaults = conn.execute(text(f"SELECT count(*) FROM lineage_{direction}(:n)"), {"n": name})
        scoped = conn.execute(
            text(f"SELECT count(*) FROM lineage_{direction}(:n, now(), 10, 'other')"), {"n": name}
        )
        assert defaults.scalar() == len(_edges(engine, name, datetime.now(UTC), direction))
        assert scoped.scalar() == 0


# -- diffs and the change feed ----------------------------------------------------------------


def test_diff_between_runs_equals_the_known_changes(graph: Engine) -> None:
    with graph.connect() as conn:
        changes = diff(conn, T0, T1)
    got = {(c.kind, c.name, c.change) for c in changes}
    assert got == {
        ("table_edge", "c.d.b -> c.d.c", "removed"),
        ("column_edge", "c.d.b.k -> c.d.c.k", "removed"),
        ("table_edge", "c.d.y -> c.d.b", "added"),
        ("column_edge", "c.d.y.k -> c.d.b.k", "added"),
        ("job", "deployment j5", "added"),
        ("job", "deployment j2", "removed"),  # its only edge went away
    }
    with graph.connect() as conn:
        assert diff(conn, T0, T0) == []
        assert {(c.kind, c.change) for c in diff(conn, T0, T2)} == {
            ("table_edge", "added"), ("column_edge", "added"), ("job", "added")
        }  # fmt: skip


def test_diff_reports_changed_attributes() -> None:
    from exporter.changes import Entity

    before = {"column": {("w", "n", "t.c", ""): Entity("t.c", {"type": "INT", "nullable": True})}}
    after = {
        "column": {("w", "n", "t.c", ""): Entity("t.c", {"type": "BIGINT", "nullable": False})}
    }
    [change] = diff_snapshots(before, after)
    assert change.change == "changed"
    assert change.changed_attributes() == {"type": ("INT", "BIGINT"), "nullable": (True, False)}


def feed(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM lineage_changes WHERE run_id = :r"), {"r": run_id}
        ).mappings()
        return [dict(r) for r in rows]


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def assert_feed_matches_diff(engine: Engine, runs: list[tuple[int, datetime]]) -> int:
    """For consecutive runs, the feed rows of the later run equal the diff between them."""
    compared = 0
    for (_, before), (run_id, after) in pairwise(runs):
        with engine.connect() as conn:
            changes = diff(conn, before, after)
        expected = sorted(
            (c.kind, c.namespace, c.name, c.change, json.dumps(c.old, sort_keys=True),
             json.dumps(c.new, sort_keys=True))
            for c in changes
        )  # fmt: skip
        got = sorted(
            (r["entity_kind"], r["namespace"], r["entity_name"], r["change"],
             json.dumps(_loads(r["old_value"]), sort_keys=True),
             json.dumps(_loads(r["new_value"]), sort_keys=True))
            for r in feed(engine, run_id)
        )  # fmt: skip
        assert got == expected, run_id
        compared += len(expected)
    return compared


def test_change_feed_matches_the_diffs_of_a_graph(graph: Engine) -> None:
    with graph.connect() as conn:
        runs = [
            tuple(r)
            for r in conn.execute(
                text("SELECT run_id, started_at FROM lineage_sync_runs ORDER BY run_id")
            )
        ]
    runs = [
        (r, at if isinstance(at, datetime) else datetime.fromisoformat(at).replace(tzinfo=UTC))
        for r, at in runs
    ]
    assert assert_feed_matches_diff(graph, runs) == 6 + 3
    first = feed(graph, runs[0][0])
    assert {r["change"] for r in first} == {"added"} and all(r["old_value"] is None for r in first)


def test_change_feed_matches_diffs_through_syncs_of_the_simulator(harness: Harness) -> None:
    """Every kind of change the simulator makes, synced through the CLI: feed equals diff."""
    runs = []
    for _ in range(4):
        assert harness.sync() in (0, 1)
        runs.append(harness.last_run())
        harness.world.advance(changes=6)
    pairs = [(int(r["run_id"]), _aware(r["started_at"])) for r in runs]  # type: ignore[call-overload]
    assert assert_feed_matches_diff(harness.engine, pairs) > 0
    kinds = {r[0] for r in harness.rows("SELECT DISTINCT change FROM lineage_changes")}
    assert kinds == {"added", "removed", "changed"}


def _aware(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def test_snapshot_decodes_json_and_booleans_alike(harness: Harness) -> None:
    assert harness.sync() == 0
    with harness.engine.connect() as conn:
        state = snapshot(conn, datetime.now(UTC))
    tables = list(state["table"].values())
    assert tables and all(isinstance(t.attributes["with"], dict) for t in tables)
    assert all(isinstance(t.attributes["is_temporary"], bool) for t in tables)


def test_sqlite_walks_each_hop_through_the_endpoint_index(sqlite_url: str) -> None:
    """Without statistics SQLite scanned a whole namespace per hop (40x slower on the bench)."""
    from sqlalchemy.dialects import sqlite

    from exporter.query import _walk

    engine = database.make_engine(sqlite_url)
    write_history(engine, HISTORY)
    statement = _walk("column", "upstream", "c.d.c.k", T1, 10, None, None)
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    step = plan[plan.index("RECURSIVE STEP") + 1 :]
    assert any("e2 USING INDEX ix_column_edges_destination" in line for line in step), plan
