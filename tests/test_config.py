"""Configuration: the documented minimal file, overrides, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from exporter.api.credentials import load_credentials
from exporter.config import load_settings, parse_duration
from exporter.config_file import resolve_config_path
from exporter.errors import ConfigError, CredentialsError

MINIMAL = """
[database]
url = "sqlite:///lineage.db"          # or "postgresql+psycopg://user@host:5432/db"

[schedule]
interval = "15m"                      # or: cron = "*/15 * * * *"

[[workspaces]]
id = "710d6a64d8xxxx"
region = "cn-hangzhou"                # -> https://ververica.cn-hangzhou.aliyuncs.com
# endpoint = "http://127.0.0.1:8085"  # instead of region, e.g. the simulator
namespaces = ["default-namespace"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINEAGE_EXPORTER_DATABASE_URL", raising=False)
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.database.url == "sqlite:///lineage.db"
    assert settings.schedule.effective_interval == timedelta(minutes=15)
    workspace = settings.workspaces[0]
    assert workspace.base_url == "https://ververica.cn-hangzhou.aliyuncs.com"
    assert (workspace.concurrency, workspace.depth, workspace.column_level) == (8, 1, True)


def test_schedule_is_optional(tmp_path: Path) -> None:
    text = "[[workspaces]]\nid='w'\nendpoint='http://127.0.0.1:1'\nnamespaces=['a']\n"
    settings = load_settings(write(tmp_path, text))
    assert settings.schedule.effective_interval == timedelta(minutes=15)
    assert settings.schedule.cron is None


def test_database_url_env_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEAGE_EXPORTER_DATABASE_URL", "postgresql+psycopg://u@h:5432/db")
    assert (
        load_settings(write(tmp_path, MINIMAL)).database.url == "postgresql+psycopg://u@h:5432/db"
    )


def test_config_path_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINEAGE_EXPORTER_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("config/exporter.toml")
    monkeypatch.setenv("LINEAGE_EXPORTER_CONFIG", "/etc/x.toml")
    assert resolve_config_path(None) == Path("/etc/x.toml")
    assert resolve_config_path("cli.toml") == Path("cli.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL.replace('interval = "15m"', 'interval = "soon"'), "schedule.interval"),
        (MINIMAL.replace('region = "cn-hangzhou"', ""), "set exactly one of 'region'"),
        (MINIMAL.replace('["default-namespace"]', "[]"), "workspaces[0].namespaces"),
        (MINIMAL + "concurrency = 0\n", "workspaces[0].concurrency"),
        (MINIMAL + "colour = 'blue'\n", "workspaces[0].colour"),
        (MINIMAL.replace('interval = "15m"', 'interval = "15m"\ncron = "* * * * *"'), "not both"),
        (MINIMAL.replace("sqlite:///", "mysql://"), "database"),
        ("[database\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert expected in str(caught.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*--config"):
        load_settings(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("90s", 90), ("1h30m", 5400), ("250ms", 0.25), (5, 5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_credentials_from_default_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SK")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "TOKEN")
    credentials = load_credentials(load_settings(write(tmp_path, MINIMAL)).workspaces[0])
    assert credentials.access_key_id == "AK"
    assert credentials.access_key_secret.get_secret_value() == "SK"
    assert credentials.security_token is not None
    assert "SK" not in repr(credentials) and "TOKEN" not in repr(credentials)


def test_credentials_from_named_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        MINIMAL
        + "[workspaces.credentials]\naccess_key_id_env='MY_ID'\naccess_key_secret_env='MY_SK'\n"
    )
    monkeypatch.setenv("MY_ID", "AK2")
    monkeypatch.delenv("MY_SK", raising=False)
    workspace = load_settings(write(tmp_path, text)).workspaces[0]
    with pytest.raises(CredentialsError, match=r"710d6a64d8xxxx.*MY_SK"):
        load_credentials(workspace)
    monkeypatch.setenv("MY_SK", "SK2")
    assert load_credentials(workspace).access_key_id == "AK2"


def test_credentials_from_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('access_key_id = "AK3"\naccess_key_secret = "SK3"\n', encoding="utf-8")
    text = MINIMAL + f"[workspaces.credentials]\nsecrets_file = '{secrets}'\n"
    credentials = load_credentials(load_settings(write(tmp_path, text)).workspaces[0])
    assert credentials.access_key_id == "AK3"
    assert credentials.security_token is None


def test_unreadable_secrets_file_does_not_echo_content(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('access_key_secret = "SUPERSECRET\n', encoding="utf-8")
    text = MINIMAL + f"[workspaces.credentials]\nsecrets_file = '{secrets}'\n"
    with pytest.raises(CredentialsError) as caught:
        load_credentials(load_settings(write(tmp_path, text)).workspaces[0])
    assert "SUPERSECRET" not in str(caught.value)


def test_only_the_commands_that_call_the_api_need_a_workspace(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n'))
    assert settings.workspaces == [] and settings.ui.host == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"no \[\[workspaces\]\] configured"):
        settings.require_workspaces()


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config" / "exporter.example.toml"
    settings = load_settings(example)
    assert settings.workspaces and settings.ui.host == "127.0.0.1"
