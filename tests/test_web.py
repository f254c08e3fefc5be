"""The explorer served by uvicorn on a loopback port, asked over HTTP: every page and its JSON
twin on both databases, escaping, the Content-Security-Policy, the token, and where it may
bind."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from conftest import write_config
from sqlalchemy import Engine
from web_history import (
    HOSTILE,
    HOSTILE_DEPLOYMENT,
    HOSTILE_TABLE,
    T0,
    T1,
    WS,
    write_explorer_history,
)

from exporter import database
from exporter.config import UiSettings
from exporter.database import make_engine
from exporter.errors import ConfigError
from exporter.simulator import Simulator
from exporter.web.server import Explorer


@pytest.fixture
def explorer_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    write_explorer_history(engine)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def serving(engine: Engine, ui: UiSettings | None = None) -> Iterator[httpx.Client]:
    """The explorer on a free loopback port, and an HTTP client of it (cookies kept)."""
    explorer = Explorer(engine, ui or UiSettings(), port=0).start()
    try:
        with httpx.Client(base_url=explorer.url, follow_redirects=True) as client:
            yield client
    finally:
        explorer.stop()


@pytest.fixture
def client(explorer_engine: Engine) -> Iterator[httpx.Client]:
    with serving(explorer_engine) as c:
        yield c


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def edges_of(body: dict[str, object]) -> set[tuple[str, str, str, str]]:
    return {(e["source"], e["destination"], e["job"], e["state"]) for e in body["edges"]}  # type: ignore[attr-defined,index]


def test_search_finds_tables_and_columns_with_their_edge_counts(client: httpx.Client) -> None:
    body = client.get("/search.json", params={"q": "c.d.b"}).json()
    (table,) = body["tables"]
    assert (table["name"], table["upstream"], table["downstream"]) == ("c.d.b", 1, 1)
    assert [c["name"] for c in body["columns"]] == ["c.d.b.k"]
    assert client.get("/search.json", params={"q": "100%_"}).json()["tables"] == []
    runs = body["recent_runs"]
    assert [r["run_id"] for r in runs] == [3, 2, 1]
    assert {"kind": "table_edge", "change": "removed", "count": 1} in runs[1]["changes"]
    page = client.get("/", params={"q": "c.d"})
    assert page.status_code == 200 and 'data-name="c.d.b"' in page.text


def test_the_graph_as_of_each_run_and_compared(client: httpx.Client) -> None:
    now = client.get("/lineage.json", params={"name": "c.d.c", "direction": "upstream"}).json()
    assert ("c.d.b", "c.d.c", "j2", "both") in edges_of(now)
    assert now["level"] == "table"
    column = client.get("/lineage.json", params={"name": "c.d.c.k"}).json()
    assert column["level"] == "column" and ("c.d.b.k", "c.d.c.k", "j2", "both") in edges_of(column)
    assert {i["started_at"] for i in now["instants"]} == {iso(t) for t in (T0, T1, T1 + (T1 - T0))}
    back = client.get("/lineage.json", params={"name": "c.d.c", "as_of": iso(T1)}).json()
    assert not any(e[:2] == ("c.d.b", "c.d.c") for e in edges_of(back))
    assert ("c.d.b", "c.d.c", "j2", "both") in edges_of(
        client.get("/lineage.json", params={"name": "c.d.c", "as_of": iso(T0)}).json()
    )
    compared = client.get(
        "/lineage.json", params={"name": "c.d.c", "as_of": iso(T1), "compare": iso(T0)}
    ).json()
    assert ("c.d.b", "c.d.c", "j2", "removed") in edges_of(compared)
    states = {n["name"]: n["state"] for n in compared["nodes"]}
    # Without b -> c, nothing upstream of b is reached at T1 either.
    assert (states["c.d.c"], states["c.d.b"], states["c.d.a"]) == ("both", "removed", "removed")
    statuses = {e["job"]: e["status"] for e in now["edges"]}
    assert statuses == {"j1": "RUNNING", "j2": "RUNNING", "j3": "FAILED"}
    names = {e["job"]: e["deployment"] for e in now["edges"]}
    assert names["j3"] == HOSTILE_DEPLOYMENT


def test_a_table_expands_to_its_column_edges(client: httpx.Client) -> None:
    body = client.get("/columns.json", params={"table": "c.d.c", "as_of": iso(T1)}).json()
    assert {(e["source"], e["destination"]) for e in body["edges"]} == {(f"{HOSTILE}.k", "c.d.c.k")}


def test_the_table_page_has_columns_history_and_jobs(client: httpx.Client) -> None:
    body = client.get("/table.json", params={"name": "c.d.b", "as_of": iso(T0)}).json()
    assert [(c["column_name"], c["column_type"]) for c in body["columns"]] == [("k", "INT")]
    later = client.get("/table.json", params={"name": "c.d.b"}).json()
    assert [(c["column_name"], c["column_type"]) for c in later["columns"]] == [("k", "BIGINT")]
    changed = [h for h in later["history"] if h["change"] == "changed"]
    assert [h["entity_name"] for h in changed] == ["c.d.b.k"]
    assert {(j["role"], j["job_id"], j["deployment_name"]) for j in later["jobs"]} == {
        ("writes", "j1", "deployment j1"),
        ("reads", "j2", "deployment j2"),
    }
    page = client.get("/table", params={"name": "c.d.b"})
    assert page.status_code == 200 and "BIGINT" in page.text
    assert '"type": "INT"' in page.text  # values shown as JSON (tojson escapes markup)
    table_added = next(h for h in later["history"] if h["entity_kind"] == "table")
    assert table_added["new_value"] == {"connector": "paimon", "with": {}}


def test_the_runs_page_lists_every_run(client: httpx.Client) -> None:
    runs = client.get("/runs.json").json()["runs"]
    assert [(r["run_id"], r["status"], r["seconds"]) for r in runs] == [
        (3, "succeeded", 3.0),
        (2, "succeeded", 3.0),
        (1, "succeeded", 3.0),
    ]
    assert client.get("/runs").text.count('class="run"') == 3


def test_hostile_names_are_escaped_everywhere(client: httpx.Client) -> None:
    for path, params in [
        ("/", {"q": "evil"}),
        ("/table", {"name": HOSTILE}),
        ("/lineage", {"name": HOSTILE}),
    ]:
        page = client.get(path, params=params)
        assert page.status_code == 200, path
        assert "<script>window.__pwned" not in page.text, path
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text, path
    # Only the pages' own scripts, all from /static.
    scripts = re.findall(r"<script[^>]*>", client.get("/lineage", params={"name": "c.d.c"}).text)
    assert scripts and all(f'src="{client.base_url}static/' in s for s in scripts)
    assert HOSTILE_TABLE in {
        n["name"].removeprefix("c.d.")
        for n in client.get("/lineage.json", params={"name": "c.d.c"}).json()["nodes"]
    }


def test_every_response_forbids_inline_scripts_and_other_origins(client: httpx.Client) -> None:
    for path in ("/", "/runs", "/lineage.json?name=c.d.c", "/static/graph.js", "/nowhere"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, path
        assert "unsafe-inline" not in csp
    assert client.get("/static/vendor/dagre.min.js").status_code == 200


def test_bad_parameters_are_400_with_a_reason(client: httpx.Client) -> None:
    assert client.get("/lineage.json").json() == {"error": "`name` is required"}
    bad = client.get("/lineage.json", params={"name": "x", "as_of": "yesterday-ish"})
    assert bad.status_code == 400 and "not an instant" in bad.json()["error"]
    assert client.get("/lineage", params={"name": "x", "depth": "99"}).status_code == 400
    assert client.get("/lineage", params={"name": "x", "direction": "sideways"}).status_code == 400


def test_a_token_guards_every_request(
    explorer_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPLORER_TOKEN", "s3cret-token")
    with serving(explorer_engine, UiSettings(token_env="EXPLORER_TOKEN")) as c:
        assert c.get("/runs.json").status_code == 401
        assert c.get("/static/graph.js").status_code == 401
        bearer = {"Authorization": "Bearer s3cret-token"}
        assert c.get("/runs.json", headers=bearer).status_code == 200
        assert c.get("/runs.json", headers={"Authorization": "Bearer nope"}).status_code == 401
        once = c.get("/runs?token=s3cret-token", follow_redirects=False)
        assert once.status_code == 303 and "token" not in once.headers["location"]
        assert "HttpOnly" in once.headers["set-cookie"]
        assert c.get("/runs.json").status_code == 200  # the cookie now


def test_the_explorer_binds_loopback_unless_it_has_a_token(
    explorer_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Explorer(explorer_engine, UiSettings()).host == "127.0.0.1"
    with pytest.raises(ConfigError, match="token_env"):
        Explorer(explorer_engine, UiSettings(host="0.0.0.0"))
    with pytest.raises(ConfigError, match="MY_UI_TOKEN, which is not set"):
        Explorer(explorer_engine, UiSettings(host="0.0.0.0", token_env="MY_UI_TOKEN"))
    monkeypatch.setenv("MY_UI_TOKEN", "t")
    assert Explorer(explorer_engine, UiSettings(host="0.0.0.0", token_env="MY_UI_TOKEN"))


def test_the_explorer_serves_on_a_thread(explorer_engine: Engine) -> None:
    explorer = Explorer(explorer_engine, UiSettings(), port=0).start()
    try:
        answer = httpx.get(explorer.url + "runs.json").json()
        assert answer["runs"][0]["workspace_id"] == WS
    finally:
        explorer.stop()


@pytest.mark.slow
def test_the_daemon_serves_the_explorer(
    sim_env: Simulator, sqlite_url: str, tmp_path: Path
) -> None:
    """`[ui] port` in the config: `run` serves the explorer beside its syncs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path / "c.toml", sim_env, sqlite_url, interval="1s")
    with config.open("a", encoding="utf-8") as f:
        f.write(f"\n[ui]\nport = {port}\n")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        runs: list[object] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not runs:
            with contextlib.suppress(httpx.TransportError):
                runs = httpx.get(f"http://127.0.0.1:{port}/runs.json").json()["runs"]
            time.sleep(0.3)
        assert runs, "the daemon's explorer never answered"
        page = httpx.get(f"http://127.0.0.1:{port}/?q=orders")
        assert page.status_code == 200 and "content-security-policy" in page.headers
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert f"lineage explorer at http://127.0.0.1:{port}/" in output


