"""Secrets stay secret; TLS is verified; BI users get a read-only role."""

from __future__ import annotations

import json
import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from pydantic import SecretStr
from sqlalchemy import inspect, text

from exporter.api.credentials import Credentials, load_credentials
from exporter.cli import main
from exporter.database import make_engine
from exporter.errors import ApiError
from exporter.simulator import Faults, Simulator, World

SECRET = "Zq7-very-distinctive-access-key-secret-91x"
TOKEN = "sts-very-distinctive-security-token-44k"
WRONG = "wrong-but-equally-distinctive-secret-58p"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def secret_simulator(world: World) -> Iterator[Simulator]:
    with Simulator(world, faults=Faults(), access_key_secret=SECRET, security_token=TOKEN) as sim:
        yield sim


def _everything_in(url: str) -> str:
    """Every value of every table, as text."""
    engine = make_engine(url)
    chunks = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(json.dumps([str(v) for v in row]))
    engine.dispose()
    return "\n".join(chunks)


def test_a_secret_never_reaches_logs_errors_database_or_fetch_output(
    secret_simulator: Simulator,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = secret_simulator
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", sim.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    monkeypatch.delenv("LINEAGE_EXPORTER_DATABASE_URL", raising=False)
    config = write_config(tmp_path / "c.toml", sim, db_url)
    with config.open("a", encoding="utf-8") as f:  # a second workspace with a wrong secret
        f.write(
            f'\n[[workspaces]]\nid = "ws-wrong"\nendpoint = "{sim.url}"\n'
            'namespaces = ["default-namespace"]\n'
            '[workspaces.credentials]\naccess_key_secret_env = "WRONG_SECRET"\n'
        )
    monkeypatch.setenv("WRONG_SECRET", WRONG)
    caplog.set_level(logging.DEBUG)
    args = ["--config", str(config), "--log-level", "debug"]
    job = next(d for n in sim.world.namespaces.values() for d in n.deployments.values() if d.jobs)
    assert job.current_job is not None
    sim.faults.job_faults[job.current_job.id] = "error"  # errors and retries get logged too

    assert main([*args, "sync"]) == 1
    assert main([*args, "check"]) == 0
    out_dir = tmp_path / "raw"
    assert main([*args, "fetch", "--workspace", sim.world.workspace_id, "--out", str(out_dir)]) == 1
    assert main([*args, "fetch", "--workspace", "ws-wrong", "--out", str(tmp_path / "w")]) == 1
    assert sim.stats.by_action["GetLineageInfo"] > 0  # the secret was really used to sign

    captured = capsys.readouterr()
    places = {
        "stdout": captured.out,
        "stderr": captured.err,
        "log records": "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "database": _everything_in(db_url),
        "fetch output": "\n".join(
            p.read_text(encoding="utf-8") for p in out_dir.rglob("*") if p.is_file()
        ),
    }
    assert places["fetch output"] and places["database"]  # there was something to search
    for place, content in places.items():
        for secret in (SECRET, TOKEN, WRONG):
            assert secret not in content, f"{secret[:6]}... leaked into {place}"


def test_secrets_file_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from exporter.config import WorkspaceSettings

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'access_key_id = "id"\naccess_key_secret = "{SECRET}"\n')
    workspace = WorkspaceSettings.model_validate(
        {"id": "ws", "region": "cn-hangzhou", "namespaces": ["n"],
         "credentials": {"secrets_file": str(secrets)}}
    )  # fmt: skip
    secrets.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_credentials(workspace)
    assert "readable by other users" in caplog.text and "chmod 600" in caplog.text
    assert SECRET not in caplog.text
    caplog.clear()
    secrets.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        load_credentials(workspace)
    assert caplog.text == ""


