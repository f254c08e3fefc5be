"""Live lineage: the whole job, deployment and column record, versioned, and what feeds what now.

Through real syncs of the simulator on both databases: every new column holds what the API
said; a job status change is one new job version and one change-feed row; the live views, the
`live_only` traversal (and PostgreSQL's functions) and `diff --live` match expectations computed
by hand from what the test did to the simulated jobs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import NS, Harness, assert_consistent, snapshot, with_job
from sqlalchemy import text

from exporter.changes import diff
from exporter.cli import main
from exporter.query import traverse
from exporter.simulator.server import ENGINE_VERSION
from exporter.simulator.world import SimDeployment


def aware(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def one(h: Harness, sql: str, **params: object) -> dict[str, Any]:
    with h.engine.connect() as conn:
        return dict(conn.execute(text(sql), params).mappings().one())


def run_instant(h: Harness) -> datetime:
    return aware(h.last_run()["started_at"])


def test_every_new_column_holds_what_the_api_said(harness: Harness) -> None:
    h = harness
    with_job(h.world)[-1].jobs.clear()  # a deployment without a job is listed all the same
    assert h.sync() == 0
    deployment = with_job(h.world)[0]
    job = deployment.current_job
    assert job is not None
    owner = deployment.properties["owner"]
    row = one(h, "SELECT * FROM lineage_jobs_current WHERE deployment_id = :d", d=deployment.id)
    assert (row["job_id"], row["job_status"], row["engine_version"]) == (
        job.id,
        "RUNNING",
        ENGINE_VERSION,
    )
    assert (row["execution_mode"], row["job_creator"], row["deployment_target"]) == (
        "STREAMING",
        owner,
        "default-queue",
    )
    assert row["deployment_description"] == f"{deployment.name}: written by the {owner} team"
    labels = row["deployment_labels"]
    labels = json.loads(labels) if isinstance(labels, str) else labels
    tier = 1 + len(deployment.sources) % 3
    assert labels == {"team": owner, "tier": tier, "alert.token": "<redacted>"}
    assert (row["deployment_creator"], row["deployment_modifier"]) == (owner, owner)
    assert aware(row["job_created_at"]) == from_ms(job.created_at_ms)
    assert aware(row["job_started_at"]) == from_ms(job.created_at_ms // 1000 * 1000)
    assert row["job_ended_at"] is None
    assert aware(row["deployment_created_at"]) == from_ms(deployment.created_at_ms)
    assert aware(row["deployment_modified_at"]) == from_ms(deployment.created_at_ms)

    # Every listed deployment, with or without a job.
    listed = {
        d.id: bool(d.jobs) for ns in h.world.namespaces.values() for d in ns.deployments.values()
    }
    rows = h.rows("SELECT deployment_id, has_job, deployment_name FROM lineage_deployments_current")
    assert {r[0]: bool(r[1]) for r in rows} == listed
    assert False in listed.values()  # the world has deployments without a job

    sink = h.world.namespaces[NS].tables[deployment.sink]
    column = sink.columns[0]
    row = one(
        h,
        "SELECT * FROM lineage_columns_current WHERE qualified_name = :q AND column_name = :c",
        q=f"{sink.qualified_name}.{column.name}",
        c=column.name,
    )
    created = from_ms(column.created_at) if column.created_at > 10**11 else None
    created = created or datetime.fromtimestamp(column.created_at, tz=UTC)
    assert aware(row["column_created_at"]) == created == aware(row["column_modified_at"])
    assert (row["column_creator"], row["column_modifier"]) == ("userA", "userA")
    node_ids = {r[0] for r in h.rows("SELECT node_id FROM lineage_tables_current")}
    assert f"node-{sink.catalog}-{sink.database}" in node_ids


NEVER = ("flinkConf", "userFlinkConf", "artifact", "localVariables", "do-not-store", "tok-")


def everything_stored(h: Harness) -> str:
    tables = ("contributions", "job_versions", "deployment_versions")
    return " ".join(str(row) for table in tables for row in h.rows(f"SELECT * FROM {table}"))


def test_configuration_and_secret_labels_are_never_stored(harness: Harness) -> None:
    assert harness.sync() == 0
    stored = everything_stored(harness)
    assert not [never for never in NEVER if never in stored]
    assert "currentJobStatus" in stored and "observedFlinkJobRestarts" not in stored


def test_the_upgrade_removes_the_configuration_earlier_releases_stored(
    harness: Harness,
) -> None:
    from exporter import migrate

    h = harness
    assert h.sync() == 0
    with h.engine.begin() as conn:  # as an earlier release stored each job: whole
        for key, payload in conn.execute(text("SELECT deployment_fk, payload FROM contributions")):
            payload = json.loads(payload) if isinstance(payload, str) else payload
            payload["job"]["flinkConf"] = {"password": "do-not-store"}
            payload["job"]["status"]["running"] = {"restarts": 3}
            conn.execute(
                text("UPDATE contributions SET payload = :p WHERE deployment_fk = :k"),
                {"p": json.dumps(payload), "k": key},
            )
    assert "do-not-store" in everything_stored(h)
    h.engine.dispose()
    migrate.downgrade(h.url, "0007")
    migrate.upgrade(h.url)
    stored = everything_stored(h)
    assert "do-not-store" not in stored and "restarts" not in stored
    assert "currentJobStatus" in stored
    assert h.sync() == 0


def test_a_status_change_is_one_job_version_and_one_change(harness: Harness) -> None:
    h = harness
    assert h.sync() == 0
    deployment = with_job(h.world)[0]
    h.world.set_status(deployment, "FAILED")
    assert h.sync() == 0
    run = h.last_run()
    assert (run["rows_added"], run["rows_closed"]) == (1, 1)
    versions = h.rows(
        "SELECT job_status, job_ended_at IS NULL FROM lineage_jobs_history "
        "WHERE deployment_id = :d ORDER BY valid_from",
        d=deployment.id,
    )
    assert [(s, bool(open_)) for s, open_ in versions] == [("RUNNING", True), ("FAILED", False)]
    [change] = h.rows(
        "SELECT entity_kind, change, old_value, new_value FROM lineage_changes WHERE run_id = :r",
        r=run["run_id"],
    )
    old, new = json.loads(change[2]), json.loads(change[3])
    assert change[:2] == ("job", "changed")
    assert (old["status"], new["status"]) == ("RUNNING", "FAILED")
    assert {k for k in old if old[k] != new[k]} == {"status"}
    assert_consistent(h)


def _history_of_statuses(h: Harness) -> tuple[SimDeployment, list[datetime], list[str]]:
    """Run 1: all running. Run 2: one job fails. Run 3: it is restarted as a new job.
    Returns the deployment, the three runs' instants, and the job IDs it had."""
    assert h.sync() == 0
    deployment = next(d for d in with_job(h.world) if len(d.sources) > 1 and not d.external_source)
    first = deployment.current_job
    assert first is not None
    instants = [run_instant(h)]
    h.world.set_status(deployment, "FAILED")
    assert h.sync() == 0
    instants.append(run_instant(h))
    h.world._add_job(deployment, "job-restarted")
    assert h.sync() == 0
    instants.append(run_instant(h))
    return deployment, instants, [first.id, "job-restarted"]


