"""Signature V3: pure helpers on fixed inputs, and the whole header cross-checked with the SDK."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from alibabacloud_tea_openapi.utils import Utils
from pydantic import SecretStr

from exporter.api import signing
from exporter.api.credentials import Credentials
from exporter.api.signing import AcsSignatureAuth

FIXED_TIME = datetime(2026, 3, 1, 12, 30, 45, tzinfo=UTC)


def sign(request: httpx.Request, token: str | None = None, nonce: str = "n-1") -> httpx.Request:
    credentials = Credentials(
        "AKID-TEST", SecretStr("secret/with+chars"), SecretStr(token) if token else None
    )
    auth = AcsSignatureAuth(credentials, clock=lambda: FIXED_TIME, nonce=lambda: nonce)
    flow = auth.auth_flow(request)
    return next(flow)


def sdk_authorization(request: httpx.Request) -> str:
    """What the official SDK computes for the same request (the oracle)."""
    path, params = signing.request_path_and_params(request)
    names = signing.signed_header_names(dict(request.headers))
    sdk_request = SimpleNamespace(
        method=request.method,
        pathname=path,
        query=dict(params),
        headers={n: request.headers[n] for n in names},
    )
    payload_hash = hashlib.sha256(request.content).hexdigest()
    return str(
        Utils.get_authorization(
            sdk_request, "ACS3-HMAC-SHA256", payload_hash, "AKID-TEST", "secret/with+chars"
        )
    )


def api_request(method: str, url: str, **kwargs: object) -> httpx.Request:
    headers = {"x-acs-action": "ListJobs", "accept": "application/json", "workspace": "ws1"}
    headers.update(kwargs.pop("headers", {}))  # type: ignore[call-overload]
    return httpx.Request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_get_with_query_matches_sdk() -> None:
    request = sign(
        api_request(
            "GET",
            "https://ververica.cn-hangzhou.aliyuncs.com/api/v2/namespaces/ns-1/jobs",
            params={"pageSize": 100, "deploymentId": "d-1", "pageIndex": 2},
        )
    )
    assert request.headers["Authorization"] == sdk_authorization(request)
    assert "Signature=" in request.headers["Authorization"]


def test_post_with_json_body_matches_sdk() -> None:
    body = json.dumps({"id": "job-1", "idType": "JOB", "depth": 1}).encode()
    request = sign(
        api_request(
            "POST",
            "https://ververica.cn-hangzhou.aliyuncs.com/meta/v2/lineage",
            content=body,
            headers={"content-type": "application/json; charset=utf-8"},
        )
    )
    assert request.headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert "content-type" in request.headers["Authorization"]
    assert request.headers["Authorization"] == sdk_authorization(request)


def test_non_ascii_and_reserved_characters_match_sdk() -> None:
    request = sign(
        api_request(
            "GET",
            "https://ververica.cn-hangzhou.aliyuncs.com/api/v2/namespaces/n%C3%A4me%20x/jobs",
            params={"deploymentId": "订单 a+b/c~d*e=f&g", "pageIndex": 1},
        )
    )
    assert request.headers["Authorization"] == sdk_authorization(request)


def test_sts_token_is_sent_and_signed() -> None:
    request = sign(
        api_request("GET", "https://ververica.cn-hangzhou.aliyuncs.com/api/v2/namespaces/a/jobs"),
        token="sts-token-value",
    )
    assert request.headers["x-acs-security-token"] == "sts-token-value"
    assert "x-acs-security-token" in request.headers["Authorization"]
    assert request.headers["Authorization"] == sdk_authorization(request)


def test_each_signing_uses_a_new_nonce_and_signature() -> None:
    first = sign(api_request("GET", "https://h/a"), nonce="n-1")
    second = sign(api_request("GET", "https://h/a"), nonce="n-2")
    assert first.headers["x-acs-signature-nonce"] != second.headers["x-acs-signature-nonce"]
    assert first.headers["Authorization"] != second.headers["Authorization"]


def test_default_nonces_are_unique() -> None:
    auth = AcsSignatureAuth.with_keys("AK", "SK")
    nonces = set()
    for _ in range(50):
        request = next(auth.auth_flow(httpx.Request("GET", "https://h/a")))
        nonces.add(request.headers["x-acs-signature-nonce"])
    assert len(nonces) == 50


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [("a b", "a%20b"), ("~", "~"), ("*", "%2A"), ("a+b", "a%2Bb"), ("é", "%C3%A9"), ("/", "%2F")],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert signing.percent_encode(raw) == encoded


def test_canonical_query_sorts_and_encodes() -> None:
    assert signing.canonical_query([("b", "2 3"), ("a", "1")]) == "a=1&b=2%203"
    assert signing.canonical_query([]) == ""


def test_canonical_request_layout() -> None:
    headers = {"Host": "h", "x-acs-date": " 2026 ", "accept": "x"}
    names = signing.signed_header_names(headers)
    assert names == ["host", "x-acs-date"]
    canonical = signing.canonical_request("get", "", [("k", "v")], headers, names, "abc")
    assert canonical == "GET\n/\nk=v\nhost:h\nx-acs-date:2026\n\nhost;x-acs-date\nabc"


def test_auth_repr_hides_the_secret() -> None:
    assert "SK-SECRET" not in repr(AcsSignatureAuth.with_keys("AK", "SK-SECRET"))
