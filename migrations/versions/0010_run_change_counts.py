"""run change counts: how much changed, per run, namespace and kind, without reading the feed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00

- `run_change_counts`: one row per run, namespace, entity kind and change (added, changed,
  removed) with how many rows of `lineage_changes` it has. Each run writes its own, in its own
  transaction, from the feed itself (so the two cannot disagree); a run that changed nothing
  writes none.
- The view `lineage_change_counts` adds each run's workspace and instant (`changed_at`, the
  run's start: every row of a run's feed has it), so "what changed this week, by kind" or "by
  hour" reads a few rows per run instead of every version that opened or closed in the window:
  a year at 15-minute runs is 35,040 runs, and a week is 672 of them whatever the churn.
- The upgrade counts every run already recorded, from `lineage_changes`, a range of runs at a
  time (history is read, not rewritten). Retention later deletes old versions but not these counts: they stay each run's
  record of what it changed.

On SQLite, lineage_changes finds a version's predecessor through the `valid_to` index, by a
subquery that says the index's guard (`run_id IS NOT NULL`, always true; SQLite uses no partial
index for the right side of a LEFT JOIN). Before, SQLite walked every version of the entity to
find the one that ended where this one began,
so counting a run cost the depth of its entities' history (48 s for the first run of a
1,000-deployment year). The rows are the same.

The counts view gets the grants lineage_changes has (a BI role that reads the feed reads it).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

COUNTS_VIEW = """
CREATE VIEW lineage_change_counts AS
SELECT r.workspace_id, c.run_id, r.started_at AS changed_at, c.namespace, c.entity_kind,
       c.change, c.changes
FROM run_change_counts c
    JOIN sync_runs r ON r.id = c.run_id"""

# What the upgrade writes for every run recorded before it: the feed, grouped. (A sync now
# counts its own run from its versions, exporter.store.record_run_counts; tests compare both.)
COUNT_FEED = """
INSERT INTO run_change_counts (run_id, namespace, entity_kind, change, changes)
SELECT run_id, namespace, entity_kind, change, COUNT(*)
FROM lineage_changes
WHERE {where}
GROUP BY run_id, namespace, entity_kind, change"""


def upgrade() -> None:
    op.create_table(
        "run_change_counts",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("entity_kind", sa.String(length=16), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name="fk_run_change_counts_run_id_sync_runs"
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "namespace", "entity_kind", "change", name="pk_run_change_counts"
        ),
    )
    # Window questions find their runs by instant, whatever the workspace.
    op.create_index("ix_sync_runs_started_at", "sync_runs", ["started_at"])
    m0009 = _load("0009_time_indexes.py")
    if op.get_bind().dialect.name == "sqlite":
        m0009._replace_changes_view(m0009.changes_view("sqlite", guard_predecessor=True))
    _count_recorded_runs()
    op.execute(COUNTS_VIEW)
    if op.get_bind().dialect.name == "postgresql":
        m0007 = _load("0007_job_failures_and_unbounded_names.py")
        for grantee, privilege in m0007._grants().get("lineage_changes", []):
            m0007._grant(privilege, "lineage_change_counts", grantee)


def _count_recorded_runs(runs_per_statement: int = 1000) -> None:
    """Every recorded run's counts, a range of runs at a time: each range is read through the
    feed's indexes like one run's counts, where one statement over all runs would read every
    version, with its values, and sort it (tens of GB of temporary files for a year at 10,000
    deployments)."""
    bind = op.get_bind()
    first, last = bind.execute(sa.text("SELECT MIN(id), MAX(id) FROM sync_runs")).one()
    if first is None:
        return
    count = sa.text(COUNT_FEED.format(where="run_id BETWEEN :low AND :high"))
    for low in range(first, last + 1, runs_per_statement):
        bind.execute(count, {"low": low, "high": low + runs_per_statement - 1})


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS lineage_change_counts")
    if op.get_bind().dialect.name == "sqlite":
        m0009 = _load("0009_time_indexes.py")
        m0009._replace_changes_view(m0009.changes_view("sqlite"))
    op.drop_index("ix_sync_runs_started_at", table_name="sync_runs")
    op.drop_table("run_change_counts")


def _load(filename: str) -> ModuleType:
    """An earlier revision's module, to reuse what it built as it was written (not a copy)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"lineage_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
