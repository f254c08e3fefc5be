"""The store's set-based writes, on both databases: entities created once, versions joined to
them by natural key, temporary tables reused within a transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from exporter import database, store
from exporter.history import Changes
from exporter.normalize import KINDS

WS = "ws-store"
NS = "ns"
COLUMN = {
    "column_uid": "c1",
    "column_type": "BIGINT",
    "column_native_type": "bigint",
    "nullable": False,
    "description": None,
    "column_created_at": None,
    "column_modified_at": None,
    "column_creator": None,
    "column_modifier": None,
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = database.make_engine(db_url)
    yield engine
    engine.dispose()


def opened(columns: list[str], edges: list[tuple[str, str]]) -> dict[str, list[object]]:
    rows: dict[str, list[object]] = {kind: [] for kind in KINDS}
    rows["columns"] = [((NS, "cat", "db", "t", "", name), dict(COLUMN)) for name in columns]
    rows["column_edges"] = [((NS, src, "", dst, "", "job-1"), {}) for src, dst in edges]
    return rows


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_open_versions_creates_entities_once_and_a_version_per_row(engine: Engine) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    run_a, now_a = store.start_run(engine, WS, first)
    with database.transaction(engine) as conn:
        rows = opened(["a", "b"], [("cat.db.s.a", "cat.db.t.a")])
        store.open_versions(conn, WS, run_a, now_a, rows)  # type: ignore[arg-type]
        # A second write in the same transaction reuses its temporary tables.
        store.open_versions(conn, WS, run_a, now_a, opened(["c"], []))  # type: ignore[arg-type]
    run_b, now_b = store.start_run(engine, WS, first + timedelta(hours=1))
    with database.transaction(engine) as conn:  # the same keys again: new versions, same entities
        store.open_versions(conn, WS, run_b, now_b, opened(["a"], [("cat.db.s.a", "cat.db.t.a")]))  # type: ignore[arg-type]

    assert count(engine, "SELECT COUNT(*) FROM columns") == 3
    assert count(engine, "SELECT COUNT(*) FROM column_edges") == 1
    assert count(engine, "SELECT COUNT(*) FROM column_versions") == 4
    assert count(engine, "SELECT COUNT(*) FROM column_edge_versions") == 2
    with engine.connect() as conn:
        versions = conn.execute(
            text(
                "SELECT c.name, v.run_id, v.column_type FROM column_versions v "
                "JOIN columns c ON c.id = v.column_fk ORDER BY v.run_id, c.name"
            )
        ).all()
    assert [tuple(v) for v in versions] == [
        ("a", run_a, "BIGINT"),
        ("b", run_a, "BIGINT"),
        ("c", run_a, "BIGINT"),
        ("a", run_b, "BIGINT"),
    ]


@pytest.mark.postgres
def test_staged_writes_leave_the_planner_settings_as_they_were(pg_url: str) -> None:
    engine = database.make_engine(pg_url)
    try:
        run_id, now = store.start_run(engine, WS, datetime(2026, 1, 1, tzinfo=UTC))
        with database.transaction(engine) as conn:
            conn.execute(text("SET LOCAL enable_mergejoin = off"))  # a user's own setting
            store.open_versions(conn, WS, run_id, now, opened(["a"], [("x", "y")]))  # type: ignore[arg-type]
            settings = conn.execute(
                text(
                    "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
                )
            ).one()
        assert tuple(settings) == ("on", "off")
    finally:
        engine.dispose()


def test_apply_changes_closes_and_opens_in_one_call(engine: Engine) -> None:
    run_a, now_a = store.start_run(engine, WS, datetime(2026, 1, 1, tzinfo=UTC))
    with database.transaction(engine) as conn:
        store.open_versions(conn, WS, run_a, now_a, opened(["a"], []))  # type: ignore[arg-type]
    with engine.connect() as conn:
        current = store.load_current(conn, WS)
    ((version_id, _),) = current["columns"].values()
    run_b, now_b = store.start_run(engine, WS, datetime(2026, 1, 2, tzinfo=UTC))
    changes = Changes()
    changes.closed["columns"].append(version_id)
    changed = dict(COLUMN, column_type="STRING")
    changes.opened["columns"].append(((NS, "cat", "db", "t", "", "a"), changed))
    with database.transaction(engine) as conn:
        store.apply_changes(conn, WS, run_b, now_b, changes)
    with engine.connect() as conn:
        after = store.load_current(conn, WS)
    assert [attrs["column_type"] for _, attrs in after["columns"].values()] == ["STRING"]
    assert count(engine, "SELECT COUNT(*) FROM columns") == 1
    assert count(engine, "SELECT COUNT(*) FROM column_versions WHERE valid_to IS NOT NULL") == 1


def test_current_versions_of_given_keys_are_those_keys_exactly(engine: Engine) -> None:
    """A keyed diff reads the versions of its keys and no others: not a column of another
    table or owner of the same name, nor an edge that shares its source."""
    rows = opened(["a", "b"], [("s", "x"), ("s", "y"), ("t", "x")])
    rows["columns"].append(((NS, "cat", "db", "t", "dep-9", "a"), dict(COLUMN)))  # its owner's
    rows["columns"].append(((NS, "cat", "db", "u", "", "a"), dict(COLUMN)))
    run_id, now = store.start_run(engine, WS, datetime(2026, 1, 1, tzinfo=UTC))
    with database.transaction(engine) as conn:
        store.open_versions(conn, WS, run_id, now, rows)  # type: ignore[arg-type]
    wanted = {kind: set() for kind in KINDS}
    wanted["columns"] = {(NS, "cat", "db", "t", "", "a"), (NS, "cat", "db", "t", "", "zz")}
    wanted["column_edges"] = {(NS, "s", "", "y", "", "job-1")}
    with engine.connect() as conn:
        everything = store.load_current(conn, WS)
        chosen = store.load_current(conn, WS, only=wanted)
        again = store.load_current(conn, WS, only=wanted)  # its scratch tables reused
    assert len(everything["columns"]) == 4 and len(everything["column_edges"]) == 3
    for kind in KINDS:
        expected = {key: everything[kind][key] for key in wanted[kind] if key in everything[kind]}
        assert chosen[kind] == again[kind] == expected, kind
    assert set(chosen["columns"]) == {(NS, "cat", "db", "t", "", "a")}


def test_a_packed_payload_is_its_text_again_and_much_smaller() -> None:
    text = json.dumps({"lineage": [{"table": f"t_{i}", "note": "naïve ✓"} for i in range(500)]})
    packed = store.pack_payload(text.encode())
    assert store.unpack_payload(packed) == text
    assert len(packed) * 5 < len(text.encode())


def test_inserted_times_are_the_instants_given_however_often_they_repeat(engine: Engine) -> None:
    """insert_tuples converts each distinct time once (SQLite): equal instants in other zones
    and times that repeat across rows are stored as each would be alone, and read back equal."""
    from sqlalchemy import Column, Integer, MetaData
    from sqlalchemy import Table as SqlTable

    from exporter.sqltypes import UtcDateTime

    table = SqlTable(
        "times", MetaData(), Column("n", Integer, primary_key=True), Column("at", UtcDateTime())
    )
    noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    in_cet = noon.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+01:00").tzinfo)
    later = in_cet + timedelta(hours=1)
    given = [noon, in_cet, noon + timedelta(microseconds=1), None, noon, later]
    with engine.begin() as conn:
        table.create(conn)
        store.insert_tuples(conn, table, list(table.columns), list(enumerate(given)))
        read = [row.at for row in conn.execute(table.select().order_by(table.c.n))]
        stored_as_text = conn.exec_driver_sql("SELECT DISTINCT CAST(at AS TEXT) FROM times").all()
        table.drop(conn)
    assert read == given
    assert len(stored_as_text) == 4  # noon (three times), noon + 1 us, 13:00 and NULL
