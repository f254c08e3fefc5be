"""contribution payloads as json (text), compressed with lz4 where the server has it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 11:00:00

PostgreSQL only (SQLite stores JSON as text already). A payload is an audit copy written whole
and read whole, never queried inside: `json` stores the text as the API sent it, checking only
that it is JSON, where `jsonb` parsed every payload into its binary form on every write (about
60% of the time of writing them). lz4 compresses them several times faster than the default
pglz; servers built without lz4 keep pglz.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_LZ4 = """
    SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "contributions",
        "payload",
        type_=sa.JSON(),
        existing_type=postgresql.JSONB(),
        postgresql_using="payload::json",
    )
    if op.get_bind().scalar(sa.text(HAS_LZ4)):
        op.execute("ALTER TABLE contributions ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE contributions ALTER COLUMN payload SET COMPRESSION default")
    op.alter_column(
        "contributions",
        "payload",
        type_=postgresql.JSONB(),
        existing_type=sa.JSON(),
        postgresql_using="payload::jsonb",
    )
