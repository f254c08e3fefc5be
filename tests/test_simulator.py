"""The simulator rejects badly signed requests like the gateway, and its world changes over time."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from exporter.api.credentials import Credentials
from exporter.api.signing import AcsSignatureAuth
from exporter.simulator import Simulator, World, WorldSize

NS = "default-namespace"


def signed(
    sim: Simulator,
    *,
    secret: str | None = None,
    clock: datetime | None = None,
    nonce: str | None = None,
    workspace: str | None = "ws-test",
) -> httpx.Request:
    headers = {"x-acs-action": "ListDeployments", "accept": "application/json"}
    if workspace is not None:
        headers["workspace"] = workspace
    request = httpx.Request(
        "GET",
        f"{sim.url}/api/v2/namespaces/{NS}/deployments",
        params={"pageSize": 5},
        headers=headers,
    )
    auth = AcsSignatureAuth(
        Credentials(sim.access_key_id, SecretStr(secret or sim.access_key_secret)),
        clock=(lambda: clock) if clock else (lambda: datetime.now(UTC)),
        **({"nonce": lambda: nonce} if nonce else {}),  # type: ignore[arg-type]
    )
    return next(auth.auth_flow(request))


def send(request: httpx.Request) -> tuple[int, dict[str, Any]]:
    with httpx.Client() as http:
        response = http.send(request)
    return response.status_code, response.json()


def test_a_correctly_signed_request_is_served(simulator: Simulator) -> None:
    status, body = send(signed(simulator))
    assert status == 200 and body["success"] is True
    assert len(body["data"]) == 5


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("secret", "SignatureDoesNotMatch"),
        ("body", "SignatureDoesNotMatch"),
        ("query", "SignatureDoesNotMatch"),
        ("stale", "InvalidTimeStamp.Expired"),
        ("no-auth", "IncompleteSignature"),
        ("no-workspace", "MissingWorkspace"),
    ],
)
def test_gateway_rejections(simulator: Simulator, tamper: str, code: str) -> None:
    if tamper == "secret":
        request = signed(simulator, secret="wrong")
    elif tamper == "stale":
        request = signed(simulator, clock=datetime.now(UTC) - timedelta(minutes=20))
    elif tamper == "no-workspace":
        request = signed(simulator, workspace=None)
    else:
        request = signed(simulator)
    if tamper == "body":
        request = httpx.Request(request.method, request.url, headers=request.headers, content=b"{}")
        request.headers["x-acs-content-sha256"] = hashlib.sha256(b"{").hexdigest()
    if tamper == "query":
        request = httpx.Request(
            request.method, request.url.copy_merge_params({"pageSize": 6}), headers=request.headers
        )
    if tamper == "no-auth":
        del request.headers["Authorization"]
    status, body = send(request)
    assert status >= 400
    assert body["Code"] == code
    assert {"RequestId", "HostId", "Code", "Message", "Recommend"} <= body.keys()


def test_content_hash_mismatch(simulator: Simulator) -> None:
    request = signed(simulator)
    request.headers["x-acs-content-sha256"] = hashlib.sha256(b"other").hexdigest()
    status, body = send(request)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in body["Message"]


def test_reused_nonce_is_rejected(simulator: Simulator) -> None:
    assert send(signed(simulator, nonce="same-nonce"))[0] == 200
    status, body = send(signed(simulator, nonce="same-nonce"))
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_no_response_before_the_latency(simulator: Simulator) -> None:
    import time

    simulator.faults.latency = 0.15  # from the request's arrival, the simulator's work included
    started = time.monotonic()
    status, _ = send(signed(simulator))
    assert status == 200 and time.monotonic() - started >= 0.15


def test_nonces_are_forgotten_once_they_could_not_be_replayed(simulator: Simulator) -> None:
    import time

    assert send(signed(simulator, nonce="old-nonce"))[0] == 200
    # Pretend the nonce was seen longer ago than a signed request stays valid.
    simulator._nonce_times[0] = (time.monotonic() - 3600, "old-nonce")
    assert send(signed(simulator, nonce="new-nonce"))[0] == 200
    assert "old-nonce" not in simulator._seen_nonces and "new-nonce" in simulator._seen_nonces


def test_the_same_seed_gives_the_same_world_and_changes() -> None:
    size = WorldSize(namespaces=2, deployments_per_namespace=4)
    first, second = World("w", seed=3, size=size), World("w", seed=3, size=size)
    assert first.advance(5) == second.advance(5)
    deployment = next(d for d in first.namespaces[NS].deployments.values() if d.jobs)
    job = deployment.current_job
    assert job is not None
    assert first.lineage(NS, deployment, job.id) == second.lineage(
        NS, second.namespaces[NS].deployments[deployment.id], job.id
    )


def test_the_world_is_realistic() -> None:
    world = World("w", seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=30))
    deployments = [d for ns in world.namespaces.values() for d in ns.deployments.values()]
    assert len(world.namespaces) == 2
    assert any(len(d.jobs) > 1 for d in deployments)  # older cancelled instances
    assert any(d.temporary for d in deployments)
    assert any(d.external_source for d in deployments)
    lineages = [
        world.lineage(d.namespace, d, d.current_job.id) for d in deployments if d.current_job
    ]
    connectors = {n["connector"] for lin in lineages for n in lin["nodes"]}
    assert len(connectors) >= 4
    endpoints = [e["source"] for lin in lineages for e in lin["edges"]["columnLineage"]]
    assert any(e.startswith("c") and "." not in e for e in endpoints)  # IDs
    assert any(e.count(".") == 3 for e in endpoints)  # qualified names
    assert any("://" in e for e in endpoints)  # matching no node
    values = {
        type(v)
        for lin in lineages
        for n in lin["nodes"]
        for t in n["tables"]
        for v in t["with"].values()
    }
    assert {str, int, float, bool, list} <= values


def test_the_world_changes_every_kind_of_thing() -> None:
    world = World("w", seed=9, size=WorldSize(namespaces=2, deployments_per_namespace=10))
    changes = " ".join(c for _ in range(40) for c in world.advance(3))
    for words in (
        "type ->",
        "column added",
        "dropped",
        "with changed",
        "properties changed",
        "restarted",
        "deleted",
        "added",
        "source",
    ):
        assert words in changes


def test_control_endpoints_for_benchmarks(simulator: Simulator, make_client: Any) -> None:
    import json as json_
    import urllib.request

    def call(method: str, path: str) -> Any:
        request = urllib.request.Request(f"{simulator.url}/_simulator/{path}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json_.loads(response.read())

    make_client().list_deployments(sorted(simulator.world.namespaces)[0])
    stats = call("GET", "stats")
    assert stats["by_action"] == {"ListDeployments": 1} and stats["max_in_flight"] == 1
    tick = simulator.world.tick
    assert isinstance(call("POST", "advance?changes=3")["changes"], list)
    assert simulator.world.tick == tick + 1
    call("POST", "reset-stats")
    assert call("GET", "stats")["total"] == 0


def _raw_exchange(simulator: Simulator, request: bytes) -> bytes:
    """Send bytes as they are and read until the server closes the connection."""
    host, port = simulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\n" + b"x-h: v\r\n" * 101 + b"\r\n", b"431"),
    ],
)
def test_malformed_requests_get_an_http_error(
    simulator: Simulator, request_bytes: bytes, status: bytes
) -> None:
    response = _raw_exchange(simulator, request_bytes)
    assert response.startswith(b"HTTP/1.1 " + status), response[:80]


def test_headers_are_read_case_insensitively_and_connections_kept(simulator: Simulator) -> None:
    request = (
        b"GET /_simulator/stats HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /_simulator/stats HTTP/1.1\r\nHOST: x\r\nConnection: close\r\n\r\n"
    )
    response = _raw_exchange(simulator, request)
    assert response.count(b"HTTP/1.1 200") == 2  # both served on one connection, then closed


def test_a_client_that_goes_away_is_not_an_error(
    simulator: Simulator, capfd: pytest.CaptureFixture[str]
) -> None:
    import struct
    import time

    simulator.faults.latency = 0.2
    host, port = simulator.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.sendall(b"GET /api/v2/namespaces/x/deployments HTTP/1.1\r\nHost: x\r\n\r\n")
    # Close with a reset (linger 0), as a client that timed out: the answer has nowhere to go.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    deadline = time.monotonic() + 5
    while simulator.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # the handler's write fails just after its delay
    assert simulator.stats.total == 1
    assert "Traceback" not in capfd.readouterr().err
    # And the simulator still serves.
    assert b"HTTP/1.1 200" in _raw_exchange(
        simulator, b"GET /_simulator/stats HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