def test_live_lineage_at_several_instants(harness: Harness) -> None:
    h = harness
    deployment, instants, (failed_job, new_job) = _history_of_statuses(h)
    sink = h.world.namespaces[NS].tables[deployment.sink].qualified_name
    # Not live: the failed job's edges while it was failed (at the second run), nothing else.
    not_live = {1: {failed_job}}
    with h.engine.connect() as conn:
        for index, at in enumerate(instants):
            everything = traverse(conn, sink, as_of=at, max_depth=3)
            live = traverse(conn, sink, as_of=at, max_depth=3, live_only=True)
            edges = {(x.source_name, x.destination_name, x.job_id) for x in everything.hops}
            expected = {e for e in edges if e[2] not in not_live.get(index, set())}
            # Further hops are reached only through live edges.
            reachable = _reachable(expected, sink)
            assert {(x.source_name, x.destination_name, x.job_id) for x in live.hops} == reachable
            if index == 1:
                assert any(e[2] == failed_job for e in edges)  # it still has its lineage
                assert not any(x.job_id == failed_job for x in live.hops)
            if index == 2:
                assert any(x.job_id == new_job for x in live.hops)

    now_edges = set(h.rows("SELECT source_name, destination_name, job_id, job_status "
                           "FROM lineage_table_edges_current"))  # fmt: skip
    live_edges = set(h.rows("SELECT source_name, destination_name, job_id, job_status "
                            "FROM lineage_live_table_edges"))  # fmt: skip
    assert live_edges == {e for e in now_edges if e[3] == "RUNNING"}
    # As of the second run, the edge history view says the job was FAILED then.
    statuses = h.rows(
        "SELECT DISTINCT job_status FROM lineage_table_edges_history "
        "WHERE job_id = :j AND valid_from <= :t AND (valid_to IS NULL OR valid_to > :t)",
        j=failed_job,
        t=instants[1],
    )
    assert statuses == [("FAILED",)]
    if h.engine.dialect.name == "postgresql":
        for at in instants:
            with h.engine.connect() as conn:
                expected_rows = {
                    (x.depth, x.source_name, x.destination_name, x.job_id)
                    for x in traverse(conn, sink, as_of=at, max_depth=3, live_only=True).hops
                }
            got = set(h.rows("SELECT * FROM lineage_upstream(:n, :t, 3, NULL, NULL, true)",
                             n=sink, t=at))  # fmt: skip
            assert got == expected_rows


