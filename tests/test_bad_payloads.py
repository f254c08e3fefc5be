"""The bad-payload matrix: one job's unusual body never stops its workspace, on both databases.

Each case is a real sync through the CLI against the simulator. A body the exporter cannot take
fails that job alone: the run is `partial`, the job is named in the summary, `error_summary`
and `lineage_job_failures`, and every other job is stored exactly as a reference database
stores it when that job's lineage is simply unavailable (HTTP 500), a path with its own tests.
A body it can take is stored the same way on SQLite and PostgreSQL (the reference is SQLite).
Once the API is fixed, the next run reaches the exact state.
"""

from __future__ import annotations

import json
import random
import sqlite3
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, assert_consistent, snapshot, write_config

from exporter.simulator import Simulator
from exporter.simulator.poison import HOSTILE, POISONS, STORED
from exporter.simulator.world import SimDeployment

NS = "default-namespace"


class Pair:
    """The database under test and a SQLite reference, synced against the same simulator."""

    def __init__(self, sim: Simulator, db_url: str, tmp_path: Path) -> None:
        ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
        from exporter import migrate

        migrate.upgrade(ref_url)
        self.sim = sim
        self.h = Harness(sim, db_url, write_config(tmp_path / "h.toml", sim, db_url))
        self.ref = Harness(sim, ref_url, write_config(tmp_path / "r.toml", sim, ref_url))

    def close(self) -> None:
        self.h.engine.dispose()
        self.ref.engine.dispose()


@pytest.fixture
def pair(sim_env: Simulator, db_url: str, tmp_path: Path) -> Iterator[Pair]:
    p = Pair(sim_env, db_url, tmp_path)
    yield p
    p.close()


def victim(sim: Simulator) -> SimDeployment:
    """A deployment of the first namespace with a job (after the world moved on)."""
    return next(d for d in sim.world.namespaces[NS].deployments.values() if d.jobs)


def job_of(deployment: SimDeployment) -> str:
    assert deployment.current_job is not None
    return deployment.current_job.id


def failures(h: Harness, run_id: object) -> list[tuple[object, ...]]:
    return h.rows(
        "SELECT namespace, deployment_id, deployment_name, job_id, stage, error "
        "FROM lineage_job_failures WHERE run_id = :run",
        run=run_id,
    )


# What each stored poison must look like in the views (on both databases).
STORED_CHECKS: dict[str, tuple[str, Any]] = {
    "nul-everywhere": (
        "SELECT COUNT(*) FROM lineage_columns_current WHERE column_name LIKE '%' || :fffd",
        lambda n: n > 0,
    ),
    "300-character-table-name": (
        "SELECT COUNT(*) FROM lineage_tables_current WHERE table_name = :long_table",
        lambda n: n == 1,
    ),
    "hostile-names": (
        "SELECT COUNT(*) FROM lineage_tables_current WHERE table_name = :hostile",
        lambda n: n == 1,
    ),
    "2-mb-value": ("SELECT properties FROM lineage_tables_current", None),
    "100-kb-column-type": (
        "SELECT MAX(LENGTH(column_type)) FROM lineage_columns_current",
        lambda n: n > 100_000,
    ),
    "lone-surrogate": (
        "SELECT COUNT(*) FROM lineage_columns_current WHERE description = :lone",
        lambda n: n == 1,
    ),
    "duplicate-keys": (
        "SELECT SUM(CASE WHEN table_name = 'second_name' THEN 1 ELSE 0 END) * 10 "
        "+ SUM(CASE WHEN table_name = 'first_name' THEN 1 ELSE 0 END) FROM lineage_tables_current",
        lambda n: n == 10,
    ),
    "table-listed-twice": (
        "SELECT COUNT(*) FROM lineage_columns_current WHERE column_name = 'only_in_the_twin'",
        lambda n: n == 1,
    ),
    "edge-of-another-job": (
        "SELECT COUNT(*) FROM lineage_table_edges_current WHERE job_id = 'another-job-id'",
        lambda n: n == 1,
    ),
    "huge-number": ("SELECT properties FROM lineage_tables_current", None),
}
PARAMS = {
    "fffd": "\ufffd",
    "long_table": "orders_" + "x" * 293,
    "hostile": HOSTILE,
    "lone": "before-\ufffd-after",
}


