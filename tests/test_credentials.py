"""Credentials from the official provider chain, refreshed per request, against the simulator's
token service (credentials URI, STS AssumeRole / AssumeRoleWithOIDC, ECS metadata), all on
loopback: the autouse guard of conftest fails any test that tries another address."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loopback_guard
import pytest
from alibabacloud_credentials.provider import EcsRamRoleCredentialsProvider
from alibabacloud_credentials.utils import auth_util
from conftest import workspace_settings, write_config
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, text

from exporter.api.credentials import (
    Credentials,
    describe_failure,
    describe_source,
    load_credentials,
    mask_key_id,
    open_source,
)
from exporter.cli import main
from exporter.config import WorkspaceSettings
from exporter.database import make_engine
from exporter.errors import CredentialsError
from exporter.simulator import Simulator, World, WorldSize
from exporter.simulator.sts import (
    DEFAULT_OIDC_PROVIDER_ARN,
    DEFAULT_OIDC_TOKEN,
    DEFAULT_ROLE_ARN,
)
from exporter.sync import SyncSummary, sync_workspace

LIFETIME = 3.0  # seconds: every sync below outlives several credentials


@pytest.fixture
def sts_sim() -> Iterator[Simulator]:
    """A simulator whose API accepts only the short-lived STS credentials it issues."""
    world = World("ws-sts", seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=6))
    with Simulator(world, sts_lifetime=LIFETIME, sts_only=True) as sim:
        yield sim


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def base_key_file(tmp_path: Path, sts_sim: Simulator) -> Path:
    """The base identity of a role: the simulator's fixed AccessKey, in a secrets file."""
    path = tmp_path / "base.toml"
    path.write_text(
        f'access_key_id = "{sts_sim.access_key_id}"\n'
        f'access_key_secret = "{sts_sim.access_key_secret}"\n'
    )
    path.chmod(0o600)
    return path


def settings(sim: Simulator, credentials: dict[str, Any], **extra: object) -> WorkspaceSettings:
    return workspace_settings(sim, **{"credentials": credentials, "max_attempts": 3, **extra})


def role_credentials(sim: Simulator, base_file: Path, **extra: object) -> dict[str, Any]:
    return {
        "type": "ram_role_arn",
        "role_arn": DEFAULT_ROLE_ARN,
        "sts_endpoint": sim.url,
        "base": {"secrets_file": str(base_file)},
        **extra,
    }


def oidc_credentials(sim: Simulator, token_file: Path) -> dict[str, Any]:
    return {
        "type": "oidc_role_arn",
        "role_arn": DEFAULT_ROLE_ARN,
        "oidc_provider_arn": DEFAULT_OIDC_PROVIDER_ARN,
        "oidc_token_file": str(token_file),
        "sts_endpoint": sim.url,
    }


def sts_keys_used(sim: Simulator) -> set[str]:
    return {key for key in sim.stats.signed_by if key.startswith("STS.")}


def secrets_of(sim: Simulator) -> list[str]:
    issued = sim.tokens.all_issued()
    return [sim.access_key_secret] + [
        value for i in issued for value in (i.access_key_secret, i.security_token)
    ]


def everything_stored(engine: Engine, leave_out: tuple[str, ...] = ()) -> str:
    """Every row of every table (but `leave_out`), as text: where a leaked secret would be."""
    with engine.connect() as conn:
        tables = [
            row[0]
            for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            if row[0] not in leave_out
        ]
        return "\n".join(
            repr(tuple(row)) for t in tables for row in conn.execute(text(f'SELECT * FROM "{t}"'))
        )


# What a run records of itself (and the lease it held), beside the lineage it writes.
RUN_RECORDS = ("sync_runs", "job_failures", "workspaces", "live_job_statuses")


# -- pure helpers -------------------------------------------------------------------------------


def test_access_key_ids_are_masked_as_the_console_does() -> None:
    assert mask_key_id("LTAI5tQ9example0abcd") == "LTAI****abcd"
    assert mask_key_id("STS.NUqkExample1234wxyz") == "STS.****wxyz"
    assert mask_key_id("short-id") == "****id"
    assert mask_key_id("ab") == "****"


