"""The simulator's token service: STS credentials that expire, handed out as Alibaba Cloud does.

Four ways in, each speaking the real service's wire format, so the official
`alibabacloud-credentials` providers can be pointed at it:

- `GET /sts/credentials`: a credentials URI (a sidecar's answer: Code, AccessKeyId,
  AccessKeySecret, SecurityToken, Expiration), for ALIBABA_CLOUD_CREDENTIALS_URI;
- `GET /?Action=AssumeRole&...`: STS's RPC API, signed (signature v1, HMAC-SHA1) by a base
  identity, for the RAM-role-ARN provider (`sts_endpoint = "http://127.0.0.1:PORT"`);
- `GET /?Action=AssumeRoleWithOIDC&...`: the same with an OIDC token instead (RRSA);
- `PUT /latest/api/token`, `GET /latest/meta-data/ram/security-credentials/[ROLE]`: the ECS
  instance metadata service.

Every triplet it issues lasts `lifetime` seconds and the gateway accepts it only until then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from exporter.api.signing import percent_encode

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CREDENTIALS_PATH = "/sts/credentials"
METADATA_PREFIX = "/latest/"
ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
DEFAULT_ROLE_ARN = "acs:ram::1234567890123456:role/lineage-exporter"
DEFAULT_OIDC_PROVIDER_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-sim"
DEFAULT_OIDC_TOKEN = "sim-oidc-token"  # noqa: S105 - the simulator's own test token
DEFAULT_ECS_ROLE = "lineage-exporter-ecs"
MAX_CLOCK_SKEW_SECONDS = 15 * 60

Answer = tuple[int, Any]


@dataclass(frozen=True)
class Issued:
    """One STS triplet and when it stops being accepted (epoch seconds, a whole second as the
    Expiration field says it)."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: int
    via: str  # credentials_uri, assume_role, assume_role_with_oidc, ecs_metadata

    def wire(self) -> dict[str, str]:
        expiration = datetime.fromtimestamp(self.expires_at, UTC).strftime(EXPIRATION_FORMAT)
        return {
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "SecurityToken": self.security_token,
            "Expiration": expiration,
        }


ROLE_FIELDS = ("RoleArn", "RoleSessionName", "DurationSeconds", "ExternalId", "Policy")


@dataclass
class TokenStats:
    issued: Counter[str] = field(default_factory=Counter)  # by way in
    expired_rejected: int = 0
    # What each AssumeRole / AssumeRoleWithOIDC asked for (its role fields, no secrets).
    role_requests: list[dict[str, str]] = field(default_factory=list)


