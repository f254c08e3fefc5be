"""Configuration: one validated `Settings` tree from a TOML file plus environment overrides.

Layering (highest wins): `LINEAGE_EXPORTER_DATABASE_URL`, then the TOML file. The file path comes
from `--config`, else `LINEAGE_EXPORTER_CONFIG`, else `config/exporter.toml`. Secrets never live in
this tree: a workspace only names the environment variables or the secrets file that hold them.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.config_file import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    check_database_url,
    read_config,
    warn_if_password_readable,
)
from exporter.errors import ConfigError
from exporter.redact import Redactor

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse "15m", "90s", "1h30m", "250ms" or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '15m', '90s' or '1h30m'")
    text = value.strip().replace(" ", "")
    if not text or _DURATION_PART.sub("", text):
        raise ValueError(f"{value!r} is not a duration such as '15m', '90s' or '1h30m'")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = DEFAULT_DATABASE_URL

    @model_validator(mode="after")
    def _known_backend(self) -> DatabaseSettings:
        check_database_url(self.url)
        return self


class ScheduleSettings(_Section):
    interval: Duration | None = None
    cron: str | None = None
    # Spreads the workspaces' runs so that they do not all hit the API at the same second.
    jitter: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSettings:
        if self.interval is not None and self.cron is not None:
            raise ValueError("set either 'interval' or 'cron', not both")
        if self.interval is not None and self.interval.total_seconds() < 1:
            raise ValueError("interval must be at least 1s")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError("cron must have five fields, e.g. '*/15 * * * *'")
        return self

    @property
    def effective_interval(self) -> timedelta:
        """The interval to use when no cron is set (default: every 15 minutes)."""
        return self.interval or timedelta(minutes=15)


class HealthSettings(_Section):
    """The daemon's optional HTTP port for /healthz and /metrics (off unless a port is set)."""

    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "0.0.0.0"  # noqa: S104 - meant to be reached by the orchestrator's probes


class UiSettings(_Section):
    """The lineage explorer (`lineage-exporter ui`, and the daemon when `port` is set).

    Binds 127.0.0.1 unless told otherwise; any other address needs `token_env`, the environment
    variable holding the bearer token every request must carry."""

    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "127.0.0.1"
    token_env: str | None = None

    def token(self) -> str | None:
        """The bearer token from `token_env`, or None when no token is configured."""
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise ConfigError(f"[ui] token_env names {self.token_env}, which is not set")
        return value


class RetentionSettings(_Section):
    """Optional pruning. Nothing is pruned unless set; history only when set explicitly."""

    # Raw payloads of deployments that left their namespace this many days ago.
    payload_days: int | None = Field(default=None, ge=1)
    # History rows that stopped being valid this many days ago (the current state is kept).
    history_days: int | None = Field(default=None, ge=1)


class RedactionSettings(_Section):
    """Connector options and properties whose key names a secret are stored as `<redacted>`.

    Built in: keys containing password, secret, token, credential, accessKey, privateKey,
    apiKey or jaas.config (ignoring case and separators). `extra_keys` adds to that list.
    """

    extra_keys: list[str] = Field(default_factory=list)

    @property
    def redactor(self) -> Redactor:
        return Redactor.with_extra_keys(self.extra_keys)


class LineageSettings(_Section):
    """What counts as live lineage: edges whose carrying job has one of these statuses (the
    `lineage_live_*` views, `lineage --live`, `diff --live`, `live_only` of the functions).
    One setting per database: each sync writes it to the `live_job_statuses` table."""

    live_statuses: list[str] = Field(default_factory=lambda: ["RUNNING"], min_length=1)


class _CredentialSection(_Section):
    """Shared by every credentials type; `type` picks the alibabacloud-credentials provider."""


class _KeyPairCredentials(_CredentialSection):
    access_key_id_env: str = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    access_key_secret_env: str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a name
    security_token_env: str = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a name
    # A TOML file with access_key_id, access_key_secret and optionally security_token.
    secrets_file: Path | None = None


