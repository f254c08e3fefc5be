"""What both databases can hold: response bodies made storable, and the limits on names (pure).

Every response body is decoded here, so nothing downstream meets text or JSON that PostgreSQL or
SQLite would refuse, and the two databases store the same values:

- NUL (`\\u0000`), which PostgreSQL's text and jsonb cannot hold, becomes U+FFFD (the Unicode
  replacement character), in keys and values alike;
- a lone UTF-16 surrogate escape (`\\ud800` without its pair), which is not a character and
  cannot be encoded, becomes U+FFFD too;
- numbers beyond a double's range (`1e400`) and the non-standard `NaN` / `Infinity` become null;
- JSON nested deeper than MAX_JSON_DEPTH levels is refused (the job fails, named);
- bytes that are not UTF-8 are refused (not JSON).

Names become keys of unique indexes, whose entries PostgreSQL bounds (about 2.7 kB), so a
qualified name (`catalog.database.table[.column]`) or a raw edge endpoint may be at most
MAX_NAME_BYTES bytes of UTF-8, and a deployment or job ID at most MAX_ID_BYTES; a longer one
fails its job (or deployment), named, the same way on both databases.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic_core import from_json

# The JSON parser's own limit (jiter's recursion limit counts from the second level).
MAX_JSON_DEPTH = 201
MAX_NAME_BYTES = 1024
MAX_ID_BYTES = 128
REPLACEMENT = "\ufffd"

_NUL_ESCAPE = b"\\u0000"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnstorableBody(ValueError):
    """A body that cannot be stored: not JSON, or nested too deeply. The message says which."""


def decode_body(content: bytes) -> Any:
    """Decode a response body into JSON values both databases can store (see the module)."""
    try:
        value = from_json(content, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise UnstorableBody(_too_deep()) from None
        # Rare: lone surrogates, NaN/Infinity literals, or no JSON at all.
        return storable(_decode_leniently(content))
    # Checking the body as sent is far cheaper than walking every decoded value. (Non-finite
    # numbers are nulled where they can reach a row, in `wire.FreeForm`, and when a payload is
    # serialized: walking each body for them would cost as much as decoding it.)
    return storable(value) if _NUL_ESCAPE in content else value


def storable(value: Any, depth: int = 1) -> Any:
    """`value` with NUL and lone surrogates replaced and non-finite numbers nulled, or
    UnstorableBody when it is nested deeper than MAX_JSON_DEPTH."""
    if depth > MAX_JSON_DEPTH:
        raise UnstorableBody(_too_deep())
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD (the same text when it has none)."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is short enough not to matter."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def too_long(text: str, limit: int) -> bool:
    """Whether `text` is longer than `limit` bytes of UTF-8."""
    return len(text) > limit // 4 and utf8_length(text) > limit


def describe_too_long(what: str, text: str, limit: int) -> str:
    """A message naming the over-long value by its start (never the whole of it)."""
    start = text[:60] + ("..." if len(text) > 60 else "")
    return f"{what} {start!r} is {utf8_length(text):,} bytes; at most {limit:,} are stored"


def _decode_leniently(content: bytes) -> Any:
    try:
        return json.loads(content)
    except RecursionError:
        raise UnstorableBody(_too_deep()) from None
    except UnicodeDecodeError:
        raise UnstorableBody("not valid JSON: the body is not UTF-8") from None
    except ValueError:
        raise UnstorableBody("not valid JSON") from None


def _too_deep() -> str:
    return f"JSON nested deeper than {MAX_JSON_DEPTH} levels (the most that is stored)"
