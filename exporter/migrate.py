"""Schema management through Alembic: upgrade, downgrade, current revision, and a currency check.

Alembic is imported only by what migrates: every query command checks the schema first, and
importing Alembic would cost it a third of a second of start-up. SQLAlchemy is imported only by
what asks the database through it: `diff`'s bare reader (exporter.dbapi) checks its revision
against HEAD without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exporter.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

    from exporter.redact import Redactor

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The newest revision in migrations/versions (a test checks that it is Alembic's head).
HEAD = "0012"


def alembic_config(database_url: str) -> Config:
    """Alembic's Config for this project, pointed at `database_url`."""
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head", redactor: Redactor | None = None) -> None:
    """Migrate to `revision`; a data migration that redacts stored secrets uses `redactor`."""
    config = alembic_config(database_url)
    config.attributes["redactor"] = redactor
    from alembic import command

    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The newest revision, as Alembic finds it in the migrations folder."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("unused")).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when no migration ever ran."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            revision = connection.scalar(text("SELECT version_num FROM alembic_version"))
            return None if revision is None else str(revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc


def require_current(engine: Engine) -> None:
    """Raise a StoreError telling the user to run `db upgrade` when the schema is not at head."""
    require_head(current_revision(engine))


def require_head(current: str | None) -> None:
    """Raise a StoreError telling the user to run `db upgrade` unless `current` (a database's
    revision, None when no migration ever ran) is HEAD."""
    if current != HEAD:
        raise StoreError(
            f"database schema is at revision {current or 'none'}, the exporter needs {HEAD}: "
            "run `lineage-exporter db upgrade`"
        )