class AccessKeyCredentials(_KeyPairCredentials):
    """An AccessKey pair (with an STS token when one is set) from environment variables or a
    secrets file. The default, and what configurations without a `type` mean."""

    type: Literal["access_key"] = "access_key"


class StsCredentials(_KeyPairCredentials):
    """A fixed STS triplet: like access_key, but the security token is required."""

    type: Literal["sts"] = "sts"


class DefaultChainCredentials(_CredentialSection):
    """The package's default chain: environment AccessKey/STS, OIDC (RRSA), the CLI's
    config.json and credentials.ini profiles, the ECS RAM role, ALIBABA_CLOUD_CREDENTIALS_URI."""

    type: Literal["default"] = "default"


def _session_duration(value: object) -> timedelta:
    duration = parse_duration(value)
    if not timedelta(minutes=15) <= duration <= timedelta(hours=12):
        raise ValueError("duration must be between 15m and 12h (STS session limits)")
    return duration


SessionDuration = Annotated[timedelta, BeforeValidator(_session_duration)]


class AssumedRole(_CredentialSection):
    """What a role assumed through STS needs, whichever identity assumes it."""

    role_arn: str | None = None  # default: $ALIBABA_CLOUD_ROLE_ARN
    role_session_name: str = "lineage-exporter"
    duration: SessionDuration = timedelta(hours=1)
    policy: str | None = None  # a JSON policy that narrows the role's permissions
    # e.g. "sts-vpc.cn-hangzhou.aliyuncs.com"; default: the workspace region's STS endpoint
    sts_endpoint: str | None = None


class RamRoleArnCredentials(AssumedRole):
    """A RAM role assumed (AssumeRole) by a base identity, refreshed before it expires."""

    type: Literal["ram_role_arn"] = "ram_role_arn"
    external_id: str | None = None
    base: CredentialSettings = Field(default_factory=lambda: AccessKeyCredentials())


class OidcRoleArnCredentials(AssumedRole):
    """RRSA on ACK: an OIDC token file exchanged for a RAM role (AssumeRoleWithOIDC)."""

    type: Literal["oidc_role_arn"] = "oidc_role_arn"
    oidc_provider_arn: str | None = None  # default: $ALIBABA_CLOUD_OIDC_PROVIDER_ARN
    oidc_token_file: Path | None = None  # default: $ALIBABA_CLOUD_OIDC_TOKEN_FILE


class EcsRamRoleCredentials(_CredentialSection):
    """The ECS instance's RAM role, from the instance metadata service."""

    type: Literal["ecs_ram_role"] = "ecs_ram_role"
    role_name: str | None = None  # default: the role attached to the instance
    disable_imds_v1: bool = False


class CredentialsUriCredentials(_CredentialSection):
    """A URI answering STS triplets as JSON (a sidecar, a vault agent)."""

    type: Literal["credentials_uri"] = "credentials_uri"
    uri: str | None = None  # default: $ALIBABA_CLOUD_CREDENTIALS_URI


class ProfileCredentials(_CredentialSection):
    """A profile of the CLI's ~/.aliyun/config.json or of ~/.alibabacloud/credentials.ini."""

    type: Literal["profile"] = "profile"
    profile: str | None = None  # default: $ALIBABA_CLOUD_PROFILE, else the file's own default
    # A .json file is read as the CLI's config, anything else as credentials.ini; default:
    # ~/.aliyun/config.json when it exists, else $ALIBABA_CLOUD_CREDENTIALS_FILE or
    # ~/.alibabacloud/credentials.ini.
    profile_file: Path | None = None


def _default_type(value: object) -> object:
    """Sections without a `type` are the AccessKey case they have always been."""
    if isinstance(value, dict) and "type" not in value:
        return {**value, "type": "access_key"}
    return value


CredentialSettings = Annotated[
    AccessKeyCredentials
    | StsCredentials
    | DefaultChainCredentials
    | RamRoleArnCredentials
    | OidcRoleArnCredentials
    | EcsRamRoleCredentials
    | CredentialsUriCredentials
    | ProfileCredentials,
    Field(discriminator="type"),
    BeforeValidator(_default_type),
]
CREDENTIAL_TYPES = (
    "default",
    "access_key",
    "sts",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "credentials_uri",
    "profile",
)
RamRoleArnCredentials.model_rebuild()  # its `base` is itself a CredentialSettings


