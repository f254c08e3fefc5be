"""Unusual but possible GetLineageInfo bodies: what one job's lineage may look like on a bad day.

Each poison takes a job's normal lineage `data` and returns the whole response body to send: a
JSON value, or raw bytes for bodies that are not valid JSON. The simulator serves them for the
jobs chosen by `Faults.poisoned` (tests) or `--bad-rate` (the demo); the fault tests run each
one through a real sync. `STORED` says which of them the exporter stores (a value it replaces
or nulls is still stored), the rest fail their job alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

Poison = Callable[[dict[str, Any]], Any]

NUL = "\x00"
LONG = 1100  # characters: over the 1,024-byte limit on a qualified name or an edge endpoint
LONG_ID = 200  # characters: over the 128-byte limit on a deployment or job ID
HOSTILE = 'it\'s "quoted"; DROP TABLE tables; -- 🚀\nnext line <script>alert(1)</script>'


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestId": "poisoned-request",
        "success": True,
        "httpCode": 200,
        "errorCode": "",
        "errorMessage": "",
        "data": data,
    }


def _tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for node in data["nodes"] for t in node["tables"]]


def _extra_table(
    data: dict[str, Any], name: str = "poisoned", database: str = "poison_db", **table: Any
) -> dict[str, Any]:
    """`data` (a copy) with one more table of this job's own, in a node of its own: what the
    poison puts there is stored as sent (an attribute of a table that other jobs report too
    could lose the merge to theirs)."""
    data = copy.deepcopy(data)
    columns = table.pop("columns", [{"columnName": "id", "columnType": "BIGINT"}])
    data["nodes"].append(
        {
            "catalogName": "poison_catalog",
            "databaseName": database,
            "isTemporary": False,
            "connector": "print",
            "tables": [{"tableName": name, "columns": columns, **table}],
        }
    )
    return data


def nul_everywhere(data: dict[str, Any]) -> Any:
    """A NUL in every text field: names, types, descriptions, options, properties, edges."""
    data = copy.deepcopy(data)
    for node in data["nodes"]:
        node["catalogName"] += NUL
        node["databaseName"] += NUL
        for table in node["tables"]:
            table["tableName"] += NUL
            table["with"][f"key{NUL}"] = f"value{NUL}"
            table["properties"]["comment"] = f"nul{NUL}here"
            for column in table["columns"]:
                for key in ("columnName", "columnType", "columnNativeType", "description"):
                    column[key] = f"{column.get(key) or ''}{NUL}"
    for edge in data["edges"]["tableLineage"] + data["edges"]["columnLineage"]:
        edge["source"] += NUL  # no longer an ID of the payload: kept as a raw endpoint
    for info in data["jobInfos"]:
        info["properties"][f"p{NUL}"] = NUL
    return ok(data)


def _long_name(field: str) -> Poison:
    def poison(data: dict[str, Any]) -> Any:
        data = copy.deepcopy(data)
        if field in ("catalogName", "databaseName"):
            data["nodes"][0][field] = "n" * LONG
        elif field == "tableName":
            _tables(data)[0]["tableName"] = "t" * LONG
        elif field == "columnName":
            next(c for t in _tables(data) for c in t["columns"])["columnName"] = "c" * LONG
        elif field == "edge":
            data["edges"]["tableLineage"].append(
                {"source": "kafka://" + "e" * LONG, "destination": "x", "jobId": None}
            )
        elif field == "jobId":
            data["edges"]["tableLineage"].append(
                {"source": "kafka://topic", "destination": "y", "jobId": "j" * LONG_ID}
            )
        return ok(data)

    return poison


def readable_long_table_name(data: dict[str, Any]) -> Any:
    """A table name of 300 characters: long, but within what is stored."""
    return ok(_extra_table(data, "orders_" + "x" * 293))


def hostile_names(data: dict[str, Any]) -> Any:
    """Quotes, SQL, emoji, newlines and markup in names."""
    columns = [{"columnName": HOSTILE, "columnType": "STRING"}]
    return ok(_extra_table(data, HOSTILE, "db'; DROP TABLE columns; --", columns=columns))


def two_megabyte_value(data: dict[str, Any]) -> Any:
    return ok(_extra_table(data, properties={"huge": "v" * 2_000_000}))


def long_column_type(data: dict[str, Any]) -> Any:
    row = "ROW<" + ", ".join(f"f{i} INT" for i in range(12_000)) + ">"
    return ok(_extra_table(data, columns=[{"columnName": "nested", "columnType": row}]))


def wrong_types(data: dict[str, Any]) -> Any:
    data = copy.deepcopy(data)
    data["nodes"] = "not a list"
    return ok(data)


def null_data(data: dict[str, Any]) -> Any:
    return {**ok({}), "data": None}


def truncated(data: dict[str, Any]) -> Any:
    text = json.dumps(ok(data)).encode()
    return text[: len(text) // 2]


def invalid_utf8(data: dict[str, Any]) -> Any:
    return json.dumps(ok(data)).encode().replace(b'"tableName": "', b'"tableName": "\xff\xfe', 1)


def lone_surrogate(data: dict[str, Any]) -> Any:
    """`\\ud800` without its pair, as an escape (the only way JSON text can carry one)."""
    columns = [{"columnName": "id", "description": "before-LONE-after"}]
    text = json.dumps(ok(_extra_table(data, columns=columns))).encode()
    return text.replace(b"LONE", b"\\ud800", 1)


def deep_nesting(data: dict[str, Any], levels: int = 10_000) -> Any:
    text = json.dumps(ok(_extra_table(data, properties={"deep": "DEEP"}))).encode()
    return text.replace(b'"DEEP"', b"[" * levels + b"]" * levels, 1)


def duplicate_keys(data: dict[str, Any]) -> Any:
    """A key sent twice in one object: the last one counts (as in most JSON parsers)."""
    text = json.dumps(ok(_extra_table(data, "DUPLICATE"))).encode()
    return text.replace(b'"DUPLICATE"', b'"first_name", "tableName": "second_name"', 1)


def table_listed_twice(data: dict[str, Any]) -> Any:
    """One table listed twice in a node, with different columns: both sets of columns count."""
    data = _extra_table(data, "twice")
    node = data["nodes"][-1]
    twin = copy.deepcopy(node["tables"][0])
    twin["columns"] = [{"columnName": "only_in_the_twin", "columnType": "STRING"}]
    node["tables"].append(twin)
    return ok(data)


def edge_of_another_job(data: dict[str, Any]) -> Any:
    """An edge whose jobId is not the job's: kept with the job ID the API gave it."""
    data = copy.deepcopy(data)
    edge = copy.deepcopy(data["edges"]["tableLineage"][0])
    edge["jobId"] = "another-job-id"
    data["edges"]["tableLineage"].append(edge)
    return ok(data)


