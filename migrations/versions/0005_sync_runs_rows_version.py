"""sync_runs.rows_version: the rules version that turned payloads into rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:05:00

A run that changes few contributions compares only the keys they report. That is right only if
the stored rows were made by the same rules, so each run records the version of its rules
(normalize.ROWS_VERSION), and the first run under other rules compares the whole state. Runs
from before this revision have none, which counts as other rules.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sync_runs", sa.Column("rows_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite >= 3.35): recreating the table, as Alembic's
    # batch mode would, breaks the views that read it.
    op.execute("ALTER TABLE sync_runs DROP COLUMN rows_version")
