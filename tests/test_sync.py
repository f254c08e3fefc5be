"""Sync semantics, end to end: the CLI against the simulator over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    NS,
    Harness,
    assert_consistent,
    dangling_keys,
    hashable,
    history_count,
    snapshot,
    with_job,
)

from exporter import database
from exporter.api.wire import Deployment, Job
from exporter.extract import DeploymentFetch, NamespaceFetch
from exporter.simulator.world import SimColumn, SimDeployment, World
from exporter.sync import plan_contributions


def sink_name(world: World, d: SimDeployment) -> str:
    return world.namespaces[d.namespace].tables[d.sink].qualified_name


# -- initial load and idempotence --------------------------------------------------------------


def test_initial_load_matches_the_api(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.sync() == 0
    world = harness.world
    expected_tables, expected_jobs = set(), set()
    for ns in world.namespaces.values():
        for d in ns.deployments.values():
            job = d.current_job
            if job is None:
                continue
            expected_jobs.add((ns.name, d.id, job.id))
            for table_id in [*d.sources, d.sink]:
                expected_tables.add((ns.name, ns.tables[table_id].qualified_name, ""))
            if d.temporary is not None:
                expected_tables.add((ns.name, d.temporary.qualified_name, d.id))
    tables = harness.rows(
        "SELECT namespace, qualified_name, owner_deployment_id FROM lineage_tables_current"
    )
    assert set(tables) == expected_tables and len(tables) == len(expected_tables)
    jobs = harness.rows("SELECT namespace, deployment_id, job_id FROM lineage_jobs_current")
    assert set(jobs) == expected_jobs
    run = harness.last_run()
    assert run["status"] == "succeeded" and run["jobs_failed"] == 0
    assert run["jobs_total"] == len(expected_jobs)
    out = capsys.readouterr().out
    assert f"{world.workspace_id}: succeeded" in out and "rows added" in out


def test_unchanged_resync_adds_no_rows(harness: Harness) -> None:
    assert harness.sync() == 0
    before, state = history_count(harness), snapshot(harness)
    assert harness.sync() == 0
    assert history_count(harness) == before
    assert snapshot(harness) == state
    run = harness.last_run()
    assert (run["rows_added"], run["rows_closed"]) == (0, 0)


def test_edges_between_jobs_resolve_to_names(harness: Harness) -> None:
    world = harness.world
    d = with_job(world)[0]
    d.endpoint_style = "id"  # endpoints sent as IDs must come out as qualified names
    d.temporary = None
    d.external_source = None
    assert harness.sync() == 0
    ns = world.namespaces[NS]
    job = d.current_job
    assert job is not None
    edges = harness.rows(
        "SELECT source_name, destination_name FROM lineage_table_edges_current WHERE job_id = :j",
        j=job.id,
    )
    assert set(edges) == {(ns.tables[s].qualified_name, sink_name(world, d)) for s in d.sources}
    sink = ns.tables[d.sink]
    column_edges = harness.rows(
        "SELECT destination_name FROM lineage_column_edges_current WHERE job_id = :j", j=job.id
    )
    assert {r[0] for r in column_edges} == {f"{sink.qualified_name}.{c.name}" for c in sink.columns}


# -- every kind of change ----------------------------------------------------------------------


def test_every_kind_of_change(harness: Harness) -> None:
    world = harness.world
    ns = world.namespaces[NS]
    d = with_job(world)[0]
    sink = ns.tables[d.sink]
    assert harness.sync() == 0

    def versions(sql: str, **params: object) -> list[tuple[object, ...]]:
        return harness.rows(sql + " ORDER BY valid_from", **params)

    column = sink.columns[0]
    column.type = "VARCHAR(99)"
    sink.columns.append(SimColumn("c-new", "brand_new", "INT", True, "added", 1_700_000_000))
    dropped = sink.columns.pop(1)
    sink.with_["with.mode"] = "changed-mode"
    d.properties["owner"] = "someone-else"
    assert harness.sync() == 0

    col_sql = (
        "SELECT column_type, valid_to IS NULL FROM lineage_columns_history "
        "WHERE qualified_name = :q AND owner_deployment_id = ''"
    )
    old_type, new_type = versions(col_sql, q=f"{sink.qualified_name}.{column.name}")
    assert old_type[1] == 0 and new_type == ("VARCHAR(99)", 1)
    assert versions(col_sql, q=f"{sink.qualified_name}.brand_new") == [("INT", 1)]
    assert [r[1] for r in versions(col_sql, q=f"{sink.qualified_name}.{dropped.name}")] == [0]

    with_rows = versions(
        "SELECT with_options, valid_to IS NULL FROM lineage_tables_history "
        "WHERE qualified_name = :q AND owner_deployment_id = ''",
        q=sink.qualified_name,
    )
    assert len(with_rows) == 2 and with_rows[-1][1] == 1
    assert hashable(with_rows[-1])[0] != hashable(with_rows[0])[0]
    assert "changed-mode" in str(with_rows[-1][0])

    job_rows = versions(
        "SELECT properties, valid_to IS NULL FROM lineage_jobs_history WHERE deployment_id = :d",
        d=d.id,
    )
    assert len(job_rows) == 2 and "someone-else" in str(job_rows[-1][0])


def test_edge_removed_and_reappearing(harness: Harness) -> None:
    world = harness.world
    d = with_job(world)[0]
    d.temporary = None
    ns = world.namespaces[NS]
    extra = next(t for t in sorted(ns.tables) if t not in d.sources and t != d.sink)
    d.sources.append(extra)
    assert harness.sync() == 0
    edge = (ns.tables[extra].qualified_name, sink_name(world, d))
    sql = (
        "SELECT valid_from, valid_to FROM lineage_table_edges_history "
        "WHERE source_name = :s AND destination_name = :t ORDER BY valid_from"
    )

    d.sources.remove(extra)
    assert harness.sync() == 0
    [(_, closed_at)] = harness.rows(sql, s=edge[0], t=edge[1])
    assert closed_at is not None

    d.sources.append(extra)
    assert harness.sync() == 0
    periods = harness.rows(sql, s=edge[0], t=edge[1])
    assert len(periods) == 2
    assert periods[0][1] is not None and periods[1][1] is None
    assert periods[1][0] > periods[0][1]  # type: ignore[operator]


def test_deployment_deleted_and_added(harness: Harness) -> None:
    world = harness.world
    ns = world.namespaces[NS]
    victim = with_job(world)[0]
    assert harness.sync() == 0
    del ns.deployments[victim.id]
    newcomer = world._generate_deployment(ns)
    if not newcomer.jobs:
        world._add_job(newcomer)
    ns.deployments[newcomer.id] = newcomer
    assert harness.sync() == 0
    current = {r[0] for r in harness.rows("SELECT deployment_id FROM lineage_jobs_current")}
    assert victim.id not in current and newcomer.id in current
    victim_job = victim.current_job
    assert victim_job is not None
    assert harness.rows(
        "SELECT COUNT(*) FROM lineage_table_edges_current WHERE job_id = :j", j=victim_job.id
    ) == [(0,)]
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_jobs_history "
            "WHERE deployment_id = :d AND valid_to IS NOT NULL",
            d=victim.id,
        )
        == 1
    )


def test_job_restart_moves_edges_to_the_new_job(harness: Harness) -> None:
    world = harness.world
    d = with_job(world)[0]
    assert harness.sync() == 0
    old = d.current_job
    new = world._add_job(d)
    assert harness.sync() == 0
    assert old is not None
    assert harness.rows(
        "SELECT job_id FROM lineage_jobs_current WHERE deployment_id = :d", d=d.id
    ) == [(new.id,)]
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_table_edges_current WHERE job_id = :j", j=old.id
        )
        == 0
    )
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_table_edges_current WHERE job_id = :j", j=new.id
        )
        > 0
    )


# -- failures never lose history ---------------------------------------------------------------


def test_failing_job_keeps_its_last_good_lineage(harness: Harness) -> None:
    world = harness.world
    d = with_job(world)[0]
    d.temporary = None
    job = d.current_job
    assert job is not None
    assert harness.sync() == 0
    before = snapshot(harness)

    harness.sim.faults.job_faults[job.id] = "error"
    d.properties["owner"] = "changed-while-failing"
    removed_source = d.sources[0]
    d.sources.append(
        next(t for t in sorted(world.namespaces[NS].tables) if t not in d.sources and t != d.sink)
    )
    d.sources.remove(removed_source)
    assert harness.sync() == 1
    run = harness.last_run()
    assert run["status"] == "partial" and run["jobs_failed"] == 1
    assert job.id in str(run["error_summary"]) and d.id in str(run["error_summary"])
    assert snapshot(harness) == before  # nothing closed, nothing changed

    del harness.sim.faults.job_faults[job.id]
    assert harness.sync() == 0
    props = harness.scalar(
        "SELECT properties FROM lineage_jobs_current WHERE deployment_id = :d", d=d.id
    )
    assert "changed-while-failing" in str(props)
    removed_edge = harness.rows(
        "SELECT COUNT(*) FROM lineage_table_edges_current WHERE source_name = :s AND job_id = :j",
        s=world.namespaces[NS].tables[removed_source].qualified_name,
        j=job.id,
    )
    assert removed_edge == [(0,)]


def test_failed_namespace_listing_changes_nothing_there(harness: Harness) -> None:
    world = harness.world
    other = sorted(world.namespaces)[1]
    assert harness.sync() == 0
    before = snapshot(harness)
    harness.sim.faults.failing_namespaces.add(other)
    victim = with_job(world, other)[0]
    del world.namespaces[other].deployments[victim.id]
    assert harness.sync() == 1
    assert harness.last_run()["status"] == "partial"
    assert snapshot(harness) == before


def test_every_namespace_failing_is_a_failed_run(harness: Harness) -> None:
    assert harness.sync() == 0
    before = snapshot(harness)
    harness.sim.faults.failing_namespaces.update(harness.world.namespaces)
    assert harness.sync() == 1
    assert harness.last_run()["status"] == "failed"
    assert snapshot(harness) == before


def test_crash_mid_write_leaves_the_previous_state(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter import store

    assert harness.sync() == 0
    before, count = snapshot(harness), history_count(harness)
    harness.world.advance(6)
    real_open_staged = store._open_staged
    calls = {"n": 0}

    def crash_on_third_staged_kind(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # closes, tables, jobs, columns and table edges are written
            raise RuntimeError("simulated crash mid-write")
        real_open_staged(*args)

    monkeypatch.setattr(store, "_open_staged", crash_on_third_staged_kind)
    with pytest.raises(RuntimeError, match="simulated crash"):
        harness.sync()
    assert calls["n"] == 3
    assert snapshot(harness) == before and history_count(harness) == count
    assert harness.last_run()["status"] == "failed"

    monkeypatch.setattr(store, "_open_staged", real_open_staged)
    assert harness.sync() == 0
    assert snapshot(harness) != before


# -- identity rules ----------------------------------------------------------------------------


def test_temporary_tables_of_the_same_name_in_two_jobs(harness: Harness) -> None:
    world = harness.world
    first, second = with_job(world)[:2]
    for d, width in ((first, 2), (second, 3)):
        temp = world._generate_table(0, temporary=True)
        temp.name = "tmp_same"
        temp.columns = temp.columns[:width] or temp.columns
        while len(temp.columns) < width:
            temp.columns.append(world._generate_column(len(temp.columns)))
        d.temporary = temp
    assert harness.sync() == 0
    rows = harness.rows(
        "SELECT owner_deployment_id, COUNT(*) FROM lineage_columns_current "
        "WHERE table_name = 'tmp_same' GROUP BY owner_deployment_id ORDER BY 1"
    )
    assert rows == sorted([(first.id, 2), (second.id, 3)])
    owners = harness.rows(
        "SELECT destination_owner FROM lineage_table_edges_current "
        "WHERE destination_name = 'default_catalog.default_database.tmp_same'"
    )
    assert {r[0] for r in owners} == {first.id, second.id}


def test_unresolvable_endpoint_is_kept_raw(harness: Harness) -> None:
    d = with_job(harness.world)[0]
    d.external_source = "sls://project/logstore-that-is-no-table"
    assert harness.sync() == 0
    assert harness.rows(
        "SELECT destination_name FROM lineage_table_edges_current WHERE source_name = :s",
        s=d.external_source,
    ) == [(sink_name(harness.world, d),)]
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_column_edges_current WHERE source_name = :s",
            s=f"{d.external_source}#payload",
        )
        == 1
    )


def test_shared_table_lives_while_any_job_reports_it(harness: Harness) -> None:
    world = harness.world
    ns = world.namespaces[NS]
    first, second = with_job(world)[:2]
    sinks = {d.sink for d in ns.deployments.values()}
    shared = next(t for t in sorted(ns.tables) if t not in sinks)
    for d in (first, second):
        if shared not in d.sources:
            d.sources.append(shared)
    for d in ns.deployments.values():  # only these two report it
        if d not in (first, second) and shared in d.sources:
            d.sources.remove(shared)
    name = ns.tables[shared].qualified_name
    assert harness.sync() == 0
    first.sources.remove(shared)
    assert harness.sync() == 0
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_tables_current WHERE qualified_name = :q", q=name
        )
        == 1
    )

    # The latest successful fetch decides the attributes: second keeps an older payload.
    second_job = second.current_job
    assert second_job is not None
    harness.sim.faults.job_faults[second_job.id] = "error"
    first.sources.append(shared)
    ns.tables[shared].with_["with.mode"] = "newest"
    assert harness.sync() == 1
    with_options = harness.scalar(
        "SELECT with_options FROM lineage_tables_current WHERE qualified_name = :q", q=name
    )
    assert "newest" in str(with_options)

    first.sources.remove(shared)
    del ns.deployments[second.id]
    del harness.sim.faults.job_faults[second_job.id]
    assert harness.sync() == 0
    assert (
        harness.scalar(
            "SELECT COUNT(*) FROM lineage_tables_current WHERE qualified_name = :q", q=name
        )
        == 0
    )


# -- time travel -------------------------------------------------------------------------------


def test_as_of_earlier_instants_equals_what_was_current(harness: Harness) -> None:
    instants, snapshots = [], []
    for _ in range(4):
        assert harness.sync() == 0
        instants.append(harness.last_run()["started_at"])
        snapshots.append(snapshot(harness))
        harness.world.advance(4)
    assert len({json.dumps(sorted(map(str, s["columns"]))) for s in snapshots}) > 1
    for instant, expected in zip(instants, snapshots, strict=True):
        assert snapshot(harness, at=instant) == expected


def test_raw_payloads_are_kept_for_audit(harness: Harness) -> None:
    assert harness.sync() == 0
    d = with_job(harness.world)[0]
    job = d.current_job
    assert job is not None
    payload = harness.scalar(
        "SELECT c.payload FROM contributions c JOIN deployments d ON d.id = c.deployment_fk "
        "WHERE d.deployment_id = :d",
        d=d.id,
    )
    data = json.loads(payload) if isinstance(payload, str) else payload
    assert data["job_id"] == job.id and data["lineage"]["success"] is True
    assert data["lineage"]["data"]["nodes"]

    # A changed contribution's payload is replaced, stored as JSON (not as a JSON string).
    from exporter import store

    d.properties["owner"] = "audited-change"
    assert harness.sync() == 0
    key = (NS, d.id)
    with harness.engine.connect() as conn:
        stored = store.live_contributions(conn, harness.world.workspace_id, with_payload_for={key})
    payload_now = stored[key].payload
    assert isinstance(payload_now, dict)
    assert "audited-change" in json.dumps(payload_now["lineage"]["data"]["jobInfos"])


# -- the plan, as a pure function --------------------------------------------------------------


def _fetch(ns: str, dep: str, ok: bool, job: bool = True) -> DeploymentFetch:
    from exporter.api.wire import LineageResponse
    from exporter.errors import ApiContext, ApiError

    deployment = Deployment(deploymentId=dep)
    if not job:
        return DeploymentFetch(ns, deployment)
    if ok:
        return DeploymentFetch(ns, deployment, Job(jobId="j"), LineageResponse(data={}))
    return DeploymentFetch(ns, deployment, error=ApiError(ApiContext("w"), "GetLineageInfo"))


def test_plan_replaces_keeps_and_removes() -> None:
    from exporter.errors import ApiContext, ApiError

    results = [
        NamespaceFetch(
            "a",
            deployments=[
                _fetch("a", "ok", True),
                _fetch("a", "bad", False),
                _fetch("a", "nojob", True, job=False),
            ],
        ),
        NamespaceFetch("b", listing_error=ApiError(ApiContext("w"), "ListDeployments")),
    ]
    stored = {("a", "ok"), ("a", "bad"), ("a", "nojob"), ("a", "gone"), ("b", "x"), ("c", "y")}
    plan = plan_contributions(results, stored)
    assert [f.deployment.deployment_id for f in plan.fetched] == ["ok"]
    assert plan.kept == {("a", "bad"), ("b", "x"), ("c", "y")}
    assert plan.removed == {("a", "nojob"), ("a", "gone")}


def test_a_sync_keeps_within_the_configured_concurrency(
    sim_env: Any, sqlite_url: str, tmp_path: Any
) -> None:
    from conftest import write_config

    from exporter.cli import main

    sim_env.faults.latency = 0.02  # requests overlap, so the limit is what bounds them
    config = write_config(tmp_path / "c.toml", sim_env, sqlite_url, concurrency="3")
    assert main(["--config", str(config), "sync"]) == 0
    assert sim_env.stats.max_in_flight == 3  # reached, never exceeded


def test_retention_prunes_only_what_is_configured(sim_env: Any, db_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from conftest import workspace_settings

    from exporter.config import RetentionSettings
    from exporter.sync import sync_workspace

    engine = database.make_engine(db_url)
    workspace = workspace_settings(sim_env)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def sync_at(at: datetime, retention: RetentionSettings | None = None) -> None:
        summary = sync_workspace(engine, workspace, clock=lambda: at, retention=retention)
        assert summary.status == "succeeded", summary.errors

    def counts() -> tuple[int, int, int]:
        with engine.connect() as conn:
            payloads = conn.exec_driver_sql("SELECT COUNT(*) FROM contributions").scalar()
            closed = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM lineage_column_edges_history WHERE valid_to IS NOT NULL"
            ).scalar()
            current = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM lineage_column_edges_current"
            ).scalar()
        return int(payloads or 0), int(closed or 0), int(current or 0)

    sync_at(start)
    gone = with_job(sim_env.world)[0]
    del sim_env.world.namespaces[NS].deployments[gone.id]
    sync_at(start + timedelta(hours=1))  # removes its contribution and closes its rows
    before = counts()
    assert before[1] > 0
    sync_at(start + timedelta(days=5))  # nothing configured: nothing pruned
    assert counts() == before
    sync_at(start + timedelta(days=5, hours=1), RetentionSettings(payload_days=30))
    assert counts() == before  # not old enough yet
    with engine.connect() as conn:
        change_counts = conn.exec_driver_sql("SELECT * FROM lineage_change_counts").all()
    assert any(row.change == "removed" for row in change_counts)
    sync_at(start + timedelta(days=6), RetentionSettings(payload_days=3, history_days=3))
    with engine.connect() as conn:  # each run's record of what it changed outlives its versions
        assert conn.exec_driver_sql("SELECT * FROM lineage_change_counts").all() == change_counts
    payloads, closed, current = counts()
    assert payloads == before[0] - 1  # the removed deployment's payload
    assert closed == 0 and current == before[2]  # old history gone, the current state kept
    assert dangling_keys(engine) == {}  # pruning deletes versions, never what they name
    engine.dispose()


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each diff a run made: the keys `store.load_current` was asked for (a keyed diff), or None
    for a whole-state diff by the database (`Staging.apply`)."""
    from exporter import store
    from exporter.staging import Staging

    calls: list[object] = []
    real_load_current, real_apply = store.load_current, Staging.apply

    def spy(conn: Any, workspace_id: str, only: Any = None) -> Any:
        calls.append(only)
        return real_load_current(conn, workspace_id, only)

    def spy_apply(self: Staging, *args: Any) -> Any:
        calls.append(None)
        return real_apply(self, *args)

    monkeypatch.setattr(store, "load_current", spy)
    monkeypatch.setattr(Staging, "apply", spy_apply)
    return calls