def check_stored(h: Harness, poison: str) -> None:
    sql, expected = STORED_CHECKS[poison]
    rows = [r[0] for r in h.rows(sql, **{k: v for k, v in PARAMS.items() if f":{k}" in sql})]
    if poison in ("2-mb-value", "huge-number"):
        props = [json.loads(p) if isinstance(p, str) else p for p in rows]
        if poison == "2-mb-value":
            assert any(len(p.get("huge", "")) == 2_000_000 for p in props)
        else:
            assert any("parallelism" in p and p["parallelism"] is None for p in props)
    else:
        assert expected(rows[0]), (poison, rows)
    # Nothing PostgreSQL could not hold was stored anywhere, on either database.
    for view in ("tables", "columns", "table_edges", "column_edges", "jobs"):
        for row in h.rows(f"SELECT * FROM lineage_{view}_current"):
            assert not any("\x00" in str(v) for v in row), (view, row)


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_bad_payload_matrix(poison: str, pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    h, ref, sim = pair.h, pair.ref, pair.sim
    assert h.sync() == 0 and ref.sync() == 0
    sim.world.advance(changes=6)  # the good jobs move on while one job goes bad
    deployment = victim(sim)
    job = job_of(deployment)
    sim.faults.poisoned[job] = poison
    capsys.readouterr()

    code = h.sync()
    out = capsys.readouterr().out
    run = h.last_run()
    if poison in STORED:
        assert (code, run["status"]) == (0, "succeeded"), run["error_summary"]
        assert failures(h, run["run_id"]) == []
        assert ref.sync() == 0  # the same body, stored the same way on SQLite
        check_stored(h, poison)
    else:
        assert (code, run["status"], run["jobs_failed"]) == (1, "partial", 1)
        [(namespace, dep_id, dep_name, job_id, stage, error)] = failures(h, run["run_id"])
        assert (namespace, dep_id, dep_name, job_id, stage) == (
            NS,
            deployment.id,
            deployment.name,
            job,
            "payload",
        )
        for name in (sim.world.workspace_id, NS, deployment.id, deployment.name, job):
            assert name in str(error) and name in str(run["error_summary"])
        assert f"failed: {NS}/{deployment.id} ({deployment.name}) job {job} [payload]" in out
        # The reference loses the same job's lineage the ordinary way (HTTP 500).
        sim.faults.poisoned.clear()
        sim.faults.job_faults[job] = "error"
        assert ref.sync() == 1
    assert snapshot(h) == snapshot(ref)
    assert_consistent(h)

    sim.faults.poisoned.clear()  # the API is fixed
    sim.faults.job_faults.clear()
    assert h.sync() == 0 and ref.sync() == 0
    assert h.last_run()["status"] == "succeeded"
    assert snapshot(h) == snapshot(ref)
    assert_consistent(h)


def test_one_poisoned_job_among_1000_fails_alone(
    sim_env: Simulator, db_url: str, tmp_path: Path
) -> None:
    from exporter.simulator import World, WorldSize

    world = World("ws-test", seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=500))
    sim_env.world = world
    pair = Pair(sim_env, db_url, tmp_path)
    try:
        deployment = victim(sim_env)
        sim_env.faults.poisoned[job_of(deployment)] = "10000-levels"
        assert pair.h.sync() == 1
        run = pair.h.last_run()
        jobs = sum(1 for ns in world.namespaces.values() for d in ns.deployments.values() if d.jobs)
        assert (run["status"], run["jobs_total"], run["jobs_failed"]) == ("partial", jobs, 1)
        [failure] = failures(pair.h, run["run_id"])
        assert failure[1] == deployment.id and "nested deeper than" in str(failure[5])
        sim_env.faults.poisoned.clear()
        sim_env.faults.job_faults[job_of(deployment)] = "error"
        assert pair.ref.sync() == 1
        assert snapshot(pair.h) == snapshot(pair.ref)
    finally:
        pair.close()


def test_over_long_ids_in_the_listings_fail_their_deployment_alone(pair: Pair) -> None:
    h, ref, sim = pair.h, pair.ref, pair.sim
    ns = sim.world.namespaces[NS]
    with_jobs = [d for d in ns.deployments.values() if d.jobs]
    long_deployment, long_job = with_jobs[0], with_jobs[1]
    del ns.deployments[long_deployment.id]
    long_deployment.id = "d" * 300
    ns.deployments[long_deployment.id] = long_deployment
    assert long_job.current_job is not None
    long_job.current_job.id = "j" * 200

    assert h.sync() == 1
    run = h.last_run()
    assert (run["status"], run["jobs_failed"]) == ("partial", 2)
    rows = {(r[1], r[3], r[4]) for r in failures(h, run["run_id"])}
    assert rows == {("d" * 300, None, "payload"), (long_job.id, "j" * 200, "payload")}
    errors = " ".join(str(r[5]) for r in failures(h, run["run_id"]))
    assert "'deploymentId'" in errors and "'jobId'" in errors and "at most 128" in errors
    assert sim.stats.by_action["ListJobs"] == sim.world.deployment_count() - 1  # not asked
    # The reference never sees the over-long deployment, and the other one has no job.
    del ns.deployments[long_deployment.id]
    long_job.jobs.clear()
    assert ref.sync() == 0
    assert snapshot(h) == snapshot(ref)


