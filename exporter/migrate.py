"""Schema management through Alembic: upgrade, downgrade, current revision, and a currency check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from exporter.errors import StoreError
from exporter.redact import Redactor

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def alembic_config(database_url: str) -> Config:
    """Alembic's Config for this project, pointed at `database_url`."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head", redactor: Redactor | None = None) -> None:
    """Migrate to `revision`; a data migration that redacts stored secrets uses `redactor`."""
    config = alembic_config(database_url)
    config.attributes["redactor"] = redactor
    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("unused")).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when no migration ever ran."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc


def require_current(engine: Engine) -> None:
    """Raise a StoreError telling the user to run `db upgrade` when the schema is not at head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StoreError(
            f"database schema is at revision {current or 'none'}, the exporter needs {head}: "
            "run `lineage-exporter db upgrade`"
        )
