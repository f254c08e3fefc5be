"""ACS3-HMAC-SHA256 request signing (Alibaba Cloud signature V3), as an httpx Auth.

The canonicalisation steps are small pure functions so that each can be tested on a fixed input
and reused by the simulator to verify what it receives. Signing happens inside `auth_flow`, so
every attempt (including each retry) gets a fresh date, nonce and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from exporter.api.credentials import Credentials, CredentialSource, StaticSource

ALGORITHM = "ACS3-HMAC-SHA256"
API_VERSION = "2022-07-18"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding with only unreserved characters left as is (space is %20)."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Parameters sorted by name, `name=value` with percent-encoded values, joined by `&`."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The headers to sign: host, content-type and every x-acs-* header, lower-cased and sorted."""
    names = {name.lower() for name in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_headers(headers: Mapping[str, str], names: Iterable[str]) -> str:
    """`name:trimmed-value\\n` for each signed header, in the given (sorted) order."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return "".join(f"{name}:{lowered[name].strip()}\n" for name in names)


def canonical_request(
    method: str,
    path: str,
    params: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    names: list[str],
    payload_hash: str,
) -> str:
    """The CanonicalRequest of signature V3; `path` is the URL-encoded path as sent."""
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(params),
            canonical_headers(headers, names),
            ";".join(names),
            payload_hash,
        ]
    )


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def signature(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(access_key_id: str, names: list[str], sig: str) -> str:
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={sig}"


def utc_timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(DATE_FORMAT)


def request_path_and_params(request: httpx.Request) -> tuple[str, list[tuple[str, str]]]:
    """The encoded path and the decoded query parameters of a request, as the gateway sees them."""
    raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
    return raw_path, list(request.url.params.multi_items())


class AcsSignatureAuth(httpx.Auth):
    """Signs each request with ACS3-HMAC-SHA256; sets the x-acs-* headers the gateway requires.

    The credentials are asked of their source at every signature, so temporary ones that the
    source refreshed are used from the next request on, and a retry is signed with what is
    current then.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: CredentialSource | Credentials,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._source = (
            StaticSource(credentials) if isinstance(credentials, Credentials) else credentials
        )
        self._clock = clock
        self._nonce = nonce

    @classmethod
    def with_keys(
        cls, access_key_id: str, access_key_secret: str, security_token: str | None = None
    ) -> AcsSignatureAuth:
        """An Auth signing with a fixed AccessKey pair (and STS token)."""
        token = SecretStr(security_token) if security_token else None
        return cls(Credentials(access_key_id, SecretStr(access_key_secret), token))

    def __repr__(self) -> str:  # never show the secret
        return f"AcsSignatureAuth(credentials={self._source.kind!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Set the date, nonce, content hash and Authorization headers on the request."""
        credentials = self._source.get()
        payload_hash = hashlib.sha256(request.content).hexdigest()
        request.headers["x-acs-version"] = request.headers.get("x-acs-version", API_VERSION)
        request.headers["x-acs-date"] = utc_timestamp(self._clock())
        request.headers["x-acs-signature-nonce"] = self._nonce()
        request.headers["x-acs-content-sha256"] = payload_hash
        token = credentials.security_token
        if token is not None:
            request.headers["x-acs-security-token"] = token.get_secret_value()
        else:
            request.headers.pop("x-acs-security-token", None)
        path, params = request_path_and_params(request)
        headers = dict(request.headers.items())
        names = signed_header_names(headers)
        canonical = canonical_request(request.method, path, params, headers, names, payload_hash)
        secret = credentials.access_key_secret.get_secret_value()
        sig = signature(secret, string_to_sign(canonical))
        request.headers["Authorization"] = authorization_header(
            credentials.access_key_id, names, sig
        )