@pytest.mark.parametrize("changes", ["few", "many"])
def test_diffing_only_the_changed_keys_ends_where_a_whole_diff_would(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, changes: str, lookups: list[object]
) -> None:
    from exporter import sync

    if changes == "many":  # every change counts as many: the database diffs the whole state
        monkeypatch.setattr(sync, "FEW_CHANGES", 0)
        monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    assert harness.sync() == 0
    for _ in range(6):
        assert harness.world.advance(3)
        lookups.clear()
        assert harness.sync() == 0
        assert lookups, "the run wrote nothing"
        assert (lookups[-1] is not None) == (changes == "few")

        assert_consistent(harness)  # nothing differs from what the contributions say


@pytest.mark.parametrize("changes", ["few", "many"])
def test_reordered_keys_rewrite_the_payload_but_no_history(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, changes: str
) -> None:
    """Also where the database compares the whole state: JSON attributes whose keys come in
    another order are the same attributes (SQLite compares JSON as text)."""
    from exporter import store, sync

    if changes == "many":
        monkeypatch.setattr(sync, "FEW_CHANGES", 0)
        monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    assert harness.sync() == 0
    d = with_job(harness.world)[0]
    key = (NS, d.id)
    workspace = harness.world.workspace_id
    with harness.engine.connect() as conn:
        before = store.live_contributions(conn, workspace, with_payload_for={key})[key]
    assert before.payload is not None

    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(v) for v in value]
        return value

    lineage = before.payload["lineage"]
    assert any(len(t["properties"]) > 1 for n in lineage["data"]["nodes"] for t in n["tables"])
    harness.sim.faults.job_bodies[before.job_id] = reversed_keys(lineage)
    assert harness.sync() == 0
    run = harness.last_run()
    assert (run["rows_added"], run["rows_closed"]) == (0, 0)
    with harness.engine.connect() as conn:
        after = store.live_contributions(conn, workspace, with_payload_for={key})[key]
    assert after.content_hash != before.content_hash  # the payload was rewritten, as sent
    assert after.payload == before.payload


