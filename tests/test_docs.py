"""Every query of the SQL cookbook (docs/queries.md) runs, and answers, on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from conftest import Harness
from sqlalchemy import bindparam, text

from exporter.sqltypes import UtcDateTime

COOKBOOK = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
NS = "default-namespace"


def cookbook() -> list[tuple[str, bool]]:
    """(query, PostgreSQL only) for every fenced SQL block."""
    blocks = re.findall(r"```sql( postgresql)?\n(.*?)```", COOKBOOK.read_text("utf-8"), flags=re.S)
    return [(sql, bool(pg_only)) for pg_only, sql in blocks]


def test_the_cookbook_has_at_least_ten_portable_queries() -> None:
    assert sum(1 for _, pg_only in cookbook() if not pg_only) >= 10


def _aware(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _history_with_every_kind_of_change(h: Harness) -> datetime:
    """Three runs: initial; a partial one with a column retyped; one with a deployment deleted
    while the same job still fails (so the latest run has failures to show)."""
    assert h.sync() == 0
    first = _aware(h.last_run()["started_at"])
    ns = h.world.namespaces[NS]
    deployments = [d for d in ns.deployments.values() if d.jobs]
    sinks = [d.sink for d in ns.deployments.values()]
    column = ns.tables[deployments[0].sink].columns[0]
    column.type = "VARCHAR(7)" if column.type != "VARCHAR(7)" else "INT"
    failing = deployments[1].current_job
    assert failing is not None
    h.sim.faults.job_faults[failing.id] = "error"
    assert h.sync() == 1
    lonely = next(d for d in deployments[2:] if sinks.count(d.sink) == 1)
    del ns.deployments[lonely.id]
    other = h.world.namespaces["namespace-1"]
    other_sinks = [d.sink for d in other.deployments.values()]
    stopped = next(
        d for d in other.deployments.values() if d.jobs and other_sinks.count(d.sink) == 1
    )
    h.world.set_status(stopped, "FAILED")  # its table is fed by no running job any more
    assert h.sync() == 1
    return first


def test_every_cookbook_query_runs_and_answers(harness: Harness) -> None:
    first = _history_with_every_kind_of_change(harness)
    then = {r[0] for r in harness.rows(
        "SELECT destination_name FROM lineage_table_edges_history "
        "WHERE valid_from <= :t AND (valid_to IS NULL OR valid_to > :t)", t=first)}  # fmt: skip
    now = [r[0] for r in harness.rows(
        "SELECT destination_name FROM lineage_table_edges_current e WHERE EXISTS ("
        " SELECT 1 FROM lineage_tables_current t WHERE t.qualified_name = e.destination_name)"
        " ORDER BY 1")]  # fmt: skip
    table_name = next(name for name in now if name in then)
    column_name = harness.scalar(
        "SELECT MIN(source_name) FROM lineage_column_edges_current c WHERE EXISTS ("
        " SELECT 1 FROM lineage_columns_current k WHERE k.qualified_name = c.source_name)"
    )
    params = {
        "table_name": table_name,
        "column_name": column_name,
        "as_of": first,
        "since": first,
        "person": "userA",
    }
    postgres = harness.engine.dialect.name == "postgresql"
    ran = 0
    for sql, pg_only in cookbook():
        if pg_only and not postgres:
            continue
        statement = text(sql)
        for name in ("as_of", "since"):
            if f":{name}" in sql:
                statement = statement.bindparams(bindparam(name, type_=UtcDateTime))
        wanted = {k: v for k, v in params.items() if f":{k}" in sql}
        with harness.engine.connect() as conn:
            rows = conn.execute(statement, wanted).all()
        assert rows, f"cookbook query returned nothing:\n{sql}"
        ran += 1
    assert ran == len(cookbook()) - (0 if postgres else sum(pg for _, pg in cookbook()))