def test_config_with_a_database_password_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.config import load_settings

    monkeypatch.delenv("LINEAGE_EXPORTER_DATABASE_URL", raising=False)
    config = tmp_path / "c.toml"
    config.write_text(
        '[database]\nurl = "postgresql+psycopg://u:hunter2-pw@db/x"\n'
        '[[workspaces]]\nid = "w"\nregion = "cn-hangzhou"\nnamespaces = ["n"]\n'
    )
    config.chmod(0o640)
    with caplog.at_level(logging.WARNING):
        load_settings(config)
    assert "holding a database password" in caplog.text and "hunter2-pw" not in caplog.text


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_and_a_custom_ca_bundle_is_honoured(
    world: World, tls_files: tuple[Path, Path], make_client: object
) -> None:
    from conftest import workspace_settings

    from exporter.api.client import FlinkClient, RetryPolicy

    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Simulator(world, faults=Faults()) as sim:
        sim._server.socket = context.wrap_socket(sim._server.socket, server_side=True)
        https = sim.url.replace("http://", "https://")
        credentials = Credentials(sim.access_key_id, SecretStr(sim.access_key_secret))
        retry = RetryPolicy(max_attempts=1)
        untrusted = FlinkClient(workspace_settings(sim, endpoint=https), credentials, retry=retry)
        with untrusted, pytest.raises(ApiError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusted.list_deployments("default-namespace")
        trusted = FlinkClient(
            workspace_settings(sim, endpoint=https, ca_bundle=str(cert)), credentials, retry=retry
        )
        with trusted:
            assert trusted.list_deployments("default-namespace")


def test_read_only_role_sees_the_views_and_nothing_else(pg_url: str) -> None:
    import psycopg
    from psycopg import errors

    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    script = (ROOT / "docs" / "readonly-role.sql").read_text(encoding="utf-8")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]
        conn.execute("SET ROLE lineage_reader")
        assert conn.execute("SELECT count(*) FROM lineage_tables_current").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM lineage_changes").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM lineage_upstream('a.b.c')").fetchone() == (0,)
        for table in ("tables", "contributions", "sync_runs"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table}")  # type: ignore[arg-type]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM lineage_sync_runs")
        conn.execute("RESET ROLE")


def _connector_secrets(world: World) -> set[str]:
    """The credentials the simulated tables' connector options hold (not the references)."""
    secrets = set()
    for ns in world.namespaces.values():
        for table in ns.tables.values():
            for key, value in table.with_.items():
                if key in ("password", "properties.sasl.jaas.config") and "${" not in value:
                    secrets.add(value.split('password="')[-1].rstrip('";'))
    return secrets


def test_connector_secrets_never_reach_the_database_or_fetch_output(
    sim_env: Simulator, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = sim_env
    secrets = _connector_secrets(sim.world)
    assert len(secrets) > 3  # the simulated world has passwords to leak
    config = write_config(tmp_path / "c.toml", sim, db_url)
    args = ["--config", str(config)]
    assert main([*args, "sync"]) == 0
    out_dir = tmp_path / "raw"
    assert main([*args, "fetch", "--workspace", sim.world.workspace_id, "--out", str(out_dir)]) == 0
    database = _everything_in(db_url)
    fetched = "\n".join(p.read_text(encoding="utf-8") for p in out_dir.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret not in database and secret not in fetched
    assert "<redacted>" in database and "<redacted>" in fetched
    # A reference to a platform secret names it without holding it: kept for the lineage.
    assert "${secret_values.hive_password}" in database
    # And the options around the secrets are all there.
    engine = make_engine(db_url)
    with engine.connect() as conn:
        options = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT with_options FROM lineage_tables_current WHERE connector = 'mysql-cdc'"
                )
            )
        ]
    engine.dispose()
    assert options
    for option in options:
        parsed = option if isinstance(option, dict) else json.loads(option)
        assert parsed["password"] == "<redacted>" and parsed["username"] == "flink"
    capsys.readouterr()


