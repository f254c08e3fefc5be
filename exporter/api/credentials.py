"""Credentials the Alibaba Cloud way: a provider of the official `alibabacloud-credentials`
package per workspace, asked for the current credentials at every request.

The package does the work (the default chain, AssumeRole, RRSA, the ECS metadata service, a
credentials URI, profiles) and refreshes temporary credentials before they expire, under its own
lock, so every fetch thread can ask at once. This module only chooses and builds the provider
from a workspace's `credentials` settings, turns what it returns into `Credentials`, and turns
its failures into a `CredentialsError` that names the provider type and never a secret. Fixed
keys (types `access_key` and `sts`) are served by `KeyPair` without importing the package.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from exporter.config import (
    AccessKeyCredentials,
    AssumedRole,
    CredentialSettings,
    CredentialsUriCredentials,
    DefaultChainCredentials,
    EcsRamRoleCredentials,
    OidcRoleArnCredentials,
    ProfileCredentials,
    RamRoleArnCredentials,
    StsCredentials,
    WorkspaceSettings,
)
from exporter.config_file import warn_if_readable_by_others
from exporter.errors import CredentialsError

log = logging.getLogger(__name__)

# The package's own logger prints to stderr through a handler of its own, and its messages quote
# the responses and URLs of failed refreshes (an OIDC token travels in a query string). Its
# failures reach the user as CredentialsError instead, with those parts removed.
LIBRARY_LOGGER = "credentials"
CREDENTIALS_URI_ENV = "ALIBABA_CLOUD_CREDENTIALS_URI"
_TIMEOUTS_MS = {"connect_timeout": 5_000, "read_timeout": 10_000}
# A provider of the package (alibabacloud_credentials_api.ICredentialsProvider). The package is
# imported only where a provider is built: it costs half a second of every command's start-up.
ICredentialsProvider = Any


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, with an STS token when the credentials are temporary."""

    access_key_id: str
    access_key_secret: SecretStr
    security_token: SecretStr | None = None
    provider: str = "static"  # as the package names it, e.g. "default/credential_uri"
    expires_at: datetime | None = None


class CredentialSource(Protocol):
    """Where a workspace's requests get their credentials, asked once per signed request."""

    kind: str  # the configured credentials type

    def get(self) -> Credentials: ...


class StaticSource:
    """Fixed credentials (given by a caller, e.g. a test or a benchmark)."""

    kind = "static"

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def get(self) -> Credentials:
        return self._credentials


class ProviderSource:
    """The current credentials of an alibabacloud-credentials provider. Thread-safe: the
    provider refreshes under its own lock, and the conversion below keeps no shared state
    beyond one reference swap."""

    def __init__(self, workspace_id: str, kind: str, provider: ICredentialsProvider) -> None:
        self.workspace_id = workspace_id
        self.kind = kind
        self._provider = provider
        self._last: tuple[object, Credentials] | None = None

    def __repr__(self) -> str:
        return f"ProviderSource(workspace={self.workspace_id!r}, kind={self.kind!r})"

    def get(self) -> Credentials:
        """The provider's current credentials; CredentialsError when it has none to give."""
        try:
            raw = self._provider.get_credentials()
        except Exception as exc:
            raise self._failure(exc) from None
        last = self._last
        if last is not None and last[0] is raw:  # a cached value, converted already
            return last[1]
        credentials = self._convert(raw)
        self._last = (raw, credentials)
        return credentials

    def expiration(self) -> datetime | None:
        """When the current credentials expire, if the provider says (for `check`)."""
        return _expiration(_innermost(self._provider))

    def _convert(self, raw: Any) -> Credentials:
        key_id = raw.get_access_key_id() if raw is not None else None
        secret = raw.get_access_key_secret() if raw is not None else None
        if not key_id or not secret:
            raise CredentialsError(
                f"workspace {self.workspace_id}: the {self.kind} credentials provider returned "
                "no AccessKey ID or secret"
            )
        token = raw.get_security_token()
        return Credentials(
            key_id,
            SecretStr(secret),
            SecretStr(token) if token else None,
            provider=raw.get_provider_name() or self.kind,
            expires_at=_expiration(raw),
        )

    def _failure(self, exc: Exception) -> CredentialsError:
        return CredentialsError(
            f"workspace {self.workspace_id}: the {self.kind} credentials provider could not "
            f"supply credentials: {describe_failure(exc)}"
        )