def test_a_provider_failure_is_described_without_its_secrets() -> None:
    failure = RuntimeError(
        "Max retries exceeded with url: /?Action=AssumeRoleWithOIDC&OIDCToken=eyJhbGciOi.x.y "
        'result: {"AccessKeySecret": "s3cr3t-value", "SecurityToken": "CAIStoken", '
        "'password': 'pw1', Code: Throttling}"
    )
    described = describe_failure(failure)
    for secret in ("eyJhbGciOi", "s3cr3t-value", "CAIStoken", "pw1"):
        assert secret not in described
    assert described.startswith("RuntimeError: ")
    assert "AssumeRoleWithOIDC" not in described and "Throttling" in described
    assert len(describe_failure(RuntimeError("x" * 1000))) < 340


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"type": "ram_role_arn", "uri": "http://127.0.0.1:1/"}, "ram_role_arn.uri"),
        ({"type": "oidc_role_arn", "duration": "5m"}, "between 15m and 12h"),
        ({"type": "ram_role_arn", "duration": "13h"}, "between 15m and 12h"),
        ({"type": "access_key", "role_arn": "x"}, "access_key.role_arn"),
        ({"type": "kerberos"}, "does not match any of the expected tags"),
        ({"type": "ram_role_arn", "base": {"type": "sts", "uri": "x"}}, "base.sts.uri"),
    ],
)
def test_each_type_takes_only_its_own_keys(
    sts_sim: Simulator, section: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        settings(sts_sim, section)


def test_sections_without_a_type_are_the_access_keys_they_always_were(
    sts_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_ID", "LTAI5tQ9example0abcd")
    monkeypatch.setenv("MY_SECRET", "secret-1")
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    workspace = settings(
        sts_sim, {"access_key_id_env": "MY_ID", "access_key_secret_env": "MY_SECRET"}
    )
    assert workspace.credentials.type == "access_key"
    credentials = load_credentials(workspace)
    assert (credentials.access_key_id, credentials.security_token) == ("LTAI5tQ9example0abcd", None)
    assert credentials.provider == "static_ak"
    sts = settings(
        sts_sim, {"type": "sts", "access_key_id_env": "MY_ID", "access_key_secret_env": "MY_SECRET"}
    )
    with pytest.raises(CredentialsError, match="type sts needs a security token"):
        open_source(sts)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "token-1")
    assert load_credentials(sts).security_token == SecretStr("token-1")


def test_fixed_keys_need_no_provider_package_and_never_show_the_secret(tmp_path: Path) -> None:
    """The package's import is most of a sync's start-up; keys of the workspace's own do
    without it (a role's base keys still go through it, as above)."""
    code = """
import sys
from exporter.api.credentials import open_source
from exporter.config import load_settings
from pathlib import Path
workspace = load_settings(Path(sys.argv[1])).workspaces[0]
source = open_source(workspace)
credentials = source.get()
assert credentials.provider == "static_ak", credentials.provider
assert "secret-1" not in repr(source._provider), repr(source._provider)
assert "alibabacloud_credentials" not in sys.modules, "the package was imported"
print("ok")
"""
    config = tmp_path / "c.toml"
    config.write_text(
        '[[workspaces]]\nid = "ws"\nendpoint = "http://127.0.0.1:9"\nnamespaces = ["ns"]\n'
        '[workspaces.credentials]\naccess_key_id_env = "MY_ID"\n'
        'access_key_secret_env = "MY_SECRET"\n'
    )
    env = {**os.environ, "MY_ID": "LTAI5tQ9example0abcd", "MY_SECRET": "secret-1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "ok", done.stderr


# -- each provider type, end to end through a sync ------------------------------------------------


def test_credentials_uri_sync_outlives_several_credentials(
    sts_sim: Simulator, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync longer than a credential's lifetime succeeds, signed with several of them."""
    sts_sim.faults.latency = 0.3  # ~25 requests two at a time: longer than a lifetime
    caplog.set_level("DEBUG")
    workspace = settings(
        sts_sim, {"type": "credentials_uri", "uri": sts_sim.credentials_uri}, concurrency=2
    )
    started = time.monotonic()
    summary = sync_workspace(engine, workspace)
    took = time.monotonic() - started
    assert summary.status == "succeeded", summary.errors
    assert took > LIFETIME
    assert len(sts_keys_used(sts_sim)) >= 3
    assert sts_sim.access_key_id not in sts_sim.stats.signed_by  # the fixed key signed nothing
    assert sts_sim.stats.rejected == {}
    assert sts_sim.tokens.stats.expired_rejected == 0
    assert summary.jobs_total == summary.jobs_total - summary.jobs_failed > 0
    for secret in secrets_of(sts_sim):
        assert secret not in caplog.text
        assert secret not in everything_stored(engine)


def test_ram_role_arn_assumed_from_a_base_identity(
    sts_sim: Simulator, engine: Engine, base_key_file: Path
) -> None:
    credentials = role_credentials(
        sts_sim,
        base_key_file,
        role_session_name="exporter-prod",
        duration="20m",
        external_id="ext-42",
        policy='{"Version":"1","Statement":[]}',
    )
    summary = sync_workspace(engine, settings(sts_sim, credentials))
    assert summary.status == "succeeded", summary.errors
    assert sts_sim.tokens.stats.issued["assume_role"] >= 1
    assert len(sts_keys_used(sts_sim)) >= 1
    asked = sts_sim.tokens.stats.role_requests[0]
    assert asked == {
        "RoleArn": DEFAULT_ROLE_ARN,
        "RoleSessionName": "exporter-prod",
        "DurationSeconds": "1200",
        "ExternalId": "ext-42",
        "Policy": '{"Version":"1","Statement":[]}',
    }


def test_ram_role_arn_with_a_wrong_base_secret_fails_naming_the_provider(
    sts_sim: Simulator, engine: Engine, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'access_key_id = "{sts_sim.access_key_id}"\naccess_key_secret = "nope"\n')
    wrong.chmod(0o600)
    summary = sync_workspace(engine, settings(sts_sim, role_credentials(sts_sim, wrong)))
    assert summary.status == "failed"
    (error,) = summary.errors
    assert "the ram_role_arn credentials provider could not supply credentials" in error
    assert "nope" not in error and sts_sim.stats.total == 0  # no API request was made


def test_oidc_role_arn_reads_the_token_file_at_each_refresh(
    sts_sim: Simulator, engine: Engine, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("an-expired-projected-token")
    source = open_source(settings(sts_sim, oidc_credentials(sts_sim, token_file)))
    workspace = settings(sts_sim, oidc_credentials(sts_sim, token_file))
    failed = sync_workspace(engine, workspace, credentials=source)
    assert failed.status == "failed"
    assert "oidc_role_arn" in failed.errors[0] and "an-expired" not in failed.errors[0]
    token_file.write_text(DEFAULT_OIDC_TOKEN + "\n")  # the kubelet rotated the projected token
    summary = sync_workspace(engine, workspace, credentials=source)
    assert summary.status == "succeeded", summary.errors
    assert sts_sim.tokens.stats.issued["assume_role_with_oidc"] >= 1


def test_ecs_ram_role_from_a_loopback_metadata_service(
    sts_sim: Simulator, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata host is redirected to the simulator; metadata stays disabled elsewhere."""
    original_init = EcsRamRoleCredentialsProvider.__init__
    metadata = sts_sim.url.removeprefix("http://")

    def redirected(self: EcsRamRoleCredentialsProvider, **kwargs: Any) -> None:
        original_init(self, **kwargs)
        self._EcsRamRoleCredentialsProvider__metadata_service_host = metadata  # type: ignore[attr-defined]

    workspace = settings(sts_sim, {"type": "ecs_ram_role"})
    with pytest.raises(
        CredentialsError, match="ecs_ram_role credentials provider cannot be set up"
    ):
        open_source(workspace)  # ALIBABA_CLOUD_ECS_METADATA_DISABLED=true, as in every test
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "false")
    monkeypatch.setattr(EcsRamRoleCredentialsProvider, "__init__", redirected)
    summary = sync_workspace(engine, workspace)
    assert summary.status == "succeeded", summary.errors
    assert sts_sim.tokens.stats.issued["ecs_metadata"] >= 1


def test_profiles_from_credentials_ini_and_the_cli_config(
    sts_sim: Simulator, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts_sim.sts_only = False
    ini = tmp_path / "credentials.ini"
    ini.write_text(
        "[default]\ntype = access_key\naccess_key_id = nobody\naccess_key_secret = x\n\n"
        f"[lineage]\ntype = access_key\naccess_key_id = {sts_sim.access_key_id}\n"
        f"access_key_secret = {sts_sim.access_key_secret}\n"
    )
    by_ini = settings(sts_sim, {"type": "profile", "profile": "lineage", "profile_file": str(ini)})
    assert sync_workspace(engine, by_ini).status == "succeeded"

    triplet = sts_sim.tokens._issue("test")
    cli = tmp_path / "config.json"
    cli.write_text(
        json.dumps(
            {
                "current": "exporter",
                "profiles": [
                    {
                        "name": "exporter",
                        "mode": "StsToken",
                        "access_key_id": triplet.access_key_id,
                        "access_key_secret": triplet.access_key_secret,
                        "sts_token": triplet.security_token,
                    }
                ],
            }
        )
    )
    monkeypatch.setattr(auth_util, "environment_cli_profile_disabled", "false")
    by_cli = settings(sts_sim, {"type": "profile", "profile_file": str(cli)})
    summary = sync_workspace(engine, by_cli)
    assert summary.status == "succeeded", summary.errors
    assert sts_sim.stats.signed_by[triplet.access_key_id] > 0


def test_default_chain_finds_a_credentials_uri(
    sts_sim: Simulator, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The package reads its environment once, at import: set what it read instead."""
    for name in ("access_key_id", "access_key_secret", "security_token", "oidc_token_file"):
        monkeypatch.setattr(auth_util, f"environment_{name}", None)
    monkeypatch.setattr(auth_util, "environment_credentials_uri", sts_sim.credentials_uri)
    monkeypatch.setattr(auth_util, "environment_credentials_file", str(tmp_path / "none.ini"))
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    monkeypatch.setattr(auth_util, "environment_cli_profile_disabled", "true")
    source = open_source(settings(sts_sim, {"type": "default"}))
    described = describe_source(source)
    assert "provider default/credential_uri" in described
    assert re.search(r"STS token, expires \S+Z \(in [0-3] s\)$", described), described
    summary = sync_workspace(engine, settings(sts_sim, {"type": "default"}), credentials=source)
    assert summary.status == "succeeded", summary.errors


# -- refresh failures -----------------------------------------------------------------------------


class _AfterFirstFetch:
    """A Progress that runs `action` once the first deployment's fetch has ended."""

    def __init__(self, action: Any) -> None:
        self._action = action
        self._done = threading.Event()

    def listed(self, count: int) -> None:
        pass

    def fetched(self, fetch: object) -> None:
        if not self._done.is_set():
            self._done.set()
            self._action()


def test_a_refresh_that_fails_mid_sync_fails_the_run_and_keeps_history(
    sts_sim: Simulator, engine: Engine
) -> None:
    workspace = settings(sts_sim, {"type": "credentials_uri", "uri": sts_sim.credentials_uri})
    first = sync_workspace(engine, workspace)
    assert first.status == "succeeded"
    before = everything_stored(engine, leave_out=RUN_RECORDS)

    def token_service_down() -> None:
        sts_sim.tokens.failing = True

    sts_sim.world.advance(5)  # something to write, were the run to write anything
    time.sleep(1.1)  # the next credential is a new one
    summary = sync_workspace(engine, workspace, progress=_AfterFirstFetch(token_service_down))
    assert summary.status == "failed"
    assert (
        "the credentials_uri credentials provider could not supply credentials"
        in (summary.errors[0])
    )
    with engine.connect() as conn:
        runs = (
            conn.execute(text("SELECT status FROM lineage_sync_runs ORDER BY run_id"))
            .scalars()
            .all()
        )
    assert runs == ["succeeded", "failed"]
    assert everything_stored(engine, leave_out=RUN_RECORDS) == before  # nothing opened or closed


def test_a_token_service_down_for_a_moment_does_not_fail_the_sync(
    sts_sim: Simulator, engine: Engine
) -> None:
    workspace = settings(
        sts_sim,
        {"type": "credentials_uri", "uri": sts_sim.credentials_uri},
        max_attempts=8,
    )

    def down_briefly() -> None:
        sts_sim.tokens.failing = True
        threading.Timer(0.5, lambda: setattr(sts_sim.tokens, "failing", False)).start()

    time.sleep(1.1)
    summary = sync_workspace(engine, workspace, progress=_AfterFirstFetch(down_briefly))
    assert summary.status == "succeeded", summary.errors
    assert summary.api_errors.get("CredentialsUnavailable", 0) >= 1


def test_a_failing_provider_fails_only_its_workspace(
    sts_sim: Simulator, simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two workspaces through the CLI: the one whose token service is down fails, named; the
    other syncs; exit 1."""
    sts_sim.tokens.failing = True
    simulator.sts_only = True
    db = tmp_path / "two.db"
    config = tmp_path / "two.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n'
        + "".join(
            f'[[workspaces]]\nid = "{sim.world.workspace_id}"\nendpoint = "{sim.url}"\n'
            f"namespaces = {json.dumps(sorted(sim.world.namespaces))}\nmax_attempts = 2\n"
            f'retry_budget = "2s"\n[workspaces.credentials]\ntype = "credentials_uri"\n'
            f'uri = "{sim.credentials_uri}"\n'
            for sim in (sts_sim, simulator)
        )
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "sync"]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert any(line.startswith("ws-sts: failed") for line in lines), out.out
    assert any(line.startswith(f"{simulator.world.workspace_id}: succeeded") for line in lines)
    assert "the credentials_uri credentials provider could not supply credentials" in out.err
    for secret in secrets_of(sts_sim) + secrets_of(simulator):
        assert secret not in out.out + out.err


# -- check ----------------------------------------------------------------------------------------


def test_check_names_the_provider_masks_the_key_and_says_when_it_expires(
    sts_sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], base_key_file: Path
) -> None:
    config = tmp_path / "check.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n[[workspaces]]\nid = "ws-sts"\n'
        f'endpoint = "{sts_sim.url}"\nnamespaces = ["default-namespace"]\n'
        f'[workspaces.credentials]\ntype = "ram_role_arn"\nrole_arn = "{DEFAULT_ROLE_ARN}"\n'
        f'sts_endpoint = "{sts_sim.url}"\n[workspaces.credentials.base]\n'
        f'secrets_file = "{base_key_file}"\n'
    )
    main(["--config", str(config), "db", "upgrade"])
    capsys.readouterr()
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "credentials for workspace" in line]
    (issued,) = sts_sim.tokens.all_issued()
    assert line.startswith("ok   credentials for workspace ws-sts: type ram_role_arn, ")
    assert "provider ram_role_arn/static_ak" in line
    assert f"AccessKey ID {mask_key_id(issued.access_key_id)}" in line
    assert issued.access_key_id not in line
    assert "STS token, expires 20" in line
    for secret in secrets_of(sts_sim):
        assert secret not in out

    sts_sim.tokens.failing = True
    config.write_text(
        config.read_text()
        .replace("ram_role_arn", "credentials_uri", 1)
        .replace(f'role_arn = "{DEFAULT_ROLE_ARN}"\nsts_endpoint', "uri")
        .replace(
            f'"{sts_sim.url}"\n[workspaces.credentials.base]\nsecrets_file = "{base_key_file}"\n',
            f'"{sts_sim.credentials_uri}"\n',
        )
    )
    assert main(["--config", str(config), "check"]) == 1
    failed = capsys.readouterr().out
    assert "FAIL credentials for workspace ws-sts: workspace ws-sts: the credentials_uri " in failed


# -- the guard itself -----------------------------------------------------------------------------


def test_the_guard_stops_a_provider_that_would_reach_a_real_sts(
    sts_sim: Simulator, engine: Engine, base_key_file: Path
) -> None:
    """Without a loopback sts_endpoint the role provider would call sts.<region>.aliyuncs.com:
    the guard refuses the lookup, so the test environment cannot leak by accident."""
    credentials = role_credentials(sts_sim, base_key_file)
    del credentials["sts_endpoint"]
    workspace = settings(sts_sim, credentials, endpoint=None, region="cn-hangzhou")
    summary = sync_workspace(engine, workspace)
    assert summary.status == "failed"
    assert loopback_guard.violations == ["a lookup of sts.cn-hangzhou.aliyuncs.com"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("100.100.100.200", 80), timeout=1)
    assert loopback_guard.violations[-1] == "a connection to 100.100.100.200:80"
    loopback_guard.violations.clear()  # seen, and expected: the autouse check passes


def test_the_environment_disables_the_ecs_metadata_service() -> None:
    assert auth_util.environment_ecs_metadata_disabled == "true"


def test_static_credentials_still_sign(sts_sim: Simulator, engine: Engine) -> None:
    sts_sim.sts_only = False
    credentials = Credentials(sts_sim.access_key_id, SecretStr(sts_sim.access_key_secret))
    summary: SyncSummary = sync_workspace(engine, settings(sts_sim, {}), credentials=credentials)
    assert summary.status == "succeeded"


# -- done when: only a credentials URI in the environment, `sync` and `run` as users run them ----


def _uri_only_environment(sim: Simulator, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env.update(
        ALIBABA_CLOUD_CREDENTIALS_URI=sim.credentials_uri,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
        HOME=str(home),  # no CLI or credentials.ini profile to find
    )
    env.pop("LINEAGE_EXPORTER_DATABASE_URL", None)
    return env


@pytest.mark.slow
def test_sync_and_run_with_only_a_credentials_uri(
    sts_sim: Simulator, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", sts_sim, db_url, interval="1s")
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[workspaces.credentials]\ntype = "default"\n')
    env = _uri_only_environment(sts_sim, tmp_path)
    command = [sys.executable, "-m", "exporter", "--config", str(config)]
    synced = subprocess.run(
        [*command, "sync"], env=env, capture_output=True, text=True, timeout=120
    )
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.startswith("ws-sts: succeeded (run 1)")
    checked = subprocess.run(
        [*command, "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "type default, provider default/credential_uri, AccessKey ID STS.****" in (
        checked.stdout
    ), checked.stdout
    keys_after_sync = len(sts_keys_used(sts_sim))

    daemon = subprocess.Popen(
        [*command, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_statuses(db_url)) < 5:
            time.sleep(0.3)
        started = time.monotonic()
        while time.monotonic() - started < 2 * LIFETIME:  # across two more rotations
            time.sleep(0.3)
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    statuses = _statuses(db_url)
    # Every run succeeded but perhaps the last, which SIGTERM may have stopped mid-fetch.
    assert len(statuses) >= 5 and set(statuses[:-1]) == {"succeeded"}, output
    assert len(sts_keys_used(sts_sim)) > keys_after_sync + 2
    assert sts_sim.access_key_id not in sts_sim.stats.signed_by
    assert sts_sim.stats.rejected == {}
    for secret in secrets_of(sts_sim):
        assert secret not in output + synced.stdout + synced.stderr + checked.stdout


def _statuses(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT status FROM lineage_sync_runs ORDER BY run_id")
            return [str(s) for s in conn.execute(query).scalars()]
    finally:
        engine.dispose()


# -- the README's examples are what the code accepts ---------------------------------------------


def _readme_blocks(language: str) -> list[str]:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", readme, flags=re.DOTALL)


def test_every_credentials_example_in_the_readme_is_valid(sts_sim: Simulator) -> None:
    import tomllib

    examples = [b for b in _readme_blocks("toml") if b.startswith("[workspaces.credentials]")]
    assert len(examples) >= 3
    for block in examples:
        section = tomllib.loads(block)["workspaces"]["credentials"]
        assert settings(sts_sim, section).credentials.type == section.get("type", "access_key")


def test_the_readme_pod_spec_sets_the_three_rrsa_variables() -> None:
    import yaml

    (spec,) = [yaml.safe_load(b) for b in _readme_blocks("yaml") if "serviceAccountName" in b]
    env = {e["name"] for e in spec["spec"]["containers"][0]["env"]}
    assert env == {
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    }
    mount = spec["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    token_file = next(
        e["value"]
        for e in spec["spec"]["containers"][0]["env"]
        if e["name"] == "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
    )
    assert token_file.startswith(mount + "/")


def test_the_daemon_keeps_refreshing_providers_and_rereads_fixed_keys(
    sts_sim: Simulator, engine: Engine, tmp_path: Path
) -> None:
    from exporter.config import Settings
    from exporter.daemon import Daemon

    secrets = tmp_path / "keys.toml"
    secrets.write_text('access_key_id = "LTAI-first-key-0001"\naccess_key_secret = "s1"\n')
    secrets.chmod(0o600)
    by_file = settings(sts_sim, {"secrets_file": str(secrets)})
    by_uri = settings(sts_sim, {"type": "credentials_uri", "uri": sts_sim.credentials_uri})
    daemon = Daemon(
        Settings(workspaces=[by_file.model_copy(update={"id": "a"}), by_uri]),
        engine,
        threading.Event(),
    )
    assert daemon._credential_source(by_uri) is daemon._credential_source(by_uri)
    assert daemon._credential_source(by_file).get().access_key_id == "LTAI-first-key-0001"
    secrets.write_text('access_key_id = "LTAI-rotated-key-02"\naccess_key_secret = "s2"\n')
    assert daemon._credential_source(by_file).get().access_key_id == "LTAI-rotated-key-02"
