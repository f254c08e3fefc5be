"""`diff` over a bare driver connection, as changes and encoded by the database: the same
changes as `exporter.changes.diff` over SQLAlchemy, in the same order (each line the JSON of
its `to_dict()`), on both databases."""

from __future__ import annotations

import itertools
import json

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


def test_json_that_differs_as_text_only_is_no_change(harness: Harness) -> None:
    """A job version whose JSON holds the same values as its predecessor's, its keys in
    another order (SQLite keeps JSON as text; PostgreSQL's jsonb compares values), is not a
    change, as `diff` says too; a real change next to it is."""
    from sqlalchemy import inspect

    h = harness
    assert h.sync() == 0
    _, start, end = run_instants(h)  # the run, and a day after it
    middle = start + (end - start) / 2
    columns = [c["name"] for c in inspect(h.engine).get_columns("job_versions")]
    copied = ", ".join(c for c in columns if c not in ("id", "valid_from", "properties"))
    as_json = "CAST(:p AS jsonb)" if h.url.startswith("postgresql") else ":p"
    with h.engine.begin() as conn:
        first, second = (r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM job_versions ORDER BY id LIMIT 2"))  # fmt: skip
        for version, (old, new) in (
            (first, ('{"a": 1, "b": [1, 2]}', '{"b": [1, 2], "a": 1}')),  # the same values
            (second, ('{"a": 1}', '{"a": 2}')),  # a change
        ):
            for sql, params in (
                (f"UPDATE job_versions SET properties = {as_json} WHERE id = :v", {"p": old}),
                ("UPDATE job_versions SET valid_to = :t WHERE id = :v", {"t": middle}),
                (
                    f"INSERT INTO job_versions ({copied}, valid_from, properties) "
                    f"SELECT {copied.replace('valid_to', 'NULL')}, :t, {as_json} "
                    "FROM job_versions WHERE id = :v",
                    {"t": middle, "p": new},
                ),
            ):
                statement = text(sql)
                if "t" in params:
                    statement = statement.bindparams(bindparam("t", type_=UtcDateTime))
                conn.execute(statement, {**params, "v": version})
    later = middle + (end - middle) / 2
    with h.engine.connect() as conn, Connection(h.url) as bare:
        made = [c.to_dict() for c in diff(conn, start, later)]
        encoded = [json.loads(line) for line in json_changes(bare, start, later)]
    jobs = [c for c in made if c["kind"] == "job" and c["change"] == "changed"]
    assert [c["new"]["properties"] for c in jobs] == [{"a": 2}]
    assert encoded == made


def test_strings_that_json_escapes_are_escaped(harness: Harness) -> None:
    """PostgreSQL quotes a row's strings as they are when none holds a character JSON escapes
    (quote, backslash, control characters) and escapes them otherwise: a column whose
    description and type hold them, next to columns whose strings do not, encodes as `diff`
    makes it, on both databases."""
    from sqlalchemy import inspect

    h = harness
    assert h.sync() == 0
    _, start, end = run_instants(h)
    middle = start + (end - start) / 2
    columns = [c["name"] for c in inspect(h.engine).get_columns("column_versions")]
    copied = ", ".join(c for c in columns if c not in ("id", "valid_from", "description"))
    escaped = ('say "hi"', "back\\slash", "line\nbreak\ttab\x01\x1f", "del\x7f é 中")
    with h.engine.begin() as conn:
        versions = [r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM column_versions ORDER BY id LIMIT 3")]  # fmt: skip
        for version, old, new in zip(versions, escaped, (*escaped[2:], "plain"), strict=False):
            for sql, params in (
                ("UPDATE column_versions SET description = :d WHERE id = :v", {"d": old}),
                ("UPDATE column_versions SET valid_to = :t WHERE id = :v", {"t": middle}),
                (
                    f"INSERT INTO column_versions ({copied}, valid_from, description) "
                    f"SELECT {copied.replace('valid_to', 'NULL')}, :t, :d "
                    "FROM column_versions WHERE id = :v",
                    {"t": middle, "d": new},
                ),
            ):
                statement = text(sql)
                if "t" in params:
                    statement = statement.bindparams(bindparam("t", type_=UtcDateTime))
                conn.execute(statement, {**params, "v": version})
    later = middle + (end - middle) / 2
    with h.engine.connect() as conn, Connection(h.url) as bare:
        made = [c.to_dict() for c in diff(conn, start, later)]
        lines = list(json_changes(bare, start, later))
    described = [(c["old"]["description"], c["new"]["description"]) for c in made]
    assert sorted(described) == sorted(zip(escaped, (*escaped[2:], "plain"), strict=False))
    assert [json.loads(line) for line in lines] == made
    assert all("\n" not in line and "\x01" not in line for line in lines)  # one line each
