"""The configuration file read for the database URL alone (`lineage`, `diff`): the same answer
as the validated settings, and the same errors naming the key, without the rest of the tree."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from exporter.config import load_settings
from exporter.config_file import DATABASE_URL_ENV, database_url
from exporter.errors import ConfigError

# A workspace being set up (no namespaces yet): the full settings refuse it, a query needs none.
HALF_DONE = """
[database]
url = "postgresql+psycopg://lineage@db.internal:5432/lineage"

[[workspaces]]
id = "w"
region = "cn-hangzhou"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(autouse=True)
def no_url_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


def test_the_url_of_a_file_whose_other_sections_are_unfinished(tmp_path: Path) -> None:
    path = write(tmp_path, HALF_DONE)
    assert database_url(path) == "postgresql+psycopg://lineage@db.internal:5432/lineage"
    with pytest.raises(ConfigError, match="namespaces"):
        load_settings(path)


def test_agrees_with_the_settings_on_defaults_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[schedule]\ninterval = '5m'\n")
    assert database_url(path) == load_settings(path).database.url == "sqlite:///lineage.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite:///other.db")
    assert database_url(path) == load_settings(path).database.url == "sqlite:///other.db"
    # The variable alone is enough: no file needed.
    assert database_url(tmp_path / "absent.toml") == "sqlite:///other.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[database]\nurl = 'mysql://h/db'\n", "database.url: url must start with 'sqlite'"),
        ("[database]\nurl = 5\n", "database.url: must be a string"),
        ("[database\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        database_url(write(tmp_path, text))


def test_a_missing_file_without_the_variable_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found .*--config"):
        database_url(tmp_path / "absent.toml")


def test_a_bad_url_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "oracle://h/db")
    with pytest.raises(ConfigError, match=DATABASE_URL_ENV):
        database_url(tmp_path / "absent.toml")


def test_a_password_in_a_file_others_can_read_is_warned_of_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "[database]\nurl = 'postgresql+psycopg://u:S3cr3t-pw@h/db'\n")
    with caplog.at_level(logging.WARNING):
        database_url(path)
    assert caplog.text == ""
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert database_url(path).endswith("@h/db")
    assert "readable by other users" in caplog.text and "S3cr3t-pw" not in caplog.text
