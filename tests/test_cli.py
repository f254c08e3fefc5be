"""The command line, end to end against the simulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Harness, write_config

from exporter.cli import main, write_lines
from exporter.simulator import Simulator


def test_fetch_writes_every_namespace(sim_env: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", sim_env, "sqlite:///unused.db")
    out = tmp_path / "out"
    code = main(["--config", str(config), "fetch", "--workspace", "ws-test", "--out", str(out)])
    assert code == 0
    world = sim_env.world
    for name, ns in world.namespaces.items():
        page = json.loads((out / name / "deployments.page-1.json").read_text())
        assert sorted(d["deploymentId"] for d in page["data"]) == sorted(ns.deployments)
        for deployment in ns.deployments.values():
            assert (out / name / deployment.id / "jobs.page-1.json").exists()
            job = deployment.current_job
            if job is not None:
                lineage = json.loads(
                    (out / name / deployment.id / f"lineage.{job.id}.json").read_text()
                )
                assert lineage["success"] is True and lineage["data"]["nodes"]


def test_fetch_exits_1_when_a_job_fails(
    sim_env: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.toml", sim_env, "sqlite:///unused.db")
    victim = next(
        d for d in sim_env.world.namespaces["default-namespace"].deployments.values() if d.jobs
    )
    assert victim.current_job is not None
    sim_env.faults.job_faults[victim.current_job.id] = "bad-shape"
    code = main(
        ["--config", str(config), "fetch", "--workspace", "ws-test", "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert victim.id in err and victim.current_job.id in err and "data.nodes.0.tables" in err


def test_config_error_exits_2_before_any_request(
    sim_env: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[workspaces]]\nid = 'ws-test'\nnamespaces = ['a']\n", encoding="utf-8")
    code = main(
        ["--config", str(config), "fetch", "--workspace", "ws-test", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "region" in capsys.readouterr().err
    assert sim_env.stats.total == 0


def test_missing_credentials_exit_2(
    sim_env: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    config = write_config(tmp_path / "c.toml", sim_env, "sqlite:///unused.db")
    code = main(
        ["--config", str(config), "fetch", "--workspace", "ws-test", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in capsys.readouterr().err
    assert sim_env.stats.total == 0


def test_fetch_against_the_simulate_command(tmp_path: Path) -> None:
    """The 'done when' of the foundation: two real processes talking over loopback."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "simulate",
            "--port",
            "0",
            "--workspace",
            "ws-cli",
            "--namespaces",
            "3",
            "--deployments",
            "4",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split(" at ")[1].split(" ")[0]
        key_line = server.stdout.readline()
        env = dict(os.environ)
        for pair in key_line.split("with ", 1)[1].split():
            name, value = pair.split("=", 1)
            env[name] = value
        config = tmp_path / "c.toml"
        config.write_text(
            f"[[workspaces]]\nid = 'ws-cli'\nendpoint = '{url}'\n"
            "namespaces = ['default-namespace', 'namespace-1', 'namespace-2']\n",
            encoding="utf-8",
        )
        out = tmp_path / "out"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config",
                str(config),
                "fetch",
                "--workspace",
                "ws-cli",
                "--out",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        for namespace in ("default-namespace", "namespace-1", "namespace-2"):
            assert (out / namespace / "deployments.page-1.json").exists()
            assert list((out / namespace).glob("*/jobs.page-1.json"))
            assert list((out / namespace).glob("*/lineage.*.json"))
        assert done.stdout.count(": 4 deployments") == 3
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_db_upgrade_current_downgrade(
    sim_env: Simulator, empty_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter import migrate

    config = str(write_config(tmp_path / "c.toml", sim_env, empty_db_url))
    head = migrate.head_revision()
    assert main(["--config", config, "db", "current"]) == 0
    assert "none" in capsys.readouterr().out
    assert main(["--config", config, "db", "upgrade"]) == 0
    assert main(["--config", config, "db", "current"]) == 0
    assert f"{head} (up to date)" in capsys.readouterr().out
    assert main(["--config", config, "db", "downgrade", "-1"]) == 0
    assert main(["--config", config, "db", "current"]) == 0
    assert "behind" in capsys.readouterr().out
    assert main(["--config", config, "db", "downgrade", "base"]) == 0
    assert main(["--config", config, "db", "upgrade"]) == 0


def test_check_reports_each_problem(
    sim_env: Simulator,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(write_config(tmp_path / "c.toml", sim_env, empty_db_url))
    assert main(["--config", config, "check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL migrations" in out and "db upgrade" in out
    assert "ok   credentials for workspace ws-test" in out

    assert main(["--config", config, "db", "upgrade"]) == 0
    assert main(["--config", config, "check"]) == 0
    assert "FAIL" not in capsys.readouterr().out

    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    assert main(["--config", config, "check"]) == 1
    assert "FAIL credentials for workspace ws-test" in capsys.readouterr().out


def test_sync_before_db_upgrade_says_what_to_run(
    sim_env: Simulator, empty_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path / "c.toml", sim_env, empty_db_url))
    assert main(["--config", config, "sync"]) == 1
    assert "lineage-exporter db upgrade" in capsys.readouterr().err
    assert sim_env.stats.total == 0


def test_sync_of_an_unknown_workspace_is_a_usage_error(
    sim_env: Simulator, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path / "c.toml", sim_env, sqlite_url))
    assert main(["--config", config, "sync", "--workspace", "nope"]) == 2
    assert "ws-test" in capsys.readouterr().err  # lists the configured ones


def test_lineage_and_diff_through_the_cli(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from exporter.changes import diff
    from exporter.query import traverse
    from exporter.questions import parse_instant

    assert harness.sync() == 0
    first = harness.last_run()["started_at"]
    harness.world.advance(changes=5)
    assert harness.sync() in (0, 1)
    capsys.readouterr()
    with harness.engine.connect() as conn:
        names = [r[0] for r in conn.exec_driver_sql(
            "SELECT destination_name FROM lineage_table_edges_current ORDER BY 1")]  # fmt: skip
        expected = traverse(conn, names[0], as_of=datetime.now(UTC), direction="both")
    config = ["--config", str(harness.config)]

    assert main([*config, "lineage", names[0], "--both", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["hops"]) == len(expected.hops) > 0
    assert {h["direction"] for h in data["hops"]} <= {"upstream", "downstream"}

    assert main([*config, "lineage", names[0], "--format", "mermaid", "--depth", "1"]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR")

    assert main([*config, "diff", "--from", str(first), "--format", "json"]) == 0
    out = capsys.readouterr().out
    changes = json.loads(out)
    assert changes and {c["change"] for c in changes} <= {"added", "removed", "changed"}
    # Streamed as made, one change per line, and the same answer as asked in process.
    lines = out.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == len(changes) + 2
    assert [json.loads(line.removesuffix(",")) for line in lines[1:-1]] == changes
    with harness.engine.connect() as conn:
        now = datetime.now(UTC)
        asked = diff(conn, parse_instant(str(first), now), now)
    assert changes == json.loads(json.dumps([c.to_dict() for c in asked], default=str))
    assert main([*config, "diff", "--from", "2000-01-01", "--to", "2000-01-02"]) == 0
    assert "no changes" in capsys.readouterr().out

    assert main([*config, "lineage", names[0], "--as-of", "someday"]) == 2
    assert "not an instant" in capsys.readouterr().err

    # The queries read only [database]: a workspace still being set up does not stop them.
    half_done = harness.config.with_name("half-done.toml")
    half_done.write_text(
        f"[database]\nurl = {harness.url!r}\n[[workspaces]]\nid = 'new'\n", encoding="utf-8"
    )
    assert (
        main(["--config", str(half_done), "lineage", names[0], "--both", "--format", "json"]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)["hops"]) == len(expected.hops)
    assert main(["--config", str(half_done), "sync"]) == 2
    assert "namespaces" in capsys.readouterr().err


@pytest.mark.parametrize("count", [0, 1, 3, 7])
def test_write_lines_ends_each_line_whatever_the_batches(count: int) -> None:
    """Lines written a batch at a time (3 here) come out as written one by one."""
    lines = [f"line {i}" for i in range(count)]
    out = io.StringIO()
    write_lines(iter(lines), out, batch=3)
    assert out.getvalue() == "".join(line + "\n" for line in lines)