def incompressible(length: int) -> str:
    rng = random.Random(7)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


@pytest.mark.parametrize("first_sync", [True, False], ids=["first sync", "later sync"])
def test_rows_the_database_refuses_fail_their_job_alone(
    pair: Pair,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    first_sync: bool,
) -> None:
    """The net under validation: with the name limit switched off, a name too large for an
    index is refused by PostgreSQL itself; the run finds the job and stores the rest. (SQLite
    takes any length, so there the refusal is the crash-at-a-point kind of mock.) A first sync
    stages early, in a thread of its own: the refusal comes from there."""
    from exporter import early, store, sync

    h, ref, sim = pair.h, pair.ref, pair.sim
    if not first_sync:
        assert h.sync() == 0 and ref.sync() == 0
    sim.world.advance(changes=6)
    deployment = victim(sim)
    job = job_of(deployment)
    name = incompressible(8_000)
    sim.faults.job_bodies[job] = _with_table_name(sim, deployment, name)
    monkeypatch.setattr(sync, "check_limits", lambda state, context: None)
    if h.url.startswith("sqlite"):
        from exporter.staging import Staging

        real_apply, real_add = store.apply_changes, Staging.add

        def refuse_the_name(conn: Any, workspace_id: str, *args: Any) -> None:
            changes = args[-1]
            if any(name in key for rows in changes.opened.values() for key, _ in rows):
                raise sqlite3.DataError("string or blob too big")
            real_apply(conn, workspace_id, *args)

        def refuse_to_stage_the_name(
            staging: Staging, contributions: Any, creating_in: str | None = None
        ) -> None:
            ranked = list(contributions)
            if any(name in key for r in ranked for rows in r.state.rows.values() for key in rows):
                raise sqlite3.DataError("string or blob too big")
            real_add(staging, ranked, creating_in)

        monkeypatch.setattr(store, "apply_changes", refuse_the_name)  # a diff of a few keys
        monkeypatch.setattr(Staging, "add", refuse_to_stage_the_name)  # of the whole state
    capsys.readouterr()

    if first_sync:
        offered: list[object] = []
        real_offer = early.EarlyStager.offer
        monkeypatch.setattr(
            early.EarlyStager, "offer", lambda w, *a: (offered.append(a), real_offer(w, *a))[1]
        )
    assert h.sync() == 1
    if first_sync:
        assert len(offered) == 10  # every contribution went through the early stager
    run = h.last_run()
    assert (run["status"], run["jobs_failed"]) == ("partial", 1)
    [(_, dep_id, _, job_id, stage, error)] = failures(h, run["run_id"])
    assert (dep_id, job_id, stage) == (deployment.id, job, "payload")
    assert "the database refused the rows of" in str(error) and name not in str(error)
    if h.url.startswith("postgresql"):
        assert "index row" in str(error)  # PostgreSQL's own words: the entry is too large
    assert "finding the jobs responsible" in capsys.readouterr().err
    sim.faults.job_bodies.clear()
    sim.faults.job_faults[job] = "error"
    assert ref.sync() == 1
    assert snapshot(h) == snapshot(ref)
    assert_consistent(h)


def test_a_refusal_no_job_explains_fails_the_run_and_writes_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter import store

    assert harness.sync() == 0
    before = snapshot(harness)
    harness.world.advance(changes=6)

    def always_refuse(*args: Any) -> None:
        raise sqlite3.DataError("refused whatever it is given")

    monkeypatch.setattr(store, "apply_changes", always_refuse)
    assert harness.sync() == 1
    run = harness.last_run()
    assert run["status"] == "failed" and "no job's rows alone" in str(run["error_summary"])
    assert snapshot(harness) == before


def _with_table_name(sim: Simulator, deployment: SimDeployment, name: str) -> dict[str, Any]:
    from exporter.simulator.poison import ok

    data = sim.world.lineage(NS, deployment, job_of(deployment))
    data["nodes"][0]["tables"][0]["tableName"] = name
    return ok(data)
