"""time indexes: questions over a window of time, or about one run, cost what they return

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:00:00

- Every version table gets a B-tree index on `(valid_from, entity)` and a partial one on
  `(valid_to, entity)` (where set; on SQLite both only for queries that say
  `run_id IS NOT NULL`, see GUARD): "what opened in this window" and "what closed in this window" become index range
  scans instead of reading whole tables. B-tree rather than BRIN: closing a version updates its
  row, and PostgreSQL writes the updated row where there is room, so a table's physical order
  follows neither column for long (a BRIN summary would soon cover whole years per block range).
- `lineage_changes` finds the run of each row through `sync_runs` by instant instead of a
  correlated subquery: a version opens at its run's start (`valid_from`) and closes at a later
  run's start (`valid_to`), and a workspace's runs start at strictly increasing instants, so
  `(workspace_id, started_at)` names one run. `WHERE run_id = N` then reads that run's row by its
  key and the versions that opened or closed at its start through the new indexes. Its answers
  are the same as before; no version row is written (history is not rewritten, and nothing
  needs to be recorded on a version that its times do not already say).

The view is dropped and created again with the grants it had.

On SQLite, times are text that compares as text. Versions opened through the bulk insert were
written without their fraction when it was zero (`2026-03-01 00:00:00` where every other writer
writes `2026-03-01 00:00:00.000000`); such a `valid_from` never equals the `valid_to` of the
version before it, and the feed called that change an addition. They get their `.000000` (the
same instant, the format every other time has); nothing else is touched.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only: its planner, without histograms, would take an as-of question's `valid_from <= T`
# for a selective range and walk lineage through a time index; its time indexes cover only the
# queries that say this always-true term (exporter.sqltypes.TIME_INDEX_GUARD).
GUARD = "run_id IS NOT NULL"
# Each version table and the column naming its entity.
VERSION_TABLES = {
    "table_versions": "table_fk",
    "column_versions": "column_fk",
    "job_versions": "deployment_fk",
    "table_edge_versions": "edge_fk",
    "column_edge_versions": "edge_fk",
    "deployment_versions": "deployment_fk",
}


def _load(filename: str) -> ModuleType:
    """An earlier revision's module, to reuse what it built as it was written (not a copy)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"lineage_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def changes_view(dialect: str, guard_predecessor: bool = False) -> str:
    """lineage_changes (0008's rows and values), each row's run found by its instant. Whether a
    version had a predecessor is read from the predecessor's key (`p.<entity>`), so that a count
    of changes is answered from the indexes alone. With `guard_predecessor` (0010, SQLite) the
    predecessor is found by a subquery that says the guard, so through the `valid_to` index
    (SQLite uses no partial index for the right side of a LEFT JOIN)."""
    m0003 = _load("0003_lineage_queries.py")
    m0008 = _load("0008_live_lineage.py")
    guard = f"v.{GUARD}" if dialect == "sqlite" else "TRUE"
    by_index = dialect == "sqlite" and guard_predecessor
    selects = []
    for kind in m0008.record_kinds():
        name = kind.entity_name
        predecessor = f"p.{kind.fk} = v.{kind.fk} AND p.valid_to = v.valid_from"
        if by_index:
            predecessor = f"""p.id = (SELECT x.id FROM {kind.versions} x
                WHERE x.valid_to = v.valid_from AND x.{kind.fk} = v.{kind.fk}
                  AND x.valid_to IS NOT NULL AND x.{GUARD})"""
        selects.append(f"""
SELECT n.workspace_id, r.id AS run_id, v.valid_from AS changed_at, '{kind.name}' AS entity_kind,
       {name} AS entity_name,
       CASE WHEN p.{kind.fk} IS NULL THEN 'added' ELSE 'changed' END AS change,
       {m0003._json_value(dialect, "p", kind)} AS old_value,
       {m0003._json_value(dialect, "v", kind)} AS new_value,
       n.name AS namespace
FROM {kind.versions} v
    LEFT JOIN {kind.versions} p ON {predecessor}{kind.joins}
    LEFT JOIN sync_runs r ON r.workspace_id = n.workspace_id AND r.started_at = v.valid_from
WHERE {guard}""")
        selects.append(f"""
SELECT n.workspace_id, r.id AS run_id, v.valid_to AS changed_at, '{kind.name}' AS entity_kind,
       {name} AS entity_name, 'removed' AS change,
       {m0003._json_value(dialect, "v", kind)} AS old_value, NULL AS new_value,
       n.name AS namespace
FROM {kind.versions} v{kind.joins}
    LEFT JOIN sync_runs r ON r.workspace_id = n.workspace_id AND r.started_at = v.valid_to
WHERE v.valid_to IS NOT NULL AND {guard}
  AND NOT EXISTS (SELECT 1 FROM {kind.versions} x
                  WHERE x.{kind.fk} = v.{kind.fk} AND x.valid_from = v.valid_to)""")
    return "\nUNION ALL".join(selects)


def upgrade() -> None:
    for table, entity in VERSION_TABLES.items():
        op.create_index(
            f"ix_{table}_valid_from", table, ["valid_from", entity], sqlite_where=sa.text(GUARD)
        )
        op.create_index(
            f"ix_{table}_valid_to",
            table,
            ["valid_to", entity],
            postgresql_where=sa.text("valid_to IS NOT NULL"),
            sqlite_where=sa.text(f"valid_to IS NOT NULL AND {GUARD}"),
        )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in VERSION_TABLES:
            op.execute(
                f"UPDATE {table} SET valid_from = valid_from || '.000000' "
                "WHERE length(valid_from) = 19"
            )
    _replace_changes_view(changes_view(dialect))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace_changes_view(_load("0008_live_lineage.py")._changes_view(dialect, True))
    for table in VERSION_TABLES:
        op.drop_index(f"ix_{table}_valid_to", table_name=table)
        op.drop_index(f"ix_{table}_valid_from", table_name=table)


def _replace_changes_view(query: str) -> None:
    """Drop lineage_changes and create it from `query`, with the grants it had."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    m0007 = _load("0007_job_failures_and_unbounded_names.py")
    grants = m0007._grants().get("lineage_changes", []) if postgresql else []
    op.execute("DROP VIEW IF EXISTS lineage_changes")
    op.execute(f"CREATE VIEW lineage_changes AS {query}")
    for grantee, privilege in grants:
        m0007._grant(privilege, "lineage_changes", grantee)
