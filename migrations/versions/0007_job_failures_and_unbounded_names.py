"""job failures visible to SQL; names and API IDs as unbounded text

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 08:30:00

- `job_failures` and the view `lineage_job_failures`: one row per namespace listing, deployment
  or job that failed in a run, with its stage and error, so a dashboard shows which lineage is
  stale and since when.
- Catalog, database, table and column names, and the API's table and column IDs and connector,
  become `text` on PostgreSQL (they were varchar(255) / varchar(128), which refused a
  300-character table name and with it the whole run). What is stored is bounded the same way
  on both databases by the exporter (exporter.storable); SQLite never enforced the lengths, so
  its tables are left as they are.

PostgreSQL cannot change the type of a column a view reads, so the lineage views are dropped
and created again from their own definitions, with the grants they had (a BI role keeps its
access). Nothing is rewritten: varchar to text needs no table or index rebuild.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = {
    "catalogs": {"name": 255},
    "databases": {"name": 255},
    "tables": {"name": 255},
    "columns": {"name": 255},
    "table_versions": {"table_uid": 128, "connector": 128},
    "column_versions": {"column_uid": 128},
}

FAILURES_VIEW = """
CREATE VIEW lineage_job_failures AS
SELECT f.run_id, r.workspace_id, f.namespace, f.deployment_id, f.deployment_name, f.job_id,
       f.stage, f.error, f.failed_at
FROM job_failures f
    JOIN sync_runs r ON r.id = f.run_id"""


def upgrade() -> None:
    op.create_table(
        "job_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("deployment_id", sa.Text(), nullable=True),
        sa.Column("deployment_name", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name="fk_job_failures_run_id_sync_runs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_failures"),
    )
    op.create_index("ix_job_failures_run_id", "job_failures", ["run_id"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        _set_types({table: dict.fromkeys(columns, "text") for table, columns in WIDENED.items()})
    op.execute(FAILURES_VIEW)
    if postgresql:  # whoever reads the runs (a BI role) reads their failures too
        for grantee, privilege in _grants().get("lineage_sync_runs", []):
            _grant(privilege, "lineage_job_failures", grantee)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS lineage_job_failures")
    if op.get_bind().dialect.name == "postgresql":
        _set_types(
            {
                table: {column: f"varchar({n})" for column, n in columns.items()}
                for table, columns in WIDENED.items()
            }
        )
    op.drop_index("ix_job_failures_run_id", table_name="job_failures")
    op.drop_table("job_failures")


def _set_types(types: dict[str, dict[str, str]]) -> None:
    """ALTER the columns' types with the lineage views out of the way (PostgreSQL)."""
    views = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
                "JOIN pg_namespace s ON s.oid = c.relnamespace "
                "WHERE c.relkind = 'v' AND s.nspname = current_schema() "
                "AND c.relname LIKE 'lineage\\_%' ORDER BY c.oid"
            )
        )
        .all()
    )
    grants = _grants()
    for name, _ in reversed(views):  # dependants first
        op.execute(f"DROP VIEW {_quoted(name)}")
    for table, columns in types.items():
        for column, type_ in columns.items():
            op.execute(f"ALTER TABLE {_quoted(table)} ALTER COLUMN {_quoted(column)} TYPE {type_}")
    for name, definition in views:  # in creation order: what a view reads exists before it
        op.execute(f"CREATE VIEW {_quoted(name)} AS {definition}")
    for view, granted in grants.items():
        for grantee, privilege in granted:
            _grant(privilege, view, grantee)


def _grants() -> dict[str, list[tuple[str, str]]]:
    """view -> (grantee, privilege) granted on the lineage views to roles other than their owner."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = current_schema() AND table_name LIKE 'lineage\\_%' "
            "AND grantee <> current_user"
        )
    )
    grants: dict[str, list[tuple[str, str]]] = {}
    for view, grantee, privilege in rows:
        grants.setdefault(view, []).append((grantee, privilege))
    return grants


def _grant(privilege: str, view: str, grantee: str) -> None:
    # Names from the catalog, quoted; the privilege is one of PostgreSQL's own keywords.
    to = "PUBLIC" if grantee == "PUBLIC" else _quoted(grantee)
    op.execute(f"GRANT {privilege} ON {_quoted(view)} TO {to}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
