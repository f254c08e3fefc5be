"""Logs: JSON lines on request, each carrying the workspace and the run id."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_config

from exporter.logs import JsonFormatter, run_context
from exporter.simulator import Simulator


def test_json_lines_carry_the_run_context() -> None:
    record = logging.LogRecord(
        "exporter.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    with run_context("ws-1", 42):
        from exporter.logs import _RunContextFilter

        _RunContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you" and line["level"] == "warning"
    assert (line["workspace"], line["run_id"]) == ("ws-1", 42)
    assert line["time"].endswith("+00:00")


def test_sync_with_json_logs_tags_every_line_including_fetch_threads(
    simulator: Simulator, sqlite_url: str, tmp_path: Path
) -> None:
    failing = next(
        d for n in simulator.world.namespaces.values() for d in n.deployments.values() if d.jobs
    )
    assert failing.current_job is not None
    simulator.faults.job_faults[failing.current_job.id] = "error"  # logged from a fetch thread
    config = write_config(tmp_path / "c.toml", simulator, sqlite_url)
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": simulator.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": simulator.access_key_secret,
    }
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(config), "--log-format", "json", "sync"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines, done.stderr
    job_lines = [line for line in lines if failing.current_job.id in line["message"]]
    assert any(line["level"] == "warning" for line in job_lines)
    run_ids = {line["run_id"] for line in lines}
    assert run_ids == {1}  # every line of the sync, from every thread, names its run
    assert {line["workspace"] for line in lines} == {simulator.world.workspace_id}
