"""Redact connector secrets already stored

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:30:00

From this release the client redacts every value whose key names a secret (password, secret,
token, accessKey, jaas.config, ...) in tables' `with` options and properties and in jobInfos'
properties before anything is stored (exporter.redact). This migration applies the same rules to
what earlier releases stored: every table and job version, history included, and every payload.
`db upgrade` passes the configured `[redaction] extra_keys`; otherwise the built-in keys apply.

A data migration: it changes no schema. Downgrading keeps the redaction (the values are gone).
"""

from collections.abc import Sequence

from alembic import op

from exporter.redact import Redactor
from exporter.store import scrub_secrets

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    context = op.get_context()
    if context.as_sql:
        return  # offline SQL scripts: the rows are not known; run `lineage-exporter db redact`
    scrub_secrets(op.get_bind(), context.config.attributes.get("redactor") or Redactor())


def downgrade() -> None:
    pass
