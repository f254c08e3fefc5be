"""The fault matrix: each fault against the simulator, on both databases, through the CLI.

Every case: a good sync first; then the fault; then the expected outcome is asserted, and that
nothing stored before was lost or changed; then the fault is lifted and the next sync recovers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, write_config
from sqlalchemy import text

from exporter.simulator import Simulator

HISTORY_VIEWS = ("jobs", "tables", "columns", "table_edges", "column_edges")


def frozen(row: tuple[object, ...]) -> tuple[object, ...]:
    """A row as a hashable value, alike on both databases (JSON as sorted text)."""
    return tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v for v in row)


def history(h: Harness, view: str) -> set[tuple[object, ...]]:
    return {frozen(r) for r in h.rows(f"SELECT * FROM lineage_{view}_history")}


def stored(h: Harness) -> dict[str, set[tuple[object, ...]]]:
    """Every history row and every contribution: what must survive a fault untouched."""
    state = {view: history(h, view) for view in HISTORY_VIEWS}
    state["contributions"] = set(
        h.rows("SELECT deployment_fk, job_id, content_hash, fetched_at FROM contributions")
    )
    return state


def a_job(h: Harness) -> str:
    deployment = next(
        d for ns in h.world.namespaces.values() for d in ns.deployments.values() if d.jobs
    )
    assert deployment.current_job is not None
    return deployment.current_job.id


def change_the_world(h: Harness) -> None:
    """The API's truth moves on while the fault lasts: a fault must not let it in half-way."""
    h.world.advance(changes=6)


@dataclass(frozen=True)
class Case:
    name: str
    inject: Any  # (Harness) -> None
    exit_code: int
    status: str
    error: str | None  # expected in the run's error_summary
    config: dict[str, str]


def _throttle_storm(h: Harness) -> None:
    h.sim.faults.throttle_next = 4  # a burst the retries ride out


def _throttle_forever(h: Harness) -> None:
    h.sim.faults.throttle_rate = 1.0


def _server_error_burst(h: Harness) -> None:
    h.sim.faults.server_error_next = 4


def _everything_slow(h: Harness) -> None:
    h.sim.faults.slow_rate = 1.0
    h.sim.faults.slow_seconds = 2.0  # longer than read_timeout: every request times out


def _job(kind: str) -> Any:
    def inject(h: Harness) -> None:
        h.sim.faults.job_faults[a_job(h)] = kind

    return inject