def _reachable(edges: set[tuple[str, str, str]], start: str) -> set[tuple[str, str, str]]:
    """The upstream closure of `start` over `edges`, by hand."""
    found: set[tuple[str, str, str]] = set()
    frontier = {start}
    while frontier:
        step = {e for e in edges if e[1] in frontier} - found
        found |= step
        frontier = {e[0] for e in step}
    return found


def test_diff_live_shows_a_stopped_jobs_edges_as_removed(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = harness
    deployment, instants, (failed_job, _) = _history_of_statuses(h)
    with h.engine.connect() as conn:
        plain = diff(conn, instants[0], instants[1])
        live = diff(conn, instants[0], instants[1], live_only=True)
    assert not any(c.kind.endswith("_edge") for c in plain)  # the lineage itself did not change
    removed = {c.name for c in live if c.kind == "table_edge" and c.change == "removed"}
    failed_edges = {
        f"{r[0]} -> {r[1]}"
        for r in h.rows(
            "SELECT source_name, destination_name FROM lineage_table_edges_history "
            "WHERE job_id = :j",
            j=failed_job,
        )
    }
    assert removed == failed_edges and removed
    capsys.readouterr()
    assert main(["--config", str(h.config), "diff", "--live", "--from",
                 instants[0].isoformat(), "--to", instants[1].isoformat()]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert all(edge in out for edge in failed_edges)
    assert main(["--config", str(h.config), "lineage", "--live",
                 h.world.namespaces[NS].tables[deployment.sink].qualified_name]) == 0  # fmt: skip


def test_upgrading_in_place_keeps_the_past_and_fills_the_record_once(harness: Harness) -> None:
    """A database with history from before revision 0008 (its columns dropped again), upgraded:
    answers as of earlier instants are unchanged; the first run opens one set of versions with
    the new attributes; the run after it writes nothing."""
    from exporter import migrate

    h = harness
    for _ in range(3):
        assert h.sync() == 0
        h.world.advance(changes=4)
    instants = [aware(r[0]) for r in h.rows("SELECT started_at FROM lineage_sync_runs")]
    h.engine.dispose()
    migrate.downgrade(h.url, "0007")
    with h.engine.begin() as conn:  # as the earlier release recorded its runs
        conn.execute(text("UPDATE sync_runs SET rows_version = 1"))
    before = [snapshot(h, t) for t in instants]
    h.engine.dispose()
    migrate.upgrade(h.url)
    assert [snapshot(h, t) for t in instants] == before
    assert h.scalar("SELECT COUNT(*) FROM lineage_jobs_current WHERE job_status IS NULL") > 0

    h.world.advance(changes=0)  # (may change one status; the next run takes it either way)
    assert h.sync() == 0
    assert h.scalar("SELECT COUNT(*) FROM lineage_jobs_current WHERE job_status IS NULL") == 0
    assert [snapshot(h, t) for t in instants] == before  # the past is untouched
    assert_consistent(h)
    assert h.sync() == 0
    assert (h.last_run()["rows_added"], h.last_run()["rows_closed"]) == (0, 0)
