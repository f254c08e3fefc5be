"""Early writes (PostgreSQL): rows written while the fetch goes on end where a write at the end
would, including entities that several jobs report differently, failures and fallbacks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
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
    write_config,
)
from sqlalchemy import text

from exporter import early, store, sync
from exporter.simulator import Simulator, World, WorldSize


@pytest.fixture
def world() -> World:
    # More changed deployments than FEW_CHANGES: a first sync loads the state and writes early.
    return World(WORKSPACE_ID, seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=20))


@pytest.fixture
def pg(sim_env: Simulator, pg_url: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(sim_env, pg_url, write_config(tmp_path / "exporter.toml", sim_env, pg_url))
    yield h
    h.engine.dispose()


@pytest.fixture
def early_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Write each contribution as it arrives; returns the size of every early write."""
    monkeypatch.setattr(early, "MIN_BATCH", 1)
    sizes: list[int] = []
    real_write = early.EarlyWriter._write

    def spy(self: early.EarlyWriter, batch: list[Any]) -> None:
        sizes.append(len(batch))
        real_write(self, batch)

    monkeypatch.setattr(early.EarlyWriter, "_write", spy)
    return sizes


def test_a_first_sync_writes_early_and_ends_consistent(
    pg: Harness, early_writes: list[int]
) -> None:
    assert pg.sync() == 0
    jobs = sum(len(with_job(pg.world, ns)) for ns in pg.world.namespaces)
    assert sum(early_writes) == jobs  # every contribution was new, so each was written early
    assert len(early_writes) > 1  # ...in several writes, while the fetch went on
    assert_consistent(pg)
    run = pg.last_run()
    assert run["status"] == "succeeded"
    assert run["rows_added"] == history_count(pg)  # early rows are counted with the run's

    state, count = snapshot(pg), history_count(pg)
    early_writes.clear()
    assert pg.sync() == 0  # unchanged: nothing is written, early or late
    assert early_writes == [] and history_count(pg) == count and snapshot(pg) == state


def test_later_syncs_with_many_changes_end_where_a_whole_diff_would(
    pg: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "FEW_CHANGES", 0)  # every change counts as many
    monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    assert pg.sync() == 0
    for _ in range(5):
        assert pg.world.advance(8)
        early_writes.clear()
        assert pg.sync() == 0
        assert early_writes, "nothing was written early"
        assert_consistent(pg)


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