CASES = [
    Case("throttling storm, retried", _throttle_storm, 0, "succeeded", None, {"max_attempts": "8"}),
    Case("throttling beyond the retry budget", _throttle_forever, 1, "failed", "Throttling", {}),
    Case("5xx burst, retried", _server_error_burst, 0, "succeeded", None, {"max_attempts": "8"}),
    Case(
        "timeouts on every request",
        _everything_slow,
        1,
        "failed",
        "Timeout",
        {"read_timeout": "0.5s", "max_attempts": "1"},
    ),
    Case("malformed JSON for one job", _job("malformed"), 1, "partial", "not valid JSON", {}),
    Case("success false with a code", _job("refused"), 1, "partial", "JobLineageUnavailable", {}),
    Case("wrong types in a payload", _job("bad-shape"), 1, "partial", "tables", {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_matrix(case: Case, sim_env: Simulator, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", sim_env, db_url, **case.config)
    h = Harness(sim_env, db_url, config)
    assert h.sync() == 0
    before = stored(h)
    change_the_world(h)
    case.inject(h)

    assert h.sync() == case.exit_code
    run = h.last_run()
    assert run["status"] == case.status
    if case.error:
        assert case.error in str(run["error_summary"])
    after = stored(h)
    if case.status == "failed":
        assert after == before  # a failed run writes nothing at all
    else:
        for view, rows in before.items():
            if view == "contributions":
                continue
            # Rows may be closed or added by what did succeed; none may disappear or be rewritten
            # except by closing (valid_to set) at this run's start.
            closed = {r for r in rows if r not in after[view]}
            assert all(_closed_at(h, view, r) for r in closed), (view, closed)
    # The fault lifts: the next sync recovers and the state equals the API's truth.
    h.sim.faults.throttle_rate = 0.0
    h.sim.faults.slow_rate = 0.0
    h.sim.faults.job_faults.clear()
    assert h.sync() == 0
    assert h.last_run()["status"] == "succeeded"
    h.engine.dispose()


def _closed_at(h: Harness, view: str, row: tuple[object, ...]) -> bool:
    """The row exists again, identical but for a valid_to set by a later run."""
    with h.engine.connect() as conn:
        columns = list(conn.execute(text(f"SELECT * FROM lineage_{view}_history")).keys())
    rows = history(h, view)
    valid_to = columns.index("valid_to")
    for other in rows:
        same = all(a == b for i, (a, b) in enumerate(zip(row, other, strict=True)) if i != valid_to)
        if same and row[valid_to] is None and other[valid_to] is not None:
            return True
    return False


def test_auth_failure_names_the_workspace_and_others_go_on(
    sim_env: Simulator, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = write_config(tmp_path / "c.toml", sim_env, db_url)
    monkeypatch.setenv("WRONG_KEY_ID", sim_env.access_key_id)
    monkeypatch.setenv("WRONG_SECRET", "not-the-secret")
    with config.open("a", encoding="utf-8") as f:
        f.write(
            f'\n[[workspaces]]\nid = "ws-wrong-key"\nendpoint = "{sim_env.url}"\n'
            'namespaces = ["default-namespace"]\nmax_attempts = 5\n'
            '[workspaces.credentials]\naccess_key_id_env = "WRONG_KEY_ID"\n'
            'access_key_secret_env = "WRONG_SECRET"\n'
        )
    h = Harness(sim_env, db_url, config)
    assert h.sync() == 1
    out, err = capsys.readouterr()
    assert f"{sim_env.world.workspace_id}: succeeded" in out
    assert "ws-wrong-key: failed" in out
    assert "workspace ws-wrong-key" in err and "SignatureDoesNotMatch" in err
    assert sim_env.stats.rejected["SignatureDoesNotMatch"] == 1  # never retried
    assert "not-the-secret" not in out + err
    runs = dict(h.rows("SELECT workspace_id, status FROM lineage_sync_runs"))
    assert runs == {sim_env.world.workspace_id: "succeeded", "ws-wrong-key": "failed"}
    h.engine.dispose()


def test_sync_deadline_stops_a_slow_sync_and_writes_nothing(
    sim_env: Simulator, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", sim_env, db_url, concurrency="1")
    h = Harness(sim_env, db_url, config)
    assert h.sync() == 0
    before = stored(h)
    change_the_world(h)
    sim_env.faults.latency = 0.2
    with config.open("a", encoding="utf-8") as f:
        f.write('sync_deadline = "1s"\n')  # the last section is the workspace
    started = time.monotonic()
    assert h.sync() == 1
    assert time.monotonic() - started < 10
    run = h.last_run()
    assert run["status"] == "failed" and "deadline" in str(run["error_summary"])
    assert stored(h) == before
    h.engine.dispose()


def test_database_connection_lost_mid_sync_rolls_back_and_recovers(
    sim_env: Simulator, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter import store

    config = write_config(tmp_path / "c.toml", sim_env, pg_url)
    h = Harness(sim_env, pg_url, config)
    assert h.sync() == 0
    before = stored(h)
    change_the_world(h)
    real_apply = store.apply_changes

    def apply_then_lose_the_connection(conn: Any, *args: Any) -> None:
        real_apply(conn, *args)
        # The server ends this session mid-transaction, as a restart or failover would.
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with h.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()

    monkeypatch.setattr(store, "apply_changes", apply_then_lose_the_connection)
    assert h.sync() == 1
    assert h.last_run()["status"] == "failed"
    assert stored(h) == before
    monkeypatch.setattr(store, "apply_changes", real_apply)
    assert h.sync() == 0
    assert h.last_run()["status"] == "succeeded"
    assert stored(h) != before  # the change the lost run could not write is in now
    h.engine.dispose()


def test_daemon_waits_for_an_unreachable_database_and_stays_up(
    sim_env: Simulator, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    config = write_config(tmp_path / "c.toml", sim_env, url, interval="1s")
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim_env.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim_env.access_key_secret,
    }
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--config", str(config), "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while "retrying in 2s" not in log.read_text():
                assert daemon.poll() is None, log.read_text()  # it stays up
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
    text_ = log.read_text()
    assert "retrying in 1s" in text_ and "retrying in 2s" in text_  # backing off
