"""A small history for the explorer's tests, written through the real store: three runs in
which an edge disappears and comes back, a column changes type, and one table's name and one
deployment's name are hostile (quotes, markup, emoji, a newline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from exporter import database, store
from exporter.history import diff as history_diff
from exporter.normalize import State, job_attributes

WS, NS = "ws-explorer", "default-namespace"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)
HOSTILE_TABLE = "evil<script>window.__pwned=1</script>'\"🙂\nx"
HOSTILE = f"c.d.{HOSTILE_TABLE}"
HOSTILE_DEPLOYMENT = '<img src=x onerror=window.__pwned=2> "dep" 🙂'
# (source table, destination table, job) per run
EDGES = {
    T0: [("a", "b", "j1"), ("b", "c", "j2"), (HOSTILE_TABLE, "c", "j3")],
    T1: [("a", "b", "j1"), (HOSTILE_TABLE, "c", "j3")],
    T2: [("a", "b", "j1"), ("b", "c", "j2"), (HOSTILE_TABLE, "c", "j3")],
}
B_TYPE = {T0: "INT", T1: "BIGINT", T2: "BIGINT"}


def _state(at: datetime) -> State:
    state = State.empty()
    tables = {"a", "b", "c", HOSTILE_TABLE}
    for table in tables:
        key = (NS, "c", "d", table, "")
        state["tables"][key] = {
            "node_id": "n1", "table_uid": f"uid-{table}", "connector": "paimon",
            "is_temporary": False, "with_options": {}, "properties": {},
        }  # fmt: skip
        column_type = B_TYPE[at] if table == "b" else "STRING"
        state["columns"][(*key, "k")] = {
            "column_uid": f"col-{table}", "column_type": column_type,
            "column_native_type": column_type, "nullable": True, "description": None,
            "column_created_at": None, "column_modified_at": None,
            "column_creator": None, "column_modifier": None,
        }  # fmt: skip
    for source, destination, job in EDGES[at]:
        state["table_edges"][(NS, f"c.d.{source}", "", f"c.d.{destination}", "", job)] = {}
        state["column_edges"][(NS, f"c.d.{source}.k", "", f"c.d.{destination}.k", "", job)] = {}
        status = "FAILED" if job == "j3" else "RUNNING"
        state["jobs"][(NS, f"dep-{job}")] = {
            "job_id": job,
            "deployment_name": HOSTILE_DEPLOYMENT if job == "j3" else f"deployment {job}",
            "properties": {},
            **job_attributes({"status": {"currentJobStatus": status}}, {}),
        }
    return state


def write_explorer_history(engine: Engine) -> list[datetime]:
    """The three runs, through the store; returns their instants."""
    instants = []
    for at in (T0, T1, T2):
        run_id, now = store.start_run(engine, WS, at)
        with database.transaction(engine) as conn:
            changes = history_diff(_state(at), store.load_current(conn, WS))
            store.apply_changes(conn, WS, run_id, now, changes)
            store.refresh_statistics(conn, changes.rows_added)
            store.record_change_counts(conn, run_id)
            outcome = store.RunOutcome(
                "succeeded", 0, 3, 0, changes.rows_added, changes.rows_closed, None
            )
            store.finish_run(conn, run_id, at + timedelta(seconds=3), outcome)
        instants.append(now)
    return instants