def test_the_table_history_is_what_lineage_changes_says(
    client: httpx.Client, explorer_engine: Engine
) -> None:
    """The page pairs the table's own versions (read by key); the feed says the same."""
    from sqlalchemy import text

    from exporter.web.data import iso as as_text

    with explorer_engine.connect() as conn:
        feed = conn.execute(
            text(
                "SELECT run_id, changed_at, entity_kind, entity_name, change FROM lineage_changes "
                "WHERE entity_kind IN ('table', 'column') AND entity_name IN ('c.d.b', 'c.d.b.k')"
            )
        ).all()
    expected = sorted((r, as_text(at), k, n, c) for r, at, k, n, c in feed)
    history = client.get("/table.json", params={"name": "c.d.b"}).json()["history"]
    got = sorted(
        (h["run_id"], h["changed_at"], h["entity_kind"], h["entity_name"], h["change"])
        for h in history
    )
    assert got == expected and len(got) == 3  # table added, column added, column changed
    (changed,) = [h for h in history if h["change"] == "changed"]
    assert (changed["old_value"]["type"], changed["new_value"]["type"]) == ("INT", "BIGINT")


def test_the_slider_stops_at_runs_that_changed_something(
    client: httpx.Client, explorer_engine: Engine
) -> None:
    from datetime import timedelta

    from exporter import store

    before = client.get("/lineage.json", params={"name": "c.d.c"}).json()["instants"]
    run_id, now = store.start_run(explorer_engine, WS, T1 + timedelta(days=5))
    with database.transaction(explorer_engine) as conn:  # a run that changed nothing
        store.finish_run(conn, run_id, now, store.RunOutcome("succeeded", 0, 3, 0, 0, 0, None))
    after = client.get("/lineage.json", params={"name": "c.d.c"}).json()["instants"]
    assert after == before and len(after) == 3