def open_source(workspace: WorkspaceSettings) -> ProviderSource:
    """The provider for the workspace's `credentials` settings, built once per process and
    reused by every sync (it caches and refreshes what it fetches).

    Raises CredentialsError for what can be known without any network: a missing environment
    variable, an unreadable secrets file, a missing role ARN.
    """
    settings = workspace.credentials
    if isinstance(settings, AccessKeyCredentials | StsCredentials):
        # Fixed keys need none of the package (whose import is 1.5 s of every sync's start).
        return ProviderSource(
            workspace.id, settings.type, KeyPair(*_key_pair_of(settings, workspace.id))
        )
    try:
        provider = build_provider(settings, workspace.id, workspace.region)
    except CredentialsError:
        raise
    except Exception as exc:  # the package raises ValueError and its own CredentialException
        raise CredentialsError(
            f"workspace {workspace.id}: the {settings.type} credentials provider cannot be "
            f"set up: {describe_failure(exc)}"
        ) from None
    finally:
        quiet_library_logger()  # after the package's first import, which adds its handler
    return ProviderSource(workspace.id, settings.type, provider)


def build_provider(
    settings: CredentialSettings, workspace_id: str, region: str | None = None
) -> ICredentialsProvider:
    """The package's provider for one credentials section (recursive for a role's base)."""
    builder: Callable[[Any, str, str | None], ICredentialsProvider] = _BUILDERS[type(settings)]
    return builder(settings, workspace_id, region)


def _key_pair(
    settings: AccessKeyCredentials | StsCredentials, workspace_id: str, _region: str | None
) -> ICredentialsProvider:
    """The package's static provider: what a role provider takes as its base."""
    from alibabacloud_credentials.provider import (
        StaticAKCredentialsProvider,
        StaticSTSCredentialsProvider,
    )

    key_id, secret, token = _key_pair_of(settings, workspace_id)
    if token:
        return StaticSTSCredentialsProvider(
            access_key_id=key_id, access_key_secret=secret, security_token=token
        )
    return StaticAKCredentialsProvider(access_key_id=key_id, access_key_secret=secret)


def _key_pair_of(
    settings: AccessKeyCredentials | StsCredentials, workspace_id: str
) -> tuple[str, str, str | None]:
    key_id, secret, token = _read_key_pair(settings, workspace_id)
    if settings.type == "sts" and not token:
        where = settings.secrets_file or settings.security_token_env
        raise CredentialsError(
            f"workspace {workspace_id}: credentials type sts needs a security token ({where})"
        )
    return key_id, secret, token


