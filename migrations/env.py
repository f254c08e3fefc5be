"""Alembic environment: the schema's metadata is the target; SQLite migrates in batch mode."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from exporter.database import make_engine
from exporter.schema import created_on, metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("LINEAGE_EXPORTER_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: run `lineage-exporter db upgrade` or set LINEAGE_EXPORTER_DATABASE_URL"
        )
    return str(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=created_on(connection.dialect.name),
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