def test_new_normalization_rules_make_the_next_sync_compare_everything(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, lookups: list[object]
) -> None:
    from exporter import sync
    from exporter.normalize import State

    real_normalize = sync.normalize

    def old_rules(job: Any, lineage: Any) -> State:  # made one row the current rules do not
        state = real_normalize(job, lineage)
        state["tables"][(job.namespace, "old", "rules", f"t_{job.deployment_id}", "")] = {
            "node_id": None,
            "table_uid": None,
            "connector": None,
            "is_temporary": False,
            "with_options": {},
            "properties": {},
        }
        return state

    rules = sync.ROWS_VERSION
    monkeypatch.setattr(sync, "normalize", old_rules)
    monkeypatch.setattr(sync, "ROWS_VERSION", rules - 1)
    assert harness.sync() == 0
    stale = "SELECT COUNT(*) FROM lineage_tables_current WHERE qualified_name LIKE 'old.rules.%'"
    jobs = sum(len(with_job(harness.world, ns)) for ns in harness.world.namespaces)
    assert harness.scalar(stale) == jobs

    monkeypatch.setattr(sync, "normalize", real_normalize)
    monkeypatch.setattr(sync, "ROWS_VERSION", rules)
    lookups.clear()
    assert harness.sync() == 0  # no payload changed, but the rules did
    assert lookups == [None]  # the whole current state was compared
    assert harness.scalar(stale) == 0
    assert harness.last_run()["rows_closed"] == jobs
    assert harness.last_run()["rows_added"] == 0

    lookups.clear()
    assert harness.sync() == 0  # same rules as the last run: nothing to compare
    assert lookups == []