def huge_number(data: dict[str, Any]) -> Any:
    text = json.dumps(ok(_extra_table(data, properties={"parallelism": "HUGE"}))).encode()
    return text.replace(b'"HUGE"', b"1e400", 1)


POISONS: dict[str, Poison] = {
    "nul-everywhere": nul_everywhere,
    "long-catalog-name": _long_name("catalogName"),
    "long-database-name": _long_name("databaseName"),
    "long-table-name": _long_name("tableName"),
    "long-column-name": _long_name("columnName"),
    "long-edge-endpoint": _long_name("edge"),
    "long-edge-job-id": _long_name("jobId"),
    "300-character-table-name": readable_long_table_name,
    "hostile-names": hostile_names,
    "2-mb-value": two_megabyte_value,
    "100-kb-column-type": long_column_type,
    "wrong-types": wrong_types,
    "null-data": null_data,
    "truncated-body": truncated,
    "invalid-utf8": invalid_utf8,
    "lone-surrogate": lone_surrogate,
    "10000-levels": deep_nesting,
    "duplicate-keys": duplicate_keys,
    "table-listed-twice": table_listed_twice,
    "edge-of-another-job": edge_of_another_job,
    "huge-number": huge_number,
}
# Stored (with NUL and lone surrogates replaced, huge numbers nulled); the others fail the job.
STORED = {
    "nul-everywhere",
    "300-character-table-name",
    "hostile-names",
    "2-mb-value",
    "100-kb-column-type",
    "lone-surrogate",
    "duplicate-keys",
    "table-listed-twice",
    "edge-of-another-job",
    "huge-number",
}
