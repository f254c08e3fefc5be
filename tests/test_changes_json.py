"""`diff` over a bare driver connection, as changes and encoded by the database: the same
changes as `exporter.changes.diff` over SQLAlchemy, in the same order (each line the JSON of
its `to_dict()`), on both databases."""

from __future__ import annotations

import itertools
import json
from datetime import datetime

import pytest
from conftest import Harness, churned_history, run_instants
from sqlalchemy import bindparam, text

from exporter import changes_json
from exporter.changes import diff
from exporter.changes_json import json_changes
from exporter.dbapi import Connection
from exporter.sqltypes import UtcDateTime


@pytest.mark.parametrize("live_only", [False, True])
def test_the_database_encodes_what_diff_makes(
    harness: Harness, live_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    monkeypatch.setattr(changes_json, "STREAM_BATCH", 7)  # answers span several batches
    churned_history(h)
    instants = run_instants(h)
    compared = 0
    with h.engine.connect() as conn, Connection(h.url) as bare:
        for start, end in itertools.permutations(instants, 2):
            made = [c.to_dict() for c in diff(conn, start, end, live_only=live_only)]
            assert [c.to_dict() for c in diff(bare, start, end, live_only=live_only)] == made
            encoded = [json.loads(line) for line in json_changes(bare, start, end, None, live_only)]
            assert encoded == made, (start, end)
            compared += len(made)
        first, last = instants[0], instants[-1]
        scoped = list(json_changes(bare, first, last, h.world.workspace_id, live_only))
        assert scoped == list(json_changes(bare, first, last, None, live_only))
        assert list(json_changes(bare, first, last, "another-workspace", live_only)) == []
        assert list(json_changes(bare, last, last, None, live_only)) == []
    assert compared > 100  # the history really changed


def _replaced_mid_window(
    h: Harness, table: str, column: str, values: list[tuple[str, str]], as_json: bool = False
) -> tuple[datetime, datetime]:
    """After one sync, give the first versions of `table` the `column` values `old` and then,
    from midway between the run and a day later, `new` (one pair per version, a new version
    each); the window (the run, three quarters of that day) that holds the change."""
    from sqlalchemy import inspect

    assert h.sync() == 0
    _, start, end = run_instants(h)  # the run, and a day after it
    middle = start + (end - start) / 2
    names = [c["name"] for c in inspect(h.engine).get_columns(table)]
    copied = ", ".join(c for c in names if c not in ("id", "valid_from", column))
    value = "CAST(:p AS jsonb)" if as_json and h.url.startswith("postgresql") else ":p"
    with h.engine.begin() as conn:
        versions = [r[0] for r in conn.exec_driver_sql(
            f"SELECT id FROM {table} ORDER BY id LIMIT {len(values)}")]  # fmt: skip
        for version, (old, new) in zip(versions, values, strict=True):
            for sql, params in (
                (f"UPDATE {table} SET {column} = {value} WHERE id = :v", {"p": old}),
                (f"UPDATE {table} SET valid_to = :t WHERE id = :v", {"t": middle}),
                (
                    f"INSERT INTO {table} ({copied}, valid_from, {column}) "
                    f"SELECT {copied.replace('valid_to', 'NULL')}, :t, {value} "
                    f"FROM {table} WHERE id = :v",
                    {"t": middle, "p": new},
                ),
            ):
                statement = text(sql)
                if "t" in params:
                    statement = statement.bindparams(bindparam("t", type_=UtcDateTime))
                conn.execute(statement, {**params, "v": version})
    return start, middle + (end - middle) / 2


def test_json_that_differs_as_text_only_is_no_change(harness: Harness) -> None:
    """A job version whose JSON holds the same values as its predecessor's, its keys in
    another order (SQLite keeps JSON as text; PostgreSQL's jsonb compares values), is not a
    change, as `diff` says too; a real change next to it is."""
    start, later = _replaced_mid_window(
        harness,
        "job_versions",
        "properties",
        [
            ('{"a": 1, "b": [1, 2]}', '{"b": [1, 2], "a": 1}'),  # the same values
            ('{"a": 1}', '{"a": 2}'),  # a change
        ],
        as_json=True,
    )
    with harness.engine.connect() as conn, Connection(harness.url) as bare:
        made = [c.to_dict() for c in diff(conn, start, later)]
        encoded = [json.loads(line) for line in json_changes(bare, start, later)]
    jobs = [c for c in made if c["kind"] == "job" and c["change"] == "changed"]
    assert [c["new"]["properties"] for c in jobs] == [{"a": 2}]
    assert encoded == made


def test_strings_that_json_escapes_are_escaped(harness: Harness) -> None:
    """PostgreSQL quotes a row's strings as they are when none holds a character JSON escapes
    (quote, backslash, control characters) and escapes them otherwise: column descriptions
    that hold them, next to columns whose strings do not, encode as `diff` makes them, on both
    databases."""
    escaped = ['say "hi"', "back\\slash", "line\nbreak\ttab\x01\x1f", "del\x7f é 中"]
    pairs = list(zip(escaped, [*escaped[2:], "plain"], strict=False))
    start, later = _replaced_mid_window(harness, "column_versions", "description", pairs)
    with harness.engine.connect() as conn, Connection(harness.url) as bare:
        made = [c.to_dict() for c in diff(conn, start, later)]
        lines = list(json_changes(bare, start, later))
    described = [(c["old"]["description"], c["new"]["description"]) for c in made]
    assert sorted(described) == sorted(pairs)
    assert [json.loads(line) for line in lines] == made
    assert all("\n" not in line and "\x01" not in line for line in lines)  # one line each