@dataclass(frozen=True)
class KeyPair:
    """Fixed credentials, as the package's static providers give them (and name them), for a
    workspace whose keys are its own rather than a role's base."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None

    def get_credentials(self) -> KeyPair:
        return self

    def get_access_key_id(self) -> str:
        return self.access_key_id

    def get_access_key_secret(self) -> str:
        return self.access_key_secret

    def get_security_token(self) -> str | None:
        return self.security_token

    def get_provider_name(self) -> str:
        return "static_sts" if self.security_token else "static_ak"

    def __repr__(self) -> str:  # never the secret or the token
        return f"KeyPair(access_key_id={mask_key_id(self.access_key_id)!r})"


def _default_chain(
    _settings: DefaultChainCredentials, _workspace_id: str, _region: str | None
) -> ICredentialsProvider:
    from alibabacloud_credentials.provider import DefaultCredentialsProvider

    return DefaultCredentialsProvider()


def _ram_role_arn(
    settings: RamRoleArnCredentials, workspace_id: str, region: str | None
) -> ICredentialsProvider:
    from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

    return RamRoleArnCredentialsProvider(
        credentials_provider=build_provider(settings.base, workspace_id, region),
        external_id=settings.external_id,
        **_assumed_role(settings, region),
    )


def _oidc_role_arn(
    settings: OidcRoleArnCredentials, _workspace_id: str, region: str | None
) -> ICredentialsProvider:
    from alibabacloud_credentials.provider import OIDCRoleArnCredentialsProvider

    token_file = settings.oidc_token_file
    return OIDCRoleArnCredentialsProvider(
        oidc_provider_arn=settings.oidc_provider_arn,
        oidc_token_file_path=str(token_file) if token_file else None,
        **_assumed_role(settings, region),
    )


def _assumed_role(settings: AssumedRole, region: str | None) -> dict[str, Any]:
    """What both role providers take alike: the role, the session and the STS endpoint."""
    from alibabacloud_credentials.http import HttpOptions

    return {
        "role_arn": settings.role_arn,
        "role_session_name": settings.role_session_name,
        "duration_seconds": int(settings.duration.total_seconds()),
        "policy": settings.policy,
        "sts_endpoint": settings.sts_endpoint,
        "sts_region_id": region,
        "http_options": HttpOptions(**_TIMEOUTS_MS),
    }


def _ecs_ram_role(
    settings: EcsRamRoleCredentials, _workspace_id: str, _region: str | None
) -> ICredentialsProvider:
    # The package's own background refresher would start a scheduler per provider; the
    # provider refreshes on use instead, well before expiry, which a sync every few minutes is.
    from alibabacloud_credentials.provider import EcsRamRoleCredentialsProvider

    return EcsRamRoleCredentialsProvider(
        role_name=settings.role_name,
        disable_imds_v1=settings.disable_imds_v1,
        async_update_enabled=False,
    )


def _credentials_uri(
    settings: CredentialsUriCredentials, workspace_id: str, _region: str | None
) -> ICredentialsProvider:
    from alibabacloud_credentials.http import HttpOptions
    from alibabacloud_credentials.provider import URLCredentialsProvider

    uri = settings.uri or os.environ.get(CREDENTIALS_URI_ENV, "").strip()
    if not uri:
        raise CredentialsError(
            f"workspace {workspace_id}: credentials type credentials_uri needs `uri` or "
            f"{CREDENTIALS_URI_ENV}"
        )
    return URLCredentialsProvider(uri=uri, http_options=HttpOptions(**_TIMEOUTS_MS))


def _profile(
    settings: ProfileCredentials, _workspace_id: str, _region: str | None
) -> ICredentialsProvider:
    from alibabacloud_credentials.provider import (
        CLIProfileCredentialsProvider,
        ProfileCredentialsProvider,
    )

    path = settings.profile_file
    cli_config = Path.home() / ".aliyun" / "config.json"
    if path is None and cli_config.is_file():
        path = cli_config
    if path is not None and path.suffix == ".json":
        return CLIProfileCredentialsProvider(profile_name=settings.profile, profile_file=str(path))
    return ProfileCredentialsProvider(
        profile_name=settings.profile, profile_file=str(path) if path else None
    )


_BUILDERS: dict[type, Callable[..., ICredentialsProvider]] = {
    AccessKeyCredentials: _key_pair,
    StsCredentials: _key_pair,
    DefaultChainCredentials: _default_chain,
    RamRoleArnCredentials: _ram_role_arn,
    OidcRoleArnCredentials: _oidc_role_arn,
    EcsRamRoleCredentials: _ecs_ram_role,
    CredentialsUriCredentials: _credentials_uri,
    ProfileCredentials: _profile,
}


def _read_key_pair(
    settings: AccessKeyCredentials | StsCredentials, workspace_id: str
) -> tuple[str, str, str]:
    """(key ID, secret, token or "") from the secrets file or the environment variables."""
    if settings.secrets_file is not None:
        return _key_pair_from_file(workspace_id, settings.secrets_file)
    key_id = os.environ.get(settings.access_key_id_env, "").strip()
    secret = os.environ.get(settings.access_key_secret_env, "").strip()
    token = os.environ.get(settings.security_token_env, "").strip()
    missing = [
        name
        for name, value in (
            (settings.access_key_id_env, key_id),
            (settings.access_key_secret_env, secret),
        )
        if not value
    ]
    if missing:
        raise CredentialsError(
            f"workspace {workspace_id}: credentials missing, set {' and '.join(missing)} "
            "(or choose another [workspaces.credentials] type, e.g. default for the provider "
            "chain: RRSA, ECS RAM role, profiles, credentials URI)"
        )
    return key_id, secret, token


def _key_pair_from_file(workspace_id: str, path: Path) -> tuple[str, str, str]:
    warn_if_readable_by_others(path, f"secrets file of workspace {workspace_id}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        # The exception text of a TOML error may quote file content: keep only its type.
        raise CredentialsError(
            f"workspace {workspace_id}: secrets file {path} cannot be read ({type(exc).__name__})"
        ) from None
    key_id = str(data.get("access_key_id", "")).strip()
    secret = str(data.get("access_key_secret", "")).strip()
    token = str(data.get("security_token", "")).strip()
    if not key_id or not secret:
        raise CredentialsError(
            f"workspace {workspace_id}: secrets file {path} must set access_key_id and "
            "access_key_secret"
        )
    return key_id, secret, token


def load_credentials(workspace: WorkspaceSettings) -> Credentials:
    """The workspace's credentials now (one provider, asked once)."""
    return open_source(workspace).get()


