"""The configuration file itself: where it is, reading it, and the database URL alone.

Without pydantic: the query commands (`lineage`, `diff`) need only the database URL, and read it
here without validating the whole tree (a workspace being configured does not stop them).
`exporter.config` builds the validated `Settings` from the same reading.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError, StoreError

log = logging.getLogger("exporter.config")
CONFIG_ENV = "LINEAGE_EXPORTER_CONFIG"
DATABASE_URL_ENV = "LINEAGE_EXPORTER_DATABASE_URL"
DEFAULT_CONFIG_PATH = Path("config/exporter.toml")
DEFAULT_DATABASE_URL = "sqlite:///lineage.db"


def resolve_config_path(cli_path: str | Path | None) -> Path:
    """--config, else LINEAGE_EXPORTER_CONFIG, else config/exporter.toml."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG_PATH


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; a ConfigError says why it cannot be had."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found (set --config or {CONFIG_ENV}; "
            "config/exporter.example.toml is a commented example)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None


def check_database_url(url: str) -> str:
    """The URL if it names a backend this exporter stores into; a ValueError otherwise."""
    if not url.startswith(("sqlite", "postgresql")):
        raise ValueError("url must start with 'sqlite' or 'postgresql' (e.g. postgresql+psycopg)")
    return url


def database_url(path: Path) -> str:
    """LINEAGE_EXPORTER_DATABASE_URL, else `[database] url` of the file at `path`, else the
    default; the file is needed only when the variable is not set. Warns (as a full load does)
    when the file holds a password and others can read it."""
    env = os.environ.get(DATABASE_URL_ENV)
    if env:
        return _checked(env, f"{DATABASE_URL_ENV}")
    section = read_config(path).get("database", {})
    url = section.get("url", DEFAULT_DATABASE_URL) if isinstance(section, dict) else None
    if not isinstance(url, str):
        raise ConfigError(f"config file {path} is invalid: database.url: must be a string")
    checked = _checked(url, f"config file {path}: database.url")
    warn_if_password_readable(path, checked)
    return checked


def _checked(url: str, where: str) -> str:
    try:
        return check_database_url(url)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def warn_if_password_readable(path: Path, url: str) -> None:
    """Warn (never the content) when `url`, read from the file at `path`, holds a password and
    others can read the file."""
    if _has_password(url):
        warn_if_readable_by_others(path, "config file holding a database password")


def _has_password(url: str) -> bool:
    """Whether the URL carries a password (then its file must not be readable by others). Read
    as SQLAlchemy reads it, without importing SQLAlchemy: `diff` reads this file and would
    otherwise spend a tenth of a second importing what it never uses."""
    from exporter.dbapi import parse_url

    try:
        return parse_url(url).password is not None
    except StoreError:
        return False


def warn_if_readable_by_others(path: Path, what: str) -> bool:
    """Log a warning (never the content) when a file holding a secret is group/world-readable."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s %s is readable by other users (mode %s): run `chmod 600 %s`",
            what,
            path,
            oct(mode & 0o777),
            path,
        )
        return True
    return False