class WorkspaceSettings(_Section):
    id: Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)] = Field(
        min_length=1
    )
    region: str | None = None
    endpoint: str | None = None
    namespaces: list[str] = Field(min_length=1)
    concurrency: int = Field(default=8, ge=1, le=64)
    requests_per_second: float | None = Field(default=None, gt=0)
    column_level: bool = True
    depth: int = Field(default=1, ge=1, le=10)
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=30)
    # Retries of one request stop after this many attempts, or when this much time has passed
    # since its first attempt, whichever comes first.
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_budget: Duration = timedelta(seconds=60)
    # A sync still fetching after this long stops and fails (nothing written); the next runs.
    sync_deadline: Duration = timedelta(minutes=30)
    ca_bundle: Path | None = None
    credentials: CredentialSettings = Field(default_factory=lambda: AccessKeyCredentials())

    @model_validator(mode="after")
    def _one_endpoint(self) -> WorkspaceSettings:
        if (self.region is None) == (self.endpoint is None):
            raise ValueError("set exactly one of 'region' (e.g. cn-hangzhou) or 'endpoint'")
        if self.endpoint is not None and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint must start with https:// (or http:// for the simulator)")
        if len(set(self.namespaces)) != len(self.namespaces):
            raise ValueError("namespaces must not repeat")
        return self

    @property
    def base_url(self) -> str:
        """The API endpoint: the explicit one, or the region's public endpoint."""
        if self.endpoint is not None:
            return self.endpoint.rstrip("/")
        return f"https://ververica.{self.region}.aliyuncs.com"


class _DatabaseUrlFromEnv(PydanticBaseSettingsSource):
    """`LINEAGE_EXPORTER_DATABASE_URL` overrides `[database] url`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        url = os.environ.get(DATABASE_URL_ENV)
        return {"database": {"url": url}} if url else {}


class Settings(BaseSettings):
    """The whole configuration, validated once at start-up."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    health: HealthSettings = HealthSettings()
    retention: RetentionSettings = RetentionSettings()
    redaction: RedactionSettings = RedactionSettings()
    lineage: LineageSettings = LineageSettings()
    ui: UiSettings = UiSettings()
    # Required by the commands that talk to the API (sync, run, check, fetch); the query
    # commands (lineage, diff, ui, db) need only the database.
    workspaces: list[WorkspaceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_workspaces(self) -> Settings:
        ids = [w.id for w in self.workspaces]
        if len(set(ids)) != len(ids):
            raise ValueError("workspace ids must be unique")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_DatabaseUrlFromEnv(settings_cls), init_settings)

    def require_workspaces(self) -> list[WorkspaceSettings]:
        """The configured workspaces; a ConfigError when there are none."""
        if not self.workspaces:
            raise ConfigError(
                "no [[workspaces]] configured: sync, run, check and fetch need at least one "
                "(config/exporter.example.toml shows one)"
            )
        return self.workspaces

    def workspace(self, workspace_id: str) -> WorkspaceSettings:
        """The configured workspace with this id, or a ConfigError listing the known ones."""
        for ws in self.workspaces:
            if ws.id == workspace_id:
                return ws
        known = ", ".join(w.id for w in self.workspaces)
        raise ConfigError(f"workspace {workspace_id!r} is not configured (configured: {known})")


def load_settings(path: Path, *, optional: bool = False) -> Settings:
    """Read and validate the TOML file; every problem becomes a ConfigError naming the key.

    With `optional` (the query commands), a missing file is no error when
    LINEAGE_EXPORTER_DATABASE_URL says where the database is: the defaults apply.
    """
    if optional and not path.exists() and os.environ.get(DATABASE_URL_ENV):
        return Settings()
    raw = read_config(path)
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_key_path(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"config file {path} is invalid: {problems}") from None
    warn_if_password_readable(path, settings.database.url)
    return settings


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"