class TokenService:
    """Issues and checks STS credentials; `failing` makes every way in answer HTTP 503."""

    def __init__(
        self,
        base_key_id: str,
        base_key_secret: str,
        *,
        lifetime: float = 3600.0,
        role_arn: str = DEFAULT_ROLE_ARN,
        oidc_provider_arn: str = DEFAULT_OIDC_PROVIDER_ARN,
        oidc_token: str = DEFAULT_OIDC_TOKEN,
        ecs_role: str = DEFAULT_ECS_ROLE,
    ) -> None:
        self.base_key_id = base_key_id
        self.base_key_secret = base_key_secret
        self.lifetime = lifetime
        self.role_arn = role_arn
        self.oidc_provider_arn = oidc_provider_arn
        self.oidc_token = oidc_token
        self.ecs_role = ecs_role
        self.failing = False
        self.stats = TokenStats()
        self._issued: dict[str, Issued] = {}
        self._metadata_tokens: set[str] = set()
        self._lock = threading.Lock()

    # -- the gateway's side -----------------------------------------------------------------

    def knows(self, access_key_id: str) -> bool:
        with self._lock:
            return access_key_id in self._issued

    def secret_for(self, access_key_id: str, security_token: str | None) -> str | tuple[str, str]:
        """The secret to verify a signature with, or (code, message) of the gateway's refusal."""
        with self._lock:
            issued = self._issued.get(access_key_id)
            if issued is None:
                return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            if not security_token or not hmac.compare_digest(security_token, issued.security_token):
                return "InvalidSecurityToken.MismatchWithAccessKey", (
                    "Specified SecurityToken mismatch with the AccessKey."
                )
            if time.time() >= issued.expires_at:
                self.stats.expired_rejected += 1
                return "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            return issued.access_key_secret

    def all_issued(self) -> list[Issued]:
        with self._lock:
            return list(self._issued.values())

    # -- the four ways in -------------------------------------------------------------------

    @staticmethod
    def handles(target: str) -> bool:
        path = target.partition("?")[0]
        return (
            path == CREDENTIALS_PATH
            or path.startswith(METADATA_PREFIX)
            or (path in ("", "/") and "Action=" in target)
        )

    def respond(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        """The answer to one request of the token service (see `handles`)."""
        path, _, query = target.partition("?")
        if self.failing:
            return 503, {"Code": "ServiceUnavailable", "Message": "the token service is down"}
        if path == CREDENTIALS_PATH and method == "GET":
            return 200, {"Code": "Success", **self._issue("credentials_uri").wire()}
        if path.startswith(METADATA_PREFIX):
            return self._metadata(method, path, headers)
        params = dict(parse_qsl(query, keep_blank_values=True))
        if params.get("Action") == "AssumeRole":
            return self._assume_role(method, params)
        if params.get("Action") == "AssumeRoleWithOIDC":
            return self._assume_role_with_oidc(params)
        return _sts_error(400, "InvalidAction.NotFound", "Specified api is not found.")

    def _issue(self, via: str, lifetime: float | None = None) -> Issued:
        seconds = self.lifetime if lifetime is None else min(lifetime, self.lifetime)
        issued = Issued(
            access_key_id="STS.sim" + secrets.token_hex(8),
            access_key_secret=secrets.token_urlsafe(24),
            security_token="CAIS" + secrets.token_urlsafe(48),
            expires_at=int(time.time() + seconds),
            via=via,
        )
        with self._lock:
            self._issued[issued.access_key_id] = issued
            self.stats.issued[via] += 1
        return issued

    def _assume_role(self, method: str, params: dict[str, str]) -> Answer:
        refusal = self._check_rpc_signature(method, params)
        if refusal is not None:
            return refusal
        return self._role_answer(params, "assume_role")

    def _assume_role_with_oidc(self, params: dict[str, str]) -> Answer:
        if params.get("OIDCProviderArn") != self.oidc_provider_arn:
            return _sts_error(404, "EntityNotExist.OIDCProvider", "The OIDC provider is unknown.")
        token = params.get("OIDCToken", "")
        if not hmac.compare_digest(token.strip(), self.oidc_token):
            return _sts_error(400, "AuthenticationFail.OIDCToken.Invalid", "Invalid OIDC token.")
        answer = self._role_answer(params, "assume_role_with_oidc")
        if answer[0] == 200:
            answer[1]["OIDCTokenInfo"] = {"Issuer": "https://oidc.sim", "Subject": "sa:exporter"}
        return answer

    def _role_answer(self, params: dict[str, str], via: str) -> Answer:
        with self._lock:
            self.stats.role_requests.append({k: params[k] for k in ROLE_FIELDS if k in params})
        if params.get("RoleArn") != self.role_arn:
            return _sts_error(404, "EntityNotExist.Role", "The role does not exist.")
        try:
            duration = int(params.get("DurationSeconds", "3600"))
        except ValueError:
            return _sts_error(400, "InvalidParameter.DurationSeconds", "Not a number.")
        if duration < 900:
            return _sts_error(400, "InvalidParameter.DurationSeconds", "At least 900 seconds.")
        issued = self._issue(via, float(duration))
        session = params.get("RoleSessionName", "")
        return 200, {
            "RequestId": secrets.token_hex(16).upper(),
            "AssumedRoleUser": {
                "AssumedRoleId": f"3{secrets.token_hex(8)}:{session}",
                "Arn": f"{self.role_arn}/{session}",
            },
            "Credentials": issued.wire(),
        }

    def _check_rpc_signature(self, method: str, params: dict[str, str]) -> Answer | None:
        """Signature v1 of STS's RPC API, by the base AccessKey or an STS triplet issued here."""
        key_id = params.get("AccessKeyId", "")
        if key_id == self.base_key_id:
            secret: str | tuple[str, str] = self.base_key_secret
        else:
            secret = self.secret_for(key_id, params.get("SecurityToken"))
        if isinstance(secret, tuple):
            return _sts_error(400 if "Token" in secret[0] else 404, *secret)
        try:
            sent = datetime.strptime(params.get("Timestamp", ""), EXPIRATION_FORMAT)
        except ValueError:
            return _sts_error(400, "MissingTimestamp", "Timestamp is required.")
        if abs(time.time() - sent.replace(tzinfo=UTC).timestamp()) > MAX_CLOCK_SKEW_SECONDS:
            return _sts_error(400, "InvalidTimeStamp.Expired", "Timestamp is expired.")
        signed = {k: v for k, v in params.items() if k != "Signature"}
        expected = rpc_signature(method, signed, secret)
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            return _sts_error(400, "SignatureDoesNotMatch", "The signature does not match.")
        return None

    def _metadata(self, method: str, path: str, headers: dict[str, str]) -> Answer:
        if method == "PUT" and path == "/latest/api/token":
            token = secrets.token_urlsafe(24)
            with self._lock:
                self._metadata_tokens.add(token)
            return 200, token.encode()
        given = headers.get("x-aliyun-ecs-metadata-token")
        with self._lock:
            known = given is None or given in self._metadata_tokens
        if not known:
            return 401, b"invalid metadata token"
        if method == "GET" and path == ROLE_PATH:
            return 200, self.ecs_role.encode()
        if method == "GET" and path == ROLE_PATH + self.ecs_role:
            issued = self._issue("ecs_metadata")
            now = datetime.now(UTC).strftime(EXPIRATION_FORMAT)
            return 200, {"Code": "Success", **issued.wire(), "LastUpdated": now}
        return 404, b"not found"


def rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Signature v1 (HMAC-SHA1) of an RPC-style request: its sorted, percent-encoded query."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _sts_error(status: int, code: str, message: str) -> Answer:
    return status, {
        "RequestId": secrets.token_hex(16).upper(),
        "HostId": "sts.sim.aliyuncs.com",
        "Code": code,
        "Message": message,
    }
