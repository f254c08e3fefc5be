"""Early staging: rows staged while the fetch goes on end where a diff at the end would,
including entities that several jobs report differently, failures and fallbacks; on both
databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import (
    NS,
    WORKSPACE_ID,
    Harness,
    assert_consistent,
    history_count,
    snapshot,
    with_job,
)
from sqlalchemy import text

from exporter import early, sync
from exporter.simulator import World, WorldSize


@pytest.fixture
def world() -> World:
    # More changed deployments than FEW_CHANGES: a first sync stages them early.
    return World(WORKSPACE_ID, seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=20))


@pytest.fixture
def early_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Stage each contribution as it arrives; returns the size of every early staging."""
    monkeypatch.setattr(early, "MIN_BATCH", 1)
    sizes: list[int] = []
    real_write = early.EarlyStager._write

    def spy(self: early.EarlyStager, batch: list[Any]) -> None:
        sizes.append(len(batch))
        real_write(self, batch)

    monkeypatch.setattr(early.EarlyStager, "_write", spy)
    return sizes


def test_a_first_sync_stages_early_and_ends_consistent(
    harness: Harness, early_writes: list[int]
) -> None:
    assert harness.sync() == 0
    jobs = sum(len(with_job(harness.world, ns)) for ns in harness.world.namespaces)
    assert sum(early_writes) == jobs  # every contribution was new, so each was staged early
    assert len(early_writes) > 1  # ...in several writes, while the fetch went on
    assert_consistent(harness)
    run = harness.last_run()
    assert run["status"] == "succeeded"
    assert run["rows_added"] == history_count(harness)  # every version the run opened

    state, count = snapshot(harness), history_count(harness)
    early_writes.clear()
    assert harness.sync() == 0  # unchanged: nothing is staged or written
    assert early_writes == [] and history_count(harness) == count
    assert snapshot(harness) == state


