"""`diff` from the versions in a window equals comparing two whole snapshots; migration 0009
keeps every answer; the time indexes are what the window questions use."""

from __future__ import annotations

import itertools
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import (
    Harness,
    churned_history,
    hashable,
    run_instants,
    snapshot,
    write_config,
)
from sqlalchemy import text

from exporter import changes as changes_module
from exporter import migrate, store
from exporter.changes import Change, diff, diff_snapshots
from exporter.changes import snapshot as snapshot_at
from exporter.changes_sql import change_rows_sql
from exporter.simulator import Simulator


def _as_compared(changes: list[object]) -> list[tuple[object, ...]]:
    return sorted(
        hashable((c.kind, c.workspace_id, c.namespace, c.name, c.change, c.old, c.new))  # type: ignore[attr-defined]
        for c in changes
    )


def _in_order(changes: list[Change]) -> list[tuple[str, str, str, str]]:
    return [(c.kind, c.workspace_id, c.namespace, c.name) for c in changes]


def test_a_change_as_a_dict_has_every_field() -> None:
    change = Change("column", "ws", "ns", "c.d.t.x", "changed", {"type": "INT"}, {"type": "BIGINT"})
    assert change.to_dict() == {f.name: getattr(change, f.name) for f in fields(Change)}


@pytest.mark.parametrize("live_only", [False, True])
def test_a_windowed_diff_equals_comparing_two_snapshots(
    harness: Harness, live_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    monkeypatch.setattr(changes_module, "STREAM_BATCH", 7)  # answers span several batches
    churned_history(h)
    instants = run_instants(h)
    compared = 0
    with h.engine.connect() as conn:
        for start, end in itertools.permutations(instants, 2):
            whole = diff_snapshots(
                snapshot_at(conn, start, live_only=live_only),
                snapshot_at(conn, end, live_only=live_only),
            )
            windowed = diff(conn, start, end, live_only=live_only)
            assert _as_compared(windowed) == _as_compared(whole), (start, end)
            assert _in_order(windowed) == _in_order(whole), (start, end)
            compared += len(whole)
        scoped = diff(conn, instants[0], instants[-1], h.world.workspace_id, live_only)
        assert diff(conn, instants[0], instants[-1], "another-workspace", live_only) == []
        everywhere = diff(conn, instants[0], instants[-1], live_only=live_only)
        assert _as_compared(scoped) == _as_compared(everywhere)
    assert compared > 100  # the history really changed


def test_0009_up_and_down_keeps_every_answer(harness: Harness) -> None:
    """The feed (by run and by window) and every as-of answer are the same before and after the
    upgrade, and after going back."""
    h = harness
    churned_history(h)
    instants = run_instants(h)
    run_ids = [r[0] for r in h.rows("SELECT run_id FROM lineage_sync_runs ORDER BY run_id")]

    def answers() -> list[object]:
        feed = h.rows("SELECT * FROM lineage_changes")
        by_run = [h.rows("SELECT * FROM lineage_changes WHERE run_id = :r", r=r) for r in run_ids]
        window = h.rows(
            "SELECT * FROM lineage_changes WHERE changed_at > :a AND changed_at <= :b",
            a=instants[2],
            b=instants[-3],
        )
        return [
            *(snapshot(h, t) for t in instants),
            snapshot(h),
            *(sorted(map(hashable, rows)) for rows in [feed, window, *by_run]),
        ]

    after = answers()
    assert all(r[1] is not None for r in h.rows("SELECT * FROM lineage_changes"))  # run_id
    h.engine.dispose()
    migrate.downgrade(h.url, "0008")
    before = answers()
    assert before == after
    h.engine.dispose()
    migrate.upgrade(h.url)
    assert answers() == after


_FEED_COUNTS = """
    SELECT r.workspace_id, f.run_id, r.started_at, f.namespace, f.entity_kind, f.change, COUNT(*)
    FROM lineage_changes f JOIN lineage_sync_runs r ON r.run_id = f.run_id
    GROUP BY r.workspace_id, f.run_id, r.started_at, f.namespace, f.entity_kind, f.change"""
_COUNTS = """
    SELECT workspace_id, run_id, changed_at, namespace, entity_kind, change, changes
    FROM lineage_change_counts"""


def test_each_run_counts_the_changes_its_feed_has(harness: Harness) -> None:
    """lineage_change_counts, written by each run, is the feed grouped by run, namespace, kind
    and change; a run that changed nothing has no counts."""
    h = harness
    churned_history(h)
    assert h.sync() == 0  # nothing changed since the last run
    counts = sorted(map(hashable, h.rows(_COUNTS)))
    assert counts == sorted(map(hashable, h.rows(_FEED_COUNTS)))
    assert {row[5] for row in counts} == {"added", "changed", "removed"}
    assert {row[4] for row in counts} >= {"column", "column_edge", "job", "table"}
    runs = h.rows("SELECT run_id FROM lineage_sync_runs ORDER BY run_id")
    assert {row[1] for row in counts} == {run for (run,) in runs[:-1]}
    # A run that closed no version of a kind is counted without looking for predecessors:
    # the first run, and later ones that only added rows of some kind, are among those above.
    counted = {(row[1], row[4]) for row in counts}
    only_added = counted - {(row[1], row[4]) for row in counts if row[5] != "added"}
    assert {run for run, _ in only_added} - {runs[0][0]}
    week = h.rows(
        "SELECT entity_kind, change, SUM(changes) FROM lineage_change_counts "
        "WHERE changed_at >= :a GROUP BY entity_kind, change",
        a=run_instants(h)[0],
    )
    assert sum(int(n) for *_, n in week) == h.scalar("SELECT COUNT(*) FROM lineage_changes")


def test_runs_of_many_changes_count_them_with_hash_joins_the_same(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run counted the way a run of many changes is (PostgreSQL without nested loops):
    the same counts as the feed's."""
    monkeypatch.setattr(store, "MANY_CHANGED_ROWS", 1)
    h = harness
    churned_history(h)
    counts = sorted(map(hashable, h.rows(_COUNTS)))
    assert counts == sorted(map(hashable, h.rows(_FEED_COUNTS)))
    assert {row[5] for row in counts} == {"added", "changed", "removed"}


def test_0010_counts_the_runs_recorded_before_it(harness: Harness) -> None:
    h = harness
    churned_history(h)
    written = sorted(map(hashable, h.rows(_COUNTS)))
    h.engine.dispose()
    migrate.downgrade(h.url, "0009")
    assert "run_change_counts" not in _tables(h)
    migrate.upgrade(h.url)
    assert sorted(map(hashable, h.rows(_COUNTS))) == written


def _tables(h: Harness) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(h.engine).get_table_names())


def test_sqlite_answers_the_feed_by_run_and_by_window_through_the_time_indexes(
    sim_env: Simulator, sqlite_url: str, tmp_path: Path
) -> None:
    """SQLite's planner has no histograms: the guard term makes the time indexes serve the
    feed (and only the questions that say it). PostgreSQL's plans depend on the table sizes;
    bench/bench_history.py measures them on a year of history."""
    h = Harness(sim_env, sqlite_url, write_config(tmp_path / "c.toml", sim_env, sqlite_url))
    churned_history(h)
    instants = run_instants(h)
    questions = {
        "by run": ("SELECT * FROM lineage_changes WHERE run_id = 3", {}),
        "by window": (
            "SELECT * FROM lineage_changes WHERE changed_at >= :a AND changed_at < :b",
            {"a": instants[2], "b": instants[4]},
        ),
    }
    with h.engine.connect() as conn:
        for name, (sql, params) in questions.items():
            plan = "\n".join(
                str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql), params)
            )
            for table in ("column_versions", "column_edge_versions", "job_versions"):
                uses = [f"ix_{table}_valid_from", f"ix_{table}_valid_to"]
                assert all(index in plan for index in uses), (name, table, plan)
            # A predecessor is found by its end, not by walking its entity's versions (0010).
            assert "_fk=?) LEFT-JOIN" not in plan, plan
        for kind in ("column", "table", "job"):
            sql = change_rows_sql(kind, False, False, "sqlite", 1)
            params = {"lo": instants[2], "hi": instants[4], "t1": instants[2], "t2": instants[4]}
            params["ns0"] = h.scalar("SELECT MIN(id) FROM namespaces")
            plan = "\n".join(
                str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql), params)
            )
            table = f"{kind}_versions"
            assert f"SCAN {table}" not in plan and f"ix_{table}_valid_to" in plan, (kind, plan)


def test_sqlite_times_written_without_their_fraction_are_repaired(
    sim_env: Simulator, sqlite_url: str, tmp_path: Path
) -> None:
    """Releases before 0009 wrote a bulk-inserted `valid_from` of a whole second without its
    `.000000`: the upgrade gives it back, so it equals the `valid_to` before it."""
    h = Harness(sim_env, sqlite_url, write_config(tmp_path / "c.toml", sim_env, sqlite_url))
    assert h.sync() == 0
    h.engine.dispose()
    migrate.downgrade(h.url, "0008")
    with h.engine.begin() as conn:
        conn.execute(text("UPDATE column_versions SET valid_from = '2026-01-01 00:00:00'"))
    h.engine.dispose()
    migrate.upgrade(h.url)
    assert h.rows("SELECT DISTINCT valid_from FROM column_versions") == [
        ("2026-01-01 00:00:00.000000",)
    ]