# -- what may be shown ----------------------------------------------------------------------


def describe_source(source: ProviderSource, now: datetime | None = None) -> str:
    """What `check` says of a workspace's credentials: the provider that supplied them, the
    AccessKey ID masked, and for temporary ones when they expire. Asks the provider (which may
    fetch); raises CredentialsError when it cannot supply any."""
    credentials = source.get()
    parts = [
        f"type {source.kind}, provider {credentials.provider}",
        f"AccessKey ID {mask_key_id(credentials.access_key_id)}",
    ]
    expires = credentials.expires_at or source.expiration()
    if credentials.security_token is not None:
        parts.append("STS token")
    if expires is not None:
        left = max(0, int((expires - (now or datetime.now(UTC))).total_seconds()))
        within = f"{left} s" if left < 120 else f"{left // 60} min"
        parts.append(f"expires {expires:%Y-%m-%dT%H:%M:%SZ} (in {within})")
    return ", ".join(parts)


def mask_key_id(access_key_id: str) -> str:
    """An AccessKey ID as logs and `check` show it: `LTAI****abcd`."""
    if len(access_key_id) >= 12:
        return f"{access_key_id[:4]}****{access_key_id[-4:]}"
    return "****" + access_key_id[-2:] if len(access_key_id) > 4 else "****"


# Query strings (where an OIDC token, a signature or a base STS token travel) and JSON or
# key=value fields whose name says secret or token.
_QUERY = re.compile(r"\?[^\s'\"]*")
_SECRET_FIELD = re.compile(
    r"""(["']?[A-Za-z_]*(?:secret|token|password|signature)[A-Za-z_]*["']?\s*[:=]\s*)"""
    r"""("[^"]*"|'[^']*'|[^\s,}&]+)""",
    re.IGNORECASE,
)


def describe_failure(exc: BaseException, limit: int = 300) -> str:
    """The provider's error as a message may show it: its type and its text without query
    strings or the values of secret-looking fields, cut to `limit` characters."""
    text = _SECRET_FIELD.sub(r"\1<redacted>", _QUERY.sub("?<query>", str(exc)))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def quiet_library_logger() -> None:
    """Route the package's logger through ours, and keep it to what cannot leak: nothing."""
    library = logging.getLogger(LIBRARY_LOGGER)
    library.handlers.clear()
    library.disabled = True


def _expiration(raw: Any) -> datetime | None:
    getter = getattr(raw, "get_expiration", None)
    seconds = getter() if getter is not None else None
    if not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _innermost(provider: ICredentialsProvider) -> Any:
    """The credentials of the provider that really supplied them: the default chain and the
    profile providers wrap what they return and drop its expiration. Their attributes are
    private, so each is looked up with a fallback (a test pins the behaviour)."""
    current: Any = provider
    for attribute in (
        "_DefaultCredentialsProvider__last_used_provider",
        "_ProfileCredentialsProvider__innerProvider",
        "_CLIProfileCredentialsProvider__innerProvider",
    ):
        inner = getattr(current, attribute, None)
        if inner is not None:
            current = inner
    try:
        return current.get_credentials()
    except Exception:  # a failing provider has no expiration to show
        return None
