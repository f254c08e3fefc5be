"""The simulator's token service: what it issues, and what its gateway refuses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alibabacloud_credentials.utils import parameter_helper
from pydantic import SecretStr

from exporter.api.credentials import Credentials
from exporter.api.signing import AcsSignatureAuth
from exporter.simulator import Simulator, World, WorldSize
from exporter.simulator.sts import DEFAULT_ROLE_ARN, EXPIRATION_FORMAT, rpc_signature

NS = "default-namespace"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    world = World("ws-sts", seed=3, size=WorldSize(namespaces=1, deployments_per_namespace=2))
    with Simulator(world, sts_lifetime=2, sts_only=True) as sim:
        yield sim


def list_deployments(sim: Simulator, credentials: Credentials) -> tuple[int, dict[str, Any]]:
    request = httpx.Request(
        "GET",
        f"{sim.url}/api/v2/namespaces/{NS}/deployments",
        headers={"x-acs-action": "ListDeployments", "workspace": "ws-sts"},
    )
    signed = next(AcsSignatureAuth(credentials).auth_flow(request))
    with httpx.Client() as client:
        response = client.send(signed)
    return response.status_code, response.json()


def issued_credentials(sim: Simulator) -> tuple[Credentials, dict[str, Any]]:
    body = httpx.get(sim.credentials_uri).json()
    credentials = Credentials(
        body["AccessKeyId"], SecretStr(body["AccessKeySecret"]), SecretStr(body["SecurityToken"])
    )
    return credentials, body


def test_the_credentials_uri_answers_what_the_provider_expects(sim: Simulator) -> None:
    _, body = issued_credentials(sim)
    assert body["Code"] == "Success"
    assert body["AccessKeyId"].startswith("STS.")
    expires = datetime.strptime(body["Expiration"], EXPIRATION_FORMAT).replace(tzinfo=UTC)
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 2


def test_an_sts_triplet_is_accepted_only_until_it_expires(sim: Simulator) -> None:
    credentials, _ = issued_credentials(sim)
    status, body = list_deployments(sim, credentials)
    assert status == 200 and body["success"] is True
    time.sleep(2.1)
    status, body = list_deployments(sim, credentials)
    assert (status, body["Code"]) == (400, "InvalidSecurityToken.Expired")
    assert sim.tokens.stats.expired_rejected == 1


def test_the_token_must_be_the_one_issued_with_the_key(sim: Simulator) -> None:
    credentials, _ = issued_credentials(sim)
    other, _ = issued_credentials(sim)
    mixed = Credentials(
        credentials.access_key_id, credentials.access_key_secret, other.security_token
    )
    status, body = list_deployments(sim, mixed)
    assert (status, body["Code"]) == (400, "InvalidSecurityToken.MismatchWithAccessKey")
    without = Credentials(credentials.access_key_id, credentials.access_key_secret)
    assert list_deployments(sim, without)[1]["Code"] == "InvalidSecurityToken.MismatchWithAccessKey"


def test_sts_only_refuses_the_fixed_key_at_the_api(sim: Simulator) -> None:
    fixed = Credentials(sim.access_key_id, SecretStr(sim.access_key_secret))
    status, body = list_deployments(sim, fixed)
    assert (status, body["Code"]) == (404, "InvalidAccessKeyId.NotFound")
    sim.sts_only = False
    assert list_deployments(sim, fixed)[0] == 200


def test_the_rpc_signature_matches_the_official_package() -> None:
    """The oracle: the package's own signer, for parameters without spaces (where the two
    encodings agree)."""
    params = {
        "Action": "AssumeRole",
        "RoleArn": DEFAULT_ROLE_ARN,
        "Timestamp": "2026-12-01T10:00:00Z",
        "Policy": '{"Statement":[{"Effect":"Allow","Action":"ververica:*"}]}',
        "SignatureNonce": "a/b+c=d~e*f",
    }
    expected = parameter_helper.sign_string(
        parameter_helper.compose_string_to_sign("GET", params), "the-secret&"
    )
    assert rpc_signature("GET", params, "the-secret") == expected


def _assume_role(sim: Simulator, secret: str, **extra: str) -> httpx.Response:
    params = {
        "Action": "AssumeRole",
        "Format": "JSON",
        "Version": "2015-04-01",
        "AccessKeyId": sim.access_key_id,
        "RoleArn": DEFAULT_ROLE_ARN,
        "RoleSessionName": "s",
        "DurationSeconds": "900",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": datetime.now(UTC).strftime(EXPIRATION_FORMAT),
        "SignatureNonce": "n1",
        **extra,
    }
    params["Signature"] = rpc_signature("GET", params, secret)
    return httpx.get(sim.url + "/", params=params)


def test_assume_role_checks_the_base_signature_and_the_role(sim: Simulator) -> None:
    good = _assume_role(sim, sim.access_key_secret)
    assert good.status_code == 200
    assert good.json()["Credentials"]["AccessKeyId"].startswith("STS.")
    assert good.json()["AssumedRoleUser"]["Arn"] == f"{DEFAULT_ROLE_ARN}/s"
    assert _assume_role(sim, "wrong").json()["Code"] == "SignatureDoesNotMatch"
    other_role = _assume_role(sim, sim.access_key_secret, RoleArn="acs:ram::1:role/other")
    assert other_role.json()["Code"] == "EntityNotExist.Role"
    short = _assume_role(sim, sim.access_key_secret, DurationSeconds="60")
    assert short.json()["Code"] == "InvalidParameter.DurationSeconds"


def test_assume_role_with_oidc_checks_the_token(sim: Simulator) -> None:
    params = {
        "Action": "AssumeRoleWithOIDC",
        "RoleArn": DEFAULT_ROLE_ARN,
        "OIDCProviderArn": sim.tokens.oidc_provider_arn,
        "OIDCToken": "forged",
        "RoleSessionName": "s",
    }
    assert httpx.get(sim.url, params=params).json()["Code"] == (
        "AuthenticationFail.OIDCToken.Invalid"
    )
    params["OIDCToken"] = sim.tokens.oidc_token
    answer = httpx.get(sim.url, params=params).json()
    assert answer["Credentials"]["SecurityToken"] and "OIDCTokenInfo" in answer


def test_the_ecs_metadata_service_speaks_imds_v2(sim: Simulator) -> None:
    token = httpx.put(sim.url + "/latest/api/token").text
    role_path = sim.url + "/latest/meta-data/ram/security-credentials/"
    assert httpx.get(role_path, headers={"X-aliyun-ecs-metadata-token": token}).text == (
        sim.tokens.ecs_role
    )
    assert httpx.get(role_path, headers={"X-aliyun-ecs-metadata-token": "forged"}).status_code == (
        401
    )
    body = httpx.get(role_path + sim.tokens.ecs_role).json()
    assert body["Code"] == "Success" and body["AccessKeyId"].startswith("STS.")


def test_a_failing_token_service_answers_503_everywhere(sim: Simulator) -> None:
    sim.tokens.failing = True
    assert httpx.get(sim.credentials_uri).status_code == 503
    assert httpx.put(sim.url + "/latest/api/token").status_code == 503
    assert _assume_role(sim, sim.access_key_secret).status_code == 503
