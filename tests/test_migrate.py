"""Alembic owns the schema: models and migrations agree, and the history goes both ways."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from exporter import migrate
from exporter.models import Base
from exporter.store import make_engine

VIEWS = {
    "lineage_sync_runs",
    *(
        f"lineage_{kind}_{suffix}"
        for kind in ("jobs", "tables", "columns", "table_edges", "column_edges")
        for suffix in ("history", "current")
    ),
}


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_view_names()) >= VIEWS
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())

    migrate.downgrade(empty_db_url, "base")
    engine.dispose()
    assert migrate.current_revision(engine) is None
    assert not set(inspect(engine).get_view_names()) & VIEWS
    assert not set(inspect(engine).get_table_names()) & set(Base.metadata.tables)

    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_view_names()) >= VIEWS


def test_require_current_tells_the_user_what_to_run(empty_db_url: str) -> None:
    import pytest

    from exporter.errors import StoreError

    with pytest.raises(StoreError, match="db upgrade"):
        migrate.require_current(make_engine(empty_db_url))
