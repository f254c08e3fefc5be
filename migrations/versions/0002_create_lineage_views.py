"""create lineage views: the SQL contract BI tools bind to

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:00:00

The same SQL on PostgreSQL and SQLite. Each `lineage_<x>_history` view has a
`lineage_<x>_current` sibling holding its rows with valid_to NULL. A row is valid at instant T
when valid_from <= T and (valid_to IS NULL or valid_to > T).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_CHAIN = """
    JOIN tables t ON t.id = {fk}
    JOIN databases db ON db.id = t.database_id
    JOIN catalogs c ON c.id = db.catalog_id
    JOIN namespaces n ON n.id = c.namespace_id"""

VIEWS: dict[str, str] = {
    "lineage_sync_runs": """
SELECT r.id AS run_id, r.workspace_id, r.started_at, r.finished_at, r.status,
       r.jobs_total, r.jobs_failed, r.error_summary,
       r.deployments_total, r.rows_added, r.rows_closed
FROM sync_runs r""",
    "lineage_jobs_history": """
SELECT n.workspace_id, n.name AS namespace, v.job_id, d.deployment_id, v.deployment_name,
       v.properties, v.valid_from, v.valid_to, v.run_id
FROM job_versions v
    JOIN deployments d ON d.id = v.deployment_fk
    JOIN namespaces n ON n.id = d.namespace_id""",
    "lineage_tables_history": """
SELECT n.workspace_id, n.name AS namespace, c.name AS catalog_name, db.name AS database_name,
       t.name AS table_name, c.name || '.' || db.name || '.' || t.name AS qualified_name,
       v.table_uid AS table_id, v.connector, v.is_temporary, v.with_options, v.properties,
       t.owner_deployment_id, v.valid_from, v.valid_to, v.run_id
FROM table_versions v"""
    + TABLE_CHAIN.format(fk="v.table_fk"),
    "lineage_columns_history": """
SELECT n.workspace_id, n.name AS namespace, c.name AS catalog_name, db.name AS database_name,
       t.name AS table_name, col.name AS column_name, v.column_uid AS column_id, v.column_type,
       v.column_native_type, v.nullable, v.description,
       c.name || '.' || db.name || '.' || t.name || '.' || col.name AS qualified_name,
       t.owner_deployment_id, v.valid_from, v.valid_to, v.run_id
FROM column_versions v
    JOIN columns col ON col.id = v.column_fk"""
    + TABLE_CHAIN.format(fk="col.table_id"),
    "lineage_table_edges_history": """
SELECT n.workspace_id, n.name AS namespace, e.source_name, e.destination_name, e.job_id,
       e.source_owner, e.destination_owner, v.valid_from, v.valid_to, v.run_id
FROM table_edge_versions v
    JOIN table_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id""",
    "lineage_column_edges_history": """
SELECT n.workspace_id, n.name AS namespace, e.source_name, e.destination_name, e.job_id,
       e.source_owner, e.destination_owner, v.valid_from, v.valid_to, v.run_id
FROM column_edge_versions v
    JOIN column_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id""",
}
HISTORY = [name for name in VIEWS if name.endswith("_history")]


def upgrade() -> None:
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")
    for name in HISTORY:
        current = name.removesuffix("_history") + "_current"
        # Names come from the constant VIEWS above, never from input.
        op.execute(f"CREATE VIEW {current} AS SELECT * FROM {name} WHERE valid_to IS NULL")


def downgrade() -> None:
    for name in HISTORY:
        op.execute(f"DROP VIEW IF EXISTS {name.removesuffix('_history')}_current")
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