def test_secrets_stored_by_an_earlier_release_are_redacted_by_the_upgrade(
    sim_env: Simulator, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter import migrate
    from exporter.redact import Redactor
    from exporter.sync import sync_workspace

    sim = sim_env
    secrets = _connector_secrets(sim.world)
    config = write_config(tmp_path / "c.toml", sim, db_url)
    engine = make_engine(db_url)
    workspace = load_settings_for(config).workspaces[0]
    # An earlier release stored options as they came (a redactor that knows no secret key).
    # A first sync, then a change, so that history holds the secrets too.
    assert sync_workspace(engine, workspace, redactor=Redactor(key_parts=())).ok
    sim.world.advance(5)
    assert sync_workspace(engine, workspace, redactor=Redactor(key_parts=())).ok
    assert any(secret in _everything_in(db_url) for secret in secrets)
    versions_before = _count_versions(engine)

    migrate.downgrade(db_url, "0005")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    stored = _everything_in(db_url)
    assert not any(secret in stored for secret in secrets)
    assert "${secret_values.hive_password}" in stored
    assert _count_versions(engine) == versions_before  # redacted in place, nothing lost

    # The next sync rewrites the payloads (their hashes changed) and refills what revision
    # 0008 added (the downgrade dropped it); no secret comes back. The one after writes nothing.
    assert main(["--config", str(config), "sync"]) == 0
    assert not any(secret in _everything_in(db_url) for secret in secrets)
    capsys.readouterr()
    assert main(["--config", str(config), "sync"]) == 0
    assert "rows added 0, closed 0" in capsys.readouterr().out

    # A key added to the configuration later: `db redact` applies it to what is stored.
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[redaction]\nextra_keys = ["hostname"]\n')
    assert main(["--config", str(config), "db", "redact"]) == 0
    assert "table_versions" in capsys.readouterr().out
    assert "mysql.internal" not in _everything_in(db_url)
    engine.dispose()


def load_settings_for(config: Path) -> Any:
    from exporter.config import load_settings

    return load_settings(config)


def _count_versions(engine: Any) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("table_versions", "job_versions", "column_versions")
        )


def test_redacting_never_overwrites_a_payload_a_sync_wrote_meanwhile(
    sim_env: Simulator, pg_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import event

    from exporter.database import transaction
    from exporter.redact import Redactor
    from exporter.store import scrub_secrets
    from exporter.sync import sync_workspace

    config = write_config(tmp_path / "c.toml", sim_env, pg_url)
    engine = make_engine(pg_url)
    workspace = load_settings_for(config).workspaces[0]
    assert sync_workspace(engine, workspace, redactor=Redactor(key_parts=())).ok
    secrets = _connector_secrets(sim_env.world)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT deployment_fk, payload FROM contributions")).all()
    # A payload the scrub would change, had nothing been written meanwhile.
    raced = next(fk for fk, payload in stored if any(s in json.dumps(payload) for s in secrets))

    def a_sync_commits_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Just before the scrub updates payloads, another connection (a sync) commits a newer one.
        if statement.startswith("UPDATE contributions"):
            with engine.begin() as other:
                other.execute(
                    text(
                        "UPDATE contributions SET payload = '{\"newer\": true}', "
                        "content_hash = 'newer' WHERE deployment_fk = :fk"
                    ),
                    {"fk": raced},
                )

    with transaction(engine) as conn:
        event.listen(conn, "before_cursor_execute", a_sync_commits_first)
        changed = scrub_secrets(conn, Redactor())
        event.remove(conn, "before_cursor_execute", a_sync_commits_first)
    assert changed["contributions"] > 0
    with engine.connect() as conn:
        payload, digest = conn.execute(
            text("SELECT payload, content_hash FROM contributions WHERE deployment_fk = :fk"),
            {"fk": raced},
        ).one()
    assert payload == {"newer": True} and digest == "newer"  # the sync's write stands
    assert not any(secret in _everything_in(pg_url) for secret in secrets)
    engine.dispose()
