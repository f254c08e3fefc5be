"""merge and diff: the history rules as unit tests on plain rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from exporter.history import Ranked, diff, diff_made_rows, diff_rows, keys_of, merge, restrict
from exporter.normalize import State

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(tables: dict[tuple[str, ...], dict[str, object]]) -> State:
    s = State.empty()
    s["tables"].update(tables)
    return s


def test_unchanged_writes_nothing() -> None:
    wanted = state({("a",): {"x": 1}})
    changes = diff(wanted, {"tables": {("a",): (10, {"x": 1})}})
    assert changes.rows_added == 0 and changes.rows_closed == 0


def test_new_changed_and_gone() -> None:
    wanted = state({("new",): {"x": 1}, ("changed",): {"x": 2}})
    current = {"tables": {("changed",): (1, {"x": 1}), ("gone",): (2, {"x": 1})}}
    changes = diff(wanted, current)
    assert sorted(changes.closed["tables"]) == [1, 2]
    assert sorted(changes.opened["tables"]) == [(("changed",), {"x": 2}), (("new",), {"x": 1})]
    assert changes.by_kind()["tables"] == (2, 2)


def test_merge_is_a_union_and_the_latest_fetch_wins() -> None:
    older = Ranked(T0, "dep-b", state({("t",): {"v": "old"}, ("only-b",): {}}))
    newer = Ranked(T0 + timedelta(seconds=1), "dep-a", state({("t",): {"v": "new"}}))
    merged = merge([newer, older])
    assert merged["tables"] == {("t",): {"v": "new"}, ("only-b",): {}}


def test_merge_ties_are_broken_by_deployment_id() -> None:
    a = Ranked(T0, "dep-a", state({("t",): {"v": "a"}}))
    b = Ranked(T0, "dep-b", state({("t",): {"v": "b"}}))
    assert merge([b, a])["tables"][("t",)] == {"v": "b"}
    assert merge([a, b])["tables"][("t",)] == {"v": "b"}


def test_keys_of_and_restrict() -> None:
    first = state({("a",): {"x": 1}, ("b",): {"x": 2}})
    second = state({("b",): {"x": 3}, ("c",): {"x": 4}})
    keys = keys_of([first, second])
    assert keys["tables"] == {("a",), ("b",), ("c",)} and keys["columns"] == set()
    only_b = restrict(second, {**keys, "tables": {("b",), ("z",)}})
    assert only_b["tables"] == {("b",): {"x": 3}}


def test_restrict_keeps_the_same_rows_whichever_side_is_smaller() -> None:
    rows = {(f"t{i}",): {"x": i} for i in range(10)}
    few_keys = {("t1",), ("t7",), ("gone",)}
    many_keys = {(f"t{i}",) for i in range(0, 40, 2)}
    for keys in (few_keys, many_keys):  # fewer keys than rows, then more
        kept = restrict(state(rows), {**keys_of([]), "tables": keys})
        assert kept["tables"] == {k: v for k, v in rows.items() if k in keys}
        assert kept["columns"] == {}


def test_a_diff_restricted_to_some_keys_leaves_the_others_alone() -> None:
    wanted = state({("changed",): {"x": 2}, ("same",): {"x": 1}})
    current = {"tables": {("changed",): (1, {"x": 1}), ("same",): (2, {"x": 1})}}
    affected = {**keys_of([]), "tables": {("changed",), ("gone",)}}
    restricted_current = {
        "tables": {k: v for k, v in current["tables"].items() if k in affected["tables"]}
    }
    changes = diff(restrict(wanted, affected), restricted_current)
    assert changes.closed["tables"] == [1]
    assert changes.opened["tables"] == [(("changed",), {"x": 2})]


def test_rows_made_one_at_a_time_diff_as_rows_held_whole() -> None:
    rng = random.Random(11)
    for _ in range(200):
        keys = [(f"ns{rng.randrange(2)}", f"d{i}") for i in range(rng.randrange(12))]
        wanted = {key: rng.randrange(3) for key in keys if rng.random() < 0.7}
        stored = {
            key: (version, {"v": rng.randrange(3)})
            for version, key in enumerate(keys)
            if rng.random() < 0.7
        }
        made = diff_made_rows(
            wanted,
            lambda value: {"v": value},
            ((key, version, attrs) for key, (version, attrs) in stored.items()),
        )
        whole = diff_rows({key: {"v": value} for key, value in wanted.items()}, stored)
        assert sorted(made[0]) == sorted(whole[0]) and sorted(made[1]) == sorted(whole[1])
