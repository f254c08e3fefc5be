"""versions without foreign keys on PostgreSQL: history is written at the cost of its indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:00:00

Every version table (tables, columns, jobs, deployments, table and column edges) had two
foreign keys: to its entity and to the run that opened it. PostgreSQL checks a foreign key
once per inserted row, with a query and a lock on the referenced row; COPYing or inserting a
version costs less than those two checks. Measured on this project's machine with 60,515
column versions of an initial sync: inserting them into the table with its indexes 0.52 s,
with the entity's foreign key 1.11 s, with both 1.65 s; an initial sync of 1,000 deployments
writes 125,000 such rows after its last response.

The keys cannot dangle without them: nothing deletes an entity or a run (retention deletes
closed versions only), and a sync writes a version by joining the entity it names, in the
transaction of its own run. Tests check every version's entity and run after initial,
changed, removed and pruned runs on both databases.

PostgreSQL only. SQLite checks a key with a lookup in its own process (0.04 s for the same
rows) and can drop a constraint only by rebuilding the table (copying the history), so its
keys stay. The identity tables (columns to tables, edges to namespaces, ...) keep theirs:
their rows are written once per thing ever seen.

The downgrade adds the keys back; PostgreSQL validates the existing rows as it does.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# version table -> (its column naming the entity, the entity table)
VERSIONS = {
    "table_versions": ("table_fk", "tables"),
    "column_versions": ("column_fk", "columns"),
    "job_versions": ("deployment_fk", "deployments"),
    "deployment_versions": ("deployment_fk", "deployments"),
    "table_edge_versions": ("edge_fk", "table_edges"),
    "column_edge_versions": ("edge_fk", "column_edges"),
}


def _keys() -> list[tuple[str, str, str, str]]:
    """(version table, constraint name, column, referred table) of each key, as 0001 named it."""
    keys = []
    for table, (column, entities) in VERSIONS.items():
        for name, referred in ((column, entities), ("run_id", "sync_runs")):
            keys.append((table, f"fk_{table}_{name}_{referred}", name, referred))
    return keys


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, name, _, _ in _keys():
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, name, column, referred in _keys():
        op.create_foreign_key(name, table, referred, [column], ["id"])
