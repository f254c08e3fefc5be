"""`diff` as JSON encoded by the database: the same changes, in the same order, as
`exporter.changes.iter_diff` makes into `Change` objects, each one text line (its `to_dict()`),
read over a bare driver connection (`exporter.dbapi`). A week of changes is 100,000s of them:
Python only passes their lines on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from exporter.changes_sql import ENTITY_KINDS, change_json_sql, diff_params, namespace_order_sql
from exporter.dbapi import Connection

# Lines fetched per round trip: a few MB.
STREAM_BATCH = 5000


def json_changes(
    conn: Connection,
    start: datetime,
    end: datetime,
    workspace_id: str | None = None,
    live_only: bool = False,
) -> Iterator[str]:
    """Each change between `start` and `end` as one compact JSON object, kind by kind, each
    kind in key order; the connection stays busy until the iterator is exhausted or closed."""
    if start == end:
        return
    order = [row[0] for row in conn.rows(namespace_order_sql(conn.dialect), {})]
    params = diff_params(start, end, workspace_id, order)
    scoped, backwards = workspace_id is not None, start > end
    for kind in ENTITY_KINDS:
        sql = change_json_sql(
            kind, scoped, live_only, backwards, conn.dialect, len(order), conn.parallel
        )
        for (line,) in conn.rows(sql, params, STREAM_BATCH):
            yield line