def test_an_entity_two_jobs_describe_differently_ends_with_the_winner(
    pg: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = sorted(with_job(pg.world), key=lambda d: d.id)[:2]
    assert first.current_job is not None and second.current_job is not None
    for d, connector in ((first, "kafka"), (second, "jdbc")):
        job_id = d.current_job.id  # type: ignore[union-attr]
        pg.sim.faults.job_bodies[job_id] = shared_table_body(pg.world, NS, job_id, connector)

    # Deliver contributions in deployment order, so the one the merge ranks lower (same fetch
    # instant, smaller deployment ID) is written first and must be corrected at the end.
    offered: list[tuple[Any, Any]] = []
    real_offer, real_finish = early.EarlyWriter.offer, early.EarlyWriter.finish

    def hold(self: early.EarlyWriter, contribution: Any, state: Any) -> None:
        offered.append((contribution, state))

    def in_order(self: early.EarlyWriter) -> Any:
        for contribution, state in sorted(offered, key=lambda o: o[0].deployment_id):
            real_offer(self, contribution, state)
        return real_finish(self)

    monkeypatch.setattr(early.EarlyWriter, "offer", hold)
    monkeypatch.setattr(early.EarlyWriter, "finish", in_order)
    corrected: list[Any] = []
    real_correct = store.correct_opened

    def spy(conn: Any, workspace_id: str, run_id: int, corrections: Any) -> None:
        corrected.append(corrections)
        real_correct(conn, workspace_id, run_id, corrections)

    monkeypatch.setattr(store, "correct_opened", spy)

    assert pg.sync() == 0
    assert early_writes
    assert [k for k, _ in corrected[0]["tables"]] == [(NS, "shared", "db", "conflict", "")]
    table = pg.rows(
        "SELECT connector FROM lineage_tables_current WHERE qualified_name = 'shared.db.conflict'"
    )
    column = pg.rows(
        "SELECT column_type FROM lineage_columns_current "
        "WHERE qualified_name = 'shared.db.conflict.id'"
    )
    assert table == [("jdbc",)] and column == [("JDBC",)]  # the larger deployment ID won
    assert_consistent(pg)


def test_a_namespace_failing_after_its_rows_were_written_changes_nothing_there(
    pg: Harness,
    early_writes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from exporter.api import client as client_module
    from exporter.api.client import FlinkClient
    from exporter.errors import ApiContext, ApiError

    failing = "namespace-1"
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    written = threading.Event()  # some of the failing namespace's rows are in the transaction
    real_write = early.EarlyWriter._write

    def signal(self: early.EarlyWriter, batch: list[Any]) -> None:
        real_write(self, batch)
        if any(contribution.namespace == failing for contribution, _ in batch):
            written.set()

    monkeypatch.setattr(early.EarlyWriter, "_write", signal)
    real_pages = FlinkClient.iter_deployment_pages

    def pages_then_failure(self: FlinkClient, namespace: str) -> Iterator[list[Any]]:
        for index, page in enumerate(real_pages(self, namespace)):
            if namespace == failing and index == 2:
                assert written.wait(10), "nothing of the namespace was written early"
                raise ApiError(ApiContext(WORKSPACE_ID, namespace), "ListDeployments", status=500)
            yield page

    monkeypatch.setattr(FlinkClient, "iter_deployment_pages", pages_then_failure)
    pg.sync()
    assert "writing again without the early writes" in capsys.readouterr().err
    assert pg.last_run()["status"] == "partial"
    after = snapshot(pg)
    assert not any(r[0] == failing for rows in after.values() for r in rows)
    assert after["columns"], "the namespace that listed was written"
    with pg.engine.connect() as conn:
        assert {ns for ns, _ in store.live_contributions(conn, WORKSPACE_ID)} == {NS}
    assert_consistent(pg)


def test_a_database_error_while_writing_early_fails_the_run_and_writes_nothing(
    pg: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    real_open = store.open_versions

    def fail_in_writer(*args: Any) -> None:
        if threading.current_thread().name == "early-writer":
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        real_open(*args)

    monkeypatch.setattr(store, "open_versions", fail_in_writer)
    assert pg.sync() != 0
    assert early_writes
    run = pg.last_run()
    assert run["status"] == "failed" and "database error" in str(run["error_summary"])
    assert history_count(pg) == 0
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM contributions")).scalar() == 0


@pytest.mark.parametrize("near_end", [True, False])
def test_writes_take_what_has_arrived_once_the_fetch_nears_its_end(
    pg: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch, near_end: bool
) -> None:
    from exporter.extract import FetchCount

    monkeypatch.setattr(early, "MIN_BATCH", 10**6)  # more than the workspace holds
    if not near_end:  # as if most of a huge workspace were still being fetched
        monkeypatch.setattr(FetchCount, "outstanding", lambda self: 10**6)
    assert pg.sync() == 0
    jobs = sum(len(with_job(pg.world, ns)) for ns in pg.world.namespaces)
    assert sum(early_writes) == jobs
    if near_end:
        assert len(early_writes) > 1  # written while the fetch went on
    else:
        assert early_writes == [jobs]  # one write, when the fetch had ended
    assert_consistent(pg)


def test_a_stop_after_early_writes_rolls_them_back(
    pg: Harness, early_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import workspace_settings

    monkeypatch.setattr(sync, "FEW_CHANGES", 0)  # write from the first change on
    monkeypatch.setattr(sync, "FEW_CHANGES_SHARE", 0.0)
    pg.sim.faults.latency = 0.05  # so that the fetch is still going on
    stop = threading.Event()
    real_write = early.EarlyWriter._write

    def stop_after_first(self: early.EarlyWriter, batch: list[Any]) -> None:
        real_write(self, batch)
        stop.set()  # as SIGTERM would, while the fetch still goes on

    monkeypatch.setattr(early.EarlyWriter, "_write", stop_after_first)
    summary = sync.sync_workspace(pg.engine, workspace_settings(pg.sim), stop=stop)
    assert summary.status == "failed" and "stopped while fetching" in summary.errors[0]
    assert early_writes, "nothing was written early"
    assert history_count(pg) == 0
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM contributions")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM columns")).scalar() == 0
    assert pg.last_run()["status"] == "failed"
