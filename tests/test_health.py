"""Health and metrics: /healthz from the database, /metrics in the Prometheus text format."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import write_config
from prometheus_client.parser import text_string_to_metric_families

from exporter import database, store
from exporter.health import Metrics, health
from exporter.simulator import Simulator
from exporter.sync import SyncSummary

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _run(url: str, workspace: str, status: str, finished: datetime) -> None:
    engine = database.make_engine(url)
    run_id, _ = store.start_run(engine, workspace, finished - timedelta(seconds=5))
    outcome = store.RunOutcome(status, 0, 0, 0, 0, 0, None if status == "succeeded" else "boom")
    with database.transaction(engine) as conn:
        store.finish_run(conn, run_id, finished, outcome)
    engine.dispose()


def test_metrics_render_what_the_runs_did() -> None:
    metrics = Metrics()
    summary = SyncSummary("ws-1", run_id=3, status="succeeded", lineage_changes=(7, 2))
    summary.api_requests, summary.api_retries = 12, 3
    summary.api_errors = {"Throttling.User": 3}
    summary.fetch_seconds, summary.write_seconds = 1.5, 0.5
    metrics.record(summary, NOW)
    metrics.record(SyncSummary("ws-1", status="partial"), NOW)
    text = metrics.render().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    last = ("lineage_exporter_last_success_timestamp_seconds", (("workspace", "ws-1"),))
    assert samples[last] == NOW.timestamp()  # the partial run did not move it
    assert 'lineage_exporter_runs_total{status="succeeded",workspace="ws-1"} 1.0' in text
    assert 'lineage_exporter_runs_total{status="partial",workspace="ws-1"} 1.0' in text
    assert 'lineage_exporter_rows_added_total{workspace="ws-1"} 7.0' in text
    assert 'lineage_exporter_rows_closed_total{workspace="ws-1"} 2.0' in text
    assert 'lineage_exporter_api_requests_total{workspace="ws-1"} 12.0' in text
    assert 'lineage_exporter_api_retries_total{workspace="ws-1"} 3.0' in text
    assert 'lineage_exporter_api_errors_total{code="Throttling.User",workspace="ws-1"} 3.0' in text
    assert 'lineage_exporter_run_duration_seconds_count{workspace="ws-1"} 2.0' in text


def test_health_answers_from_the_latest_runs(db_url: str) -> None:
    engine = database.make_engine(db_url)
    interval = timedelta(minutes=15)
    ok, reasons = health(engine, ["ws-1", "ws-2"], interval, NOW)
    assert not ok and reasons == [
        "workspace ws-1: no finished run yet",
        "workspace ws-2: no finished run yet",
    ]
    _run(db_url, "ws-1", "succeeded", NOW - timedelta(minutes=20))
    _run(db_url, "ws-2", "succeeded", NOW - timedelta(minutes=40))
    ok, reasons = health(engine, ["ws-1", "ws-2"], interval, NOW)
    assert not ok and len(reasons) == 1 and "ws-2: last success at" in reasons[0]
    _run(db_url, "ws-2", "partial", NOW - timedelta(minutes=1))
    assert health(engine, ["ws-1", "ws-2"], interval, NOW) == (
        False,
        ["workspace ws-2: last run partial"],
    )
    _run(db_url, "ws-2", "succeeded", NOW)
    assert health(engine, ["ws-1", "ws-2"], interval, NOW) == (True, [])
    engine.dispose()


def test_health_when_the_database_is_unreachable() -> None:
    engine = database.make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    ok, reasons = health(engine, ["ws-1"], timedelta(minutes=15), NOW)
    assert not ok and reasons[0].startswith("database unreachable")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_daemon_serves_healthz_and_metrics(
    simulator: Simulator, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", simulator, db_url, interval="1s")
    port = _free_port()
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": simulator.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": simulator.access_key_secret,
    }
    log = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--config", str(config), "run",
             "--health-port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while _get(f"{base}/healthz")[0] != 200:
                assert daemon.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            # The run is committed (healthz) a moment before the daemon records it in metrics.
            workspace = simulator.world.workspace_id
            success = f'lineage_exporter_last_success_timestamp_seconds{{workspace="{workspace}"}}'
            while success not in (answer := _get(f"{base}/metrics"))[1]:
                assert answer[0] == 200 and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            status, metrics = answer
            assert status == 200
            assert "lineage_exporter_api_requests_total" in metrics
            # A job starts failing: runs turn partial, and health says why.
            deployment = next(
                d
                for ns in simulator.world.namespaces.values()
                for d in ns.deployments.values()
                if d.jobs
            )
            assert deployment.current_job is not None
            simulator.faults.job_faults[deployment.current_job.id] = "error"
            while (answer := _get(f"{base}/healthz"))[0] != 503:
                assert time.monotonic() < deadline + 30, log.read_text()
                time.sleep(0.2)
            assert "last run partial (1 failed: " in answer[1]
            assert f"/{deployment.name} [lineage]; see lineage_job_failures)" in answer[1]
            assert _get(f"{base}/nothing")[0] == 404
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
