"""Bodies made storable and the limits on names: pure, no server, no database."""

from __future__ import annotations

import json

import pytest

from exporter.storable import (
    MAX_ID_BYTES,
    MAX_JSON_DEPTH,
    MAX_NAME_BYTES,
    REPLACEMENT,
    UnstorableBody,
    decode_body,
    describe_too_long,
    storable,
    storable_text,
    too_long,
    utf8_length,
)


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_an_ordinary_body_decodes_as_json_does() -> None:
    body = {"success": True, "data": {"nodes": [{"tableName": "t", "n": 1.5, "big": 10**30}]}}
    text = json.dumps(body).encode()
    assert decode_body(text) == json.loads(text)


def test_nul_becomes_the_replacement_character_in_keys_and_values() -> None:
    text = json.dumps({"a\u0000b": ["x\u0000", {"k": "\u0000"}]}).encode()
    assert b"\\u0000" in text
    assert decode_body(text) == {f"a{REPLACEMENT}b": [f"x{REPLACEMENT}", {"k": REPLACEMENT}]}


def test_a_lone_surrogate_becomes_the_replacement_character_and_a_pair_stays() -> None:
    text = b'{"lone": "a\\ud800b", "pair": "\\ud83d\\ude80", "low": "\\udc00"}'
    assert decode_body(text) == {"lone": f"a{REPLACEMENT}b", "pair": "🚀", "low": REPLACEMENT}


def test_non_finite_numbers_become_null() -> None:
    assert decode_body(b'{"a": NaN, "b": [Infinity, -Infinity], "c": 1}') == {
        "a": None,
        "b": [None, None],
        "c": 1,
    }
    assert storable({"huge": float("inf"), "fine": 2.5}) == {"huge": None, "fine": 2.5}


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 3_000, 10_000])
def test_nesting_deeper_than_the_limit_is_refused_with_a_clear_message(levels: int) -> None:
    with pytest.raises(UnstorableBody, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        decode_body(nested(levels))


def test_nesting_up_to_the_limit_is_taken_on_either_path() -> None:
    assert decode_body(nested(MAX_JSON_DEPTH)) is not None
    # A body that needs the lenient path (a lone surrogate) is held to the same limit.
    lenient = b'{"s": "\\ud800", "d": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    assert decode_body(lenient)["s"] == REPLACEMENT
    too_deep = b'{"s": "\\ud800", "d": ' + nested(MAX_JSON_DEPTH) + b"}"
    with pytest.raises(UnstorableBody, match="nested deeper"):
        decode_body(too_deep)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"success": true, "data": {"nodes": [', "not valid JSON"),
        (b'{"name": "\xff\xfe"}', "not UTF-8"),
        (b"", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(UnstorableBody, match=message):
        decode_body(body)


def test_duplicate_keys_keep_the_last_value() -> None:
    assert decode_body(b'{"k": 1, "k": 2}') == {"k": 2}


def test_storable_text_returns_the_same_object_when_nothing_is_replaced() -> None:
    text = "plain text, with emoji 🚀"
    assert storable_text(text) is text
    assert storable_text("a\x00b\ud800") == f"a{REPLACEMENT}b{REPLACEMENT}"


def test_lengths_are_utf8_bytes() -> None:
    assert utf8_length("abc") == 3
    assert utf8_length("é") == 2 and utf8_length("🚀") == 4
    assert not too_long("x" * MAX_NAME_BYTES, MAX_NAME_BYTES)
    assert too_long("x" * (MAX_NAME_BYTES + 1), MAX_NAME_BYTES)
    # 300 emoji are 300 characters but 1,200 bytes.
    assert too_long("🚀" * 300, MAX_NAME_BYTES)
    assert not too_long("é" * (MAX_ID_BYTES // 2), MAX_ID_BYTES)
    assert too_long("é" * (MAX_ID_BYTES // 2 + 1), MAX_ID_BYTES)


def test_a_too_long_message_shows_the_start_and_the_size_never_the_whole() -> None:
    message = describe_too_long("the ID", "d" * 5000, MAX_ID_BYTES)
    assert "5,000 bytes" in message and f"at most {MAX_ID_BYTES}" in message
    assert "d" * 61 not in message