def test_postgresql_creates_entities_as_the_fetch_goes_on(
    harness: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's stager creates each batch's tables, columns and edges in the run's
    transaction as it stages them (the last response leaves only the diff); SQLite's writes
    nothing but temporary tables."""
    from exporter.staging import Staging

    real_add = Staging.add
    seen: list[tuple[str | None, int]] = []  # (creating_in, columns the stager's transaction has)

    def spy(self: Staging, contributions: Any, creating_in: str | None = None) -> None:
        real_add(self, contributions, creating_in)
        if threading.current_thread().name == "early-stager":
            columns = self._conn.execute(text("SELECT COUNT(*) FROM columns")).scalar_one()
            seen.append((creating_in, columns))

    monkeypatch.setattr(Staging, "add", spy)
    assert harness.sync() == 0
    assert len(seen) == len(early_writes) > 1
    created = [columns for _, columns in seen]
    if harness.engine.dialect.name == "postgresql":
        assert {workspace for workspace, _ in seen} == {WORKSPACE_ID}
        assert 0 < created[0] < created[-1] and created == sorted(created)
        assert created[-1] == harness.scalar("SELECT COUNT(*) FROM columns")
    else:
        assert {workspace for workspace, _ in seen} == {None} and set(created) == {0}
    assert_consistent(harness)


def test_later_syncs_with_many_changes_end_where_a_whole_diff_would(
    harness: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "FEW_CHANGES", 0)  # every change counts as many
    monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    assert harness.sync() == 0
    for _ in range(5):
        assert harness.world.advance(8)
        early_writes.clear()
        before = history_count(harness)
        assert harness.sync() == 0
        assert early_writes, "nothing was staged early"
        run = harness.last_run()
        assert run["rows_added"] == history_count(harness) - before  # the counts are the rows'
        assert_consistent(harness)


def shared_table_body(world: World, namespace: str, job_id: str, connector: str) -> Any:
    """The job's real lineage plus a table `shared.db.conflict` described its own way."""
    deployment = world.find_job(namespace, job_id)
    assert deployment is not None
    data = world.lineage(namespace, deployment, job_id)
    columns = [{"id": f"c-{connector}", "columnName": "id", "columnType": connector.upper()}]
    data["nodes"].append(
        {
            "catalogName": "shared",
            "databaseName": "db",
            "connector": connector,
            "tables": [{"id": f"t-{connector}", "tableName": "conflict", "columns": columns}],
        }
    )
    return {"requestId": "r", "success": True, "httpCode": 200, "data": data}


@pytest.mark.parametrize("batch", [1, 100], ids=["across-batches", "in-one-batch"])
def test_an_entity_two_jobs_describe_differently_ends_with_the_winner(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(early, "MIN_BATCH", batch)
    first, second = sorted(with_job(harness.world), key=lambda d: d.id)[:2]
    assert first.current_job is not None and second.current_job is not None
    for d, connector in ((first, "kafka"), (second, "jdbc")):
        job_id = d.current_job.id  # type: ignore[union-attr]
        harness.sim.faults.job_bodies[job_id] = shared_table_body(
            harness.world, NS, job_id, connector
        )

    # Deliver contributions in deployment order, so the one the merge ranks lower (same fetch
    # instant, smaller deployment ID) is staged first.
    offered: list[tuple[Any, Any]] = []
    real_offer, real_finish = early.EarlyStager.offer, early.EarlyStager.finish

    def hold(self: early.EarlyStager, contribution: Any, digested: Any) -> None:
        offered.append((contribution, digested))

    def in_order(self: early.EarlyStager) -> Any:
        for contribution, digested in sorted(offered, key=lambda o: o[0].deployment_id):
            real_offer(self, contribution, digested)
        return real_finish(self)

    monkeypatch.setattr(early.EarlyStager, "offer", hold)
    monkeypatch.setattr(early.EarlyStager, "finish", in_order)

    assert harness.sync() == 0
    table = harness.rows(
        "SELECT connector FROM lineage_tables_current WHERE qualified_name = 'shared.db.conflict'"
    )
    column = harness.rows(
        "SELECT column_type FROM lineage_columns_current "
        "WHERE qualified_name = 'shared.db.conflict.id'"
    )
    assert table == [("jdbc",)] and column == [("JDBC",)]  # the larger deployment ID won
    assert_consistent(harness)


def test_a_namespace_failing_after_its_rows_were_staged_changes_nothing_there(
    harness: Harness,
    early_writes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from exporter import store
    from exporter.api import client as client_module
    from exporter.api.client import FlinkClient
    from exporter.errors import ApiContext, ApiError

    failing = "namespace-1"
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    written = threading.Event()  # some of the failing namespace's rows are staged
    real_write = early.EarlyStager._write

    def signal(self: early.EarlyStager, batch: list[Any]) -> None:
        real_write(self, batch)
        if any(contribution.namespace == failing for contribution, _ in batch):
            written.set()

    monkeypatch.setattr(early.EarlyStager, "_write", signal)
    real_pages = FlinkClient.iter_deployment_pages

    def pages_then_failure(self: FlinkClient, namespace: str) -> Iterator[list[Any]]:
        for index, page in enumerate(real_pages(self, namespace)):
            if namespace == failing and index == 2:
                assert written.wait(10), "nothing of the namespace was staged early"
                raise ApiError(ApiContext(WORKSPACE_ID, namespace), "ListDeployments", status=500)
            yield page

    monkeypatch.setattr(FlinkClient, "iter_deployment_pages", pages_then_failure)
    harness.sync()
    assert "writing again without the early writes" in capsys.readouterr().err
    assert harness.last_run()["status"] == "partial"
    after = snapshot(harness)
    assert not any(r[0] == failing for rows in after.values() for r in rows)
    assert after["columns"], "the namespace that listed was written"
    with harness.engine.connect() as conn:
        assert {ns for ns, _ in store.live_contributions(conn, WORKSPACE_ID)} == {NS}
    assert_consistent(harness)


def test_a_database_error_while_staging_fails_the_run_and_writes_nothing(
    harness: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from exporter.staging import Staging

    real_add = Staging.add

    def fail_in_stager(self: Staging, contributions: Any, creating_in: str | None = None) -> None:
        if threading.current_thread().name == "early-stager":
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        real_add(self, contributions, creating_in)

    monkeypatch.setattr(Staging, "add", fail_in_stager)
    assert harness.sync() != 0
    assert early_writes
    run = harness.last_run()
    assert run["status"] == "failed" and "database error" in str(run["error_summary"])
    assert history_count(harness) == 0
    with harness.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM contributions")).scalar() == 0


@pytest.mark.parametrize("near_end", [True, False])
def test_stagings_take_what_has_arrived_once_the_fetch_nears_its_end(
    harness: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch, near_end: bool
) -> None:
    from exporter.extract import FetchCount

    monkeypatch.setattr(early, "MIN_BATCH", 10**6)  # more than the workspace holds
    if not near_end:  # as if most of a huge workspace were still being fetched
        monkeypatch.setattr(FetchCount, "outstanding", lambda self: 10**6)
    assert harness.sync() == 0
    jobs = sum(len(with_job(harness.world, ns)) for ns in harness.world.namespaces)
    assert sum(early_writes) == jobs
    if near_end:
        assert len(early_writes) > 1  # staged while the fetch went on
    else:
        assert early_writes == [jobs]  # one staging, when the fetch had ended
    assert_consistent(harness)


def test_a_stop_after_early_staging_rolls_it_back(
    harness: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import workspace_settings

    monkeypatch.setattr(sync, "FEW_CHANGES", 0)  # stage from the first change on
    monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    harness.sim.faults.latency = 0.05  # so that the fetch is still going on
    stop = threading.Event()
    real_write = early.EarlyStager._write

    def stop_after_first(self: early.EarlyStager, batch: list[Any]) -> None:
        real_write(self, batch)
        stop.set()  # as SIGTERM would, while the fetch still goes on

    monkeypatch.setattr(early.EarlyStager, "_write", stop_after_first)
    summary = sync.sync_workspace(harness.engine, workspace_settings(harness.sim), stop=stop)
    assert summary.status == "failed" and "stopped while fetching" in summary.errors[0]
    assert early_writes, "nothing was staged early"
    assert history_count(harness) == 0
    with harness.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM contributions")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM columns")).scalar() == 0
    assert harness.last_run()["status"] == "failed"


def test_staging_on_sqlite_locks_nothing_while_the_fetch_goes_on(
    sqlite_url: str, sim_env: Any, tmp_path: Any, early_writes: list[int], monkeypatch: Any
) -> None:
    """Another writer of the file (another workspace's sync, say) commits while this sync
    stages: neither waits for the other, and this sync's write at the end still succeeds."""
    from conftest import write_config

    from exporter.database import make_engine

    h = Harness(sim_env, sqlite_url, write_config(tmp_path / "exporter.toml", sim_env, sqlite_url))
    other = make_engine(sqlite_url)
    committed: list[bool] = []
    real_write = early.EarlyStager._write

    def write_elsewhere(self: early.EarlyStager, batch: list[Any]) -> None:
        real_write(self, batch)
        if not committed:
            with other.begin() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout=100")  # a lock would fail this at once
                conn.exec_driver_sql("INSERT INTO workspaces (id) VALUES ('another-workspace')")
            committed.append(True)

    monkeypatch.setattr(early.EarlyStager, "_write", write_elsewhere)
    try:
        assert h.sync() == 0
        assert committed and len(early_writes) > 1
        assert h.last_run()["status"] == "succeeded"
        assert_consistent(h)
    finally:
        other.dispose()
        h.engine.dispose()
