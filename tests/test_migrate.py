"""Alembic owns the schema: the schema and migrations agree, and the history goes both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import Harness, dangling_keys, hashable, snapshot, with_job, write_config
from sqlalchemy import inspect

from exporter import migrate
from exporter.database import make_engine
from exporter.schema import created_on, metadata
from exporter.simulator import Simulator

VIEWS = {
    "lineage_sync_runs",
    *(
        f"lineage_{kind}_{suffix}"
        for kind in ("jobs", "tables", "columns", "table_edges", "column_edges")
        for suffix in ("history", "current")
    ),
}


def test_schema_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": created_on(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=opts)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_view_names()) >= VIEWS
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())

    migrate.downgrade(empty_db_url, "base")
    engine.dispose()
    assert migrate.current_revision(engine) is None
    assert not set(inspect(engine).get_view_names()) & VIEWS
    assert not set(inspect(engine).get_table_names()) & set(metadata.tables)

    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_view_names()) >= VIEWS


def test_the_head_the_exporter_needs_is_the_newest_migration() -> None:
    assert migrate.head_revision() == migrate.HEAD


def test_require_current_tells_the_user_what_to_run(empty_db_url: str) -> None:
    import pytest

    from exporter.errors import StoreError

    with pytest.raises(StoreError, match="db upgrade"):
        migrate.require_current(make_engine(empty_db_url))


def test_0007_up_and_down_on_real_history_keeps_every_answer_and_grant(
    sim_env: Simulator, db_url: str, tmp_path: Path
) -> None:
    """Names become text (PostgreSQL) through views dropped and made again: every as-of answer,
    the change feed and a BI role's grants are as they were, both ways."""
    h = Harness(sim_env, db_url, write_config(tmp_path / "c.toml", sim_env, db_url))
    for _ in range(3):
        assert h.sync() == 0
        sim_env.world.advance(changes=6)
    instants = [r[0] for r in h.rows("SELECT started_at FROM lineage_sync_runs ORDER BY run_id")]
    postgresql = db_url.startswith("postgresql")
    if postgresql:
        _grant_the_reader_role(db_url)

    def answers() -> list[object]:
        feed = h.rows("SELECT * FROM lineage_changes ORDER BY 1, 2, 3, 4, 5, 6")
        return [snapshot(h, t) for t in instants] + [snapshot(h), sorted(map(hashable, feed))]

    h.engine.dispose()
    migrate.downgrade(db_url, "0007")  # what 0007 made, before later revisions
    before = answers()
    h.engine.dispose()
    migrate.downgrade(db_url, "0006")
    assert "lineage_job_failures" not in inspect(h.engine).get_view_names()
    assert answers() == before
    if postgresql:
        assert _name_type(h) == "character varying" and _reader_can_read(db_url, "tables")
    h.engine.dispose()
    migrate.upgrade(db_url, "0007")
    assert answers() == before
    if postgresql:
        assert _name_type(h) == "text"
        assert _reader_can_read(db_url, "tables") and _reader_can_read(db_url, "job_failures")
    h.engine.dispose()


def _grant_the_reader_role(db_url: str) -> None:
    import psycopg

    script = (migrate.PROJECT_ROOT / "docs" / "readonly-role.sql").read_text(encoding="utf-8")
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def _reader_can_read(db_url: str, view: str) -> bool:
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SET ROLE lineage_reader")
        try:
            conn.execute(
                f"SELECT count(*) FROM lineage_{view}_current"
                if view == "tables"
                else f"SELECT count(*) FROM lineage_{view}"
            )  # type: ignore[arg-type]
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def _name_type(h: Harness) -> object:
    return h.scalar(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'tables' AND column_name = 'name'"
    )


CURRENT_VIEWS = [
    f"lineage_{kind}_current"
    for kind in ("jobs", "deployments", "tables", "columns", "table_edges", "column_edges")
]
_VERSION_TABLE = {
    "lineage_jobs_current": "job_versions",
    "lineage_deployments_current": "deployment_versions",
    "lineage_tables_current": "table_versions",
    "lineage_columns_current": "column_versions",
    "lineage_table_edges_current": "table_edge_versions",
    "lineage_column_edges_current": "column_edge_versions",
}


def test_0011_current_views_keep_every_row_and_count_from_their_version_table(
    sim_env: Simulator, db_url: str, tmp_path: Path
) -> None:
    """0011's current views have the rows and columns 0010's had (and the live views still
    read them, and a BI role keeps its grants); on PostgreSQL a count of one reads its version
    table alone (SQLite omits no join from an aggregate: its views stay as they were)."""
    h = Harness(sim_env, db_url, write_config(tmp_path / "c.toml", sim_env, db_url))
    for step in range(3):
        assert h.sync() == 0
        sim_env.world.advance(changes=6)
        if step == 1:
            sim_env.world.set_status(with_job(sim_env.world)[0], "FAILED")
    postgresql = db_url.startswith("postgresql")
    if postgresql:
        _grant_the_reader_role(db_url)
    views = [*CURRENT_VIEWS, "lineage_live_table_edges", "lineage_live_column_edges"]

    def rows() -> dict[str, object]:
        with h.engine.connect() as conn:
            found: dict[str, object] = {}
            for view in views:
                result = conn.exec_driver_sql(f"SELECT * FROM {view}")
                found[view] = (list(result.keys()), sorted(map(hashable, result.all())))
            return found

    at_head = rows()
    assert all(found[1] for found in at_head.values())  # every view has rows to compare
    h.engine.dispose()
    migrate.downgrade(db_url, "0010")
    assert rows() == at_head
    h.engine.dispose()
    migrate.upgrade(db_url)
    assert rows() == at_head
    if postgresql:
        assert _reader_can_read(db_url, "tables") and _reader_can_read(db_url, "live_table_edges")
    if not postgresql:
        return
    with h.engine.connect() as conn:
        for view in CURRENT_VIEWS:
            plan = "\n".join(
                str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN SELECT count(*) FROM {view}")
            )
            read = {t for t in ("namespaces", "tables", "columns", "deployments", "_edges ")
                    if re.search(rf"\b{t}", plan)}  # fmt: skip
            assert read == set(), (view, plan)
            assert _VERSION_TABLE[view] in plan, (view, plan)


def test_versions_name_their_entity_and_run_unenforced_on_postgresql_only(harness: Harness) -> None:
    """Migration 0012: PostgreSQL takes a version whose entity and run do not exist (the sync
    is what keeps them: `dangling_keys` finds such a row, and every consistency check asks it);
    SQLite refuses it."""
    from sqlalchemy.exc import IntegrityError

    h = harness
    assert h.sync() == 0
    assert dangling_keys(h.engine) == {}
    orphan = (
        "INSERT INTO column_edge_versions (edge_fk, valid_from, run_id) "
        "VALUES (987654321, '2026-01-01 00:00:00+00:00', 987654321)"
    )
    if h.engine.dialect.name == "postgresql":
        with h.engine.begin() as conn:
            conn.exec_driver_sql(orphan)
        assert dangling_keys(h.engine) == {
            "fk_column_edge_versions_edge_fk_column_edges": 1,
            "fk_column_edge_versions_run_id_sync_runs": 1,
        }
    else:
        with pytest.raises(IntegrityError), h.engine.begin() as conn:
            conn.exec_driver_sql(orphan)
        assert dangling_keys(h.engine) == {}
