"""The simulator's HTTP server: routes, gateway-style signature checks and fault injection."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import sys
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from exporter.api import signing
from exporter.simulator.poison import POISONS
from exporter.simulator.sts import CREDENTIALS_PATH, TokenService
from exporter.simulator.world import SimDeployment, World

log = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY_ID = "sim-access-key-id"
DEFAULT_ACCESS_KEY_SECRET = "sim-access-key-secret"  # noqa: S105 - the simulator's own test key
MAX_CLOCK_SKEW = timedelta(minutes=15)
CONTROL_PREFIX = "/_simulator/"
MAX_HEADERS = 100
MAX_HEADER_LINE = 65536


@dataclass
class Faults:
    """Faults to inject. Rates are probabilities per request; sets target specific jobs."""

    latency: float = 0.0  # seconds from a request's arrival to its response
    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    malformed_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    # Job IDs whose GetLineageInfo fails: "error" (HTTP 500 every time), "malformed" (not JSON),
    # "bad-shape" (wrong types), "refused" (HTTP 200 with success false and an error code)
    job_faults: dict[str, str] = field(default_factory=dict)
    # Job IDs whose GetLineageInfo answers HTTP 200 with exactly this body (a JSON value, or
    # bytes sent as they are).
    job_bodies: dict[str, Any] = field(default_factory=dict)
    # Job IDs whose lineage is served through a poison (simulator.poison.POISONS, by name).
    poisoned: dict[str, str] = field(default_factory=dict)
    # The share of jobs whose lineage is poisoned, each with a poison of its own: chosen from
    # the job ID, so a job keeps its poison (and its fate) from run to run, like a real API.
    bad_rate: float = 0.0
    # Namespaces whose ListDeployments fails with HTTP 500.
    failing_namespaces: set[str] = field(default_factory=set)
    # The next N requests are throttled (then requests succeed again).
    throttle_next: int = 0
    server_error_next: int = 0


@dataclass
class RequestStats:
    """What the simulator saw: totals per action, rejections, and the most requests in flight."""

    by_action: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    nonces: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))  # the latest
    # How many accepted requests each AccessKey ID signed (STS ones rotate).
    signed_by: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_action.values())


class Simulator:
    """The API simulator: start it, point a workspace's `endpoint` at `url`, stop it."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        security_token: str | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        sts_lifetime: float = 3600.0,
        sts_only: bool = False,
    ) -> None:
        """`sts_lifetime`: how long the STS credentials it issues last; `sts_only`: the API
        accepts only those, not the fixed AccessKey (which can still assume the role)."""
        self.world = world or World()
        self.faults = faults or Faults()
        self.stats = RequestStats()
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.sts_only = sts_only
        self.tokens = TokenService(access_key_id, access_key_secret, lifetime=sts_lifetime)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._seen_nonces: set[str] = set()
        self._nonce_times: deque[tuple[float, str]] = deque()  # oldest first
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def credentials_uri(self) -> str:
        """Where the simulator hands out STS credentials (ALIBABA_CLOUD_CREDENTIALS_URI)."""
        return self.url + CREDENTIALS_PATH

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="simulator"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        arrived: float | None = None,
    ) -> tuple[int, bytes]:
        """The whole server side of one request: faults, gateway checks, then the API.

        The response is sent `latency` after the request arrived, as an API with that latency
        would answer: the simulator's own work is part of that time, not added to it.
        `arrived` is when the request line was read (time.monotonic()), default now.
        """
        if target.startswith(CONTROL_PREFIX):
            status, payload = self.control(method, target)
            return status, _encode(payload)
        if TokenService.handles(target):
            status, payload = self.tokens.respond(method, target, headers)
            return status, _encode(payload)
        arrived = time.monotonic() if arrived is None else arrived
        action = headers.get("x-acs-action", "?")
        with self._lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            self.stats.by_action[action] += 1
        try:
            status, payload = self._answer(action, method, target, headers, body)
            data = _encode(payload)
            self._delay(arrived)
            return status, data
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    def _answer(
        self, action: str, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        rejected = self.check_request(method, target, headers, body)
        if rejected is not None:
            with self._lock:
                self.stats.rejected[rejected[1].get("Code", "?")] += 1
            return rejected
        signer = _parse_authorization(headers.get("authorization", "")) or {}
        with self._lock:
            self.stats.signed_by[signer.get("Credential", "?")] += 1
        fault = self.injected_fault(action)
        if fault is not None:
            return fault
        if self.faults.malformed_rate and self._roll() < self.faults.malformed_rate:
            return 200, b'{"success": true, "data": ['
        return self.handle(method, target, headers, body)

    def control(self, method: str, target: str) -> tuple[int, Any]:
        """The simulator's own endpoints (not part of the real API; unsigned), for benchmarks:
        GET /_simulator/stats, POST /_simulator/reset-stats, POST /_simulator/advance?changes=N.
        """
        path, _, query = target.partition("?")
        params = dict(parse_qsl(query))
        if method == "GET" and path == CONTROL_PREFIX + "stats":
            with self._lock:
                stats = self.stats
                return 200, {
                    "total": stats.total,
                    "by_action": dict(stats.by_action),
                    "rejected": dict(stats.rejected),
                    "max_in_flight": stats.max_in_flight,
                    "access_keys_used": len(stats.signed_by),
                    "sts_issued": dict(self.tokens.stats.issued),
                }
        if method == "POST" and path == CONTROL_PREFIX + "reset-stats":
            with self._lock:
                self.stats = RequestStats()
            return 200, {"reset": True}
        if method == "POST" and path == CONTROL_PREFIX + "advance":
            changes = self.world.advance(int(params.get("changes", "1")))
            return 200, {"changes": changes}
        return 404, {"error": f"no simulator endpoint {method} {path}"}

    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def _delay(self, arrived: float) -> None:
        remaining = self.faults.latency - (time.monotonic() - arrived)
        if remaining > 0:
            time.sleep(remaining)
        if self.faults.slow_rate and self._roll() < self.faults.slow_rate:
            time.sleep(self.faults.slow_seconds)

    # -- the gateway ---------------------------------------------------------------------------

    def check_request(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]] | None:
        """Verify the signature as the gateway does; returns an error response or None."""
        auth = headers.get("authorization", "")
        fields = _parse_authorization(auth)
        if fields is None:
            return _gateway_error(
                400,
                "IncompleteSignature",
                "The Authorization header is missing or not ACS3-HMAC-SHA256.",
            )
        secret = self._secret_for(fields["Credential"], headers.get("x-acs-security-token"))
        if isinstance(secret, tuple):
            return secret
        names = fields["SignedHeaders"].split(";")
        required = {
            "host",
            "x-acs-action",
            "x-acs-version",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-content-sha256",
        }
        if not required <= set(names) or any(n not in headers for n in names):
            return _gateway_error(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        if headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            return _gateway_error(
                400,
                "SignatureDoesNotMatch",
                "The x-acs-content-sha256 does not match the request body.",
            )
        try:
            sent_at = datetime.strptime(headers["x-acs-date"], signing.DATE_FORMAT).replace(
                tzinfo=UTC
            )
        except ValueError:
            return _gateway_error(400, "InvalidTimeStamp.Format", "x-acs-date is not a UTC time.")
        if abs(datetime.now(UTC) - sent_at) > MAX_CLOCK_SKEW:
            return _gateway_error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        path, _, query = target.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        canonical = signing.canonical_request(
            method, path, params, headers, names, headers["x-acs-content-sha256"]
        )
        expected = signing.signature(secret, signing.string_to_sign(canonical))
        if not hmac.compare_digest(expected, fields["Signature"]):
            return _gateway_error(
                400,
                "SignatureDoesNotMatch",
                "The request signature does not conform to Aliyun standards.",
            )
        if not self._fresh_nonce(headers["x-acs-signature-nonce"]):
            return _gateway_error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        if not headers.get("workspace"):
            return _gateway_error(400, "MissingWorkspace", "The header 'workspace' is required.")
        return None

    def _secret_for(
        self, access_key_id: str, security_token: str | None
    ) -> str | tuple[int, dict[str, Any]]:
        """The secret of the signing AccessKey (the fixed one or an STS triplet issued here and
        not yet expired), or the gateway's refusal."""
        if access_key_id == self.access_key_id and not self.sts_only:
            if self.security_token and security_token != self.security_token:
                return _gateway_error(
                    400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is invalid."
                )
            return self.access_key_secret
        if not self.tokens.knows(access_key_id):
            return _gateway_error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        secret = self.tokens.secret_for(access_key_id, security_token)
        if isinstance(secret, tuple):
            return _gateway_error(400, *secret)
        return secret

    def _fresh_nonce(self, nonce: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if nonce in self._seen_nonces:
                return False
            # A nonce is remembered while a request signed with it could still be accepted.
            horizon = now - MAX_CLOCK_SKEW.total_seconds() * 2
            while self._nonce_times and self._nonce_times[0][0] < horizon:
                self._seen_nonces.discard(self._nonce_times.popleft()[1])
            self._seen_nonces.add(nonce)
            self._nonce_times.append((now, nonce))
            self.stats.nonces.append(nonce)
            return True

    def injected_fault(self, action: str) -> tuple[int, dict[str, Any]] | None:
        """A random or scheduled throttling / server error, if one is due for this request."""
        f = self.faults
        with self._lock:
            if f.throttle_next > 0:
                f.throttle_next -= 1
                return _gateway_error(
                    429, "Throttling.User", "Request was denied due to user flow control."
                )
            if f.server_error_next > 0:
                f.server_error_next -= 1
                return _gateway_error(
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
            roll = self._rng.random()
        if roll < f.throttle_rate:
            return _gateway_error(
                429, "Throttling.Api", "Request was denied due to API flow control."
            )
        if roll < f.throttle_rate + f.server_error_rate:
            return 500, _api_error(500, "InternalError", f"{action} failed unexpectedly.")
        return None

    # -- the API -------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        """Route one verified request; returns (status, JSON-able body or raw bytes)."""
        path, _, query = target.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        action = headers.get("x-acs-action", "")
        workspace = headers.get("workspace", "")
        if workspace != self.world.workspace_id:
            return 403, _api_error(
                403,
                "WorkspaceNotFound",
                f"workspace {workspace} does not exist or is not accessible",
            )
        with self.world.lock:
            if method == "GET" and len(parts) == 5 and parts[:3] == ["api", "v2", "namespaces"]:
                if parts[4] == "deployments" and action == "ListDeployments":
                    return self._list_deployments(parts[3], params)
                if parts[4] == "jobs" and action == "ListJobs":
                    return self._list_jobs(parts[3], params)
            if (
                method == "POST"
                and parts == ["meta", "v2", "lineage"]
                and action == "GetLineageInfo"
            ):
                return self._lineage(body)
        return 404, _gateway_error(
            404, "InvalidAction.NotFound", f"Specified api {action} is not found."
        )[1]

    def _page(self, items: list[dict[str, Any]], params: dict[str, str]) -> tuple[int, Any]:
        try:
            index = int(params.get("pageIndex", "1"))
            size = int(params.get("pageSize", "10"))
        except ValueError:
            return 400, _api_error(400, "InvalidParameter", "pageIndex and pageSize are integers")
        if index < 1 or not 1 <= size <= 100:
            return 400, _api_error(400, "InvalidParameter", "pageSize must be between 1 and 100")
        chunk = items[(index - 1) * size : index * size]
        return 200, {
            **_ok(chunk),
            "pageIndex": index,
            "pageSize": size,
            "totalSize": str(len(items)) if index % 2 == 0 else len(items),
        }

    def _list_deployments(self, namespace: str, params: dict[str, str]) -> tuple[int, Any]:
        ns = self.world.namespaces.get(namespace)
        if ns is None:
            return 404, _api_error(404, "NamespaceNotFound", f"namespace {namespace} not found")
        if namespace in self.faults.failing_namespaces:
            return 500, _api_error(500, "InternalError", "ListDeployments failed")
        return self._page(
            [_deployment_json(self.world.workspace_id, d) for d in ns.deployments.values()], params
        )

    def _list_jobs(self, namespace: str, params: dict[str, str]) -> tuple[int, Any]:
        ns = self.world.namespaces.get(namespace)
        if ns is None:
            return 404, _api_error(404, "NamespaceNotFound", f"namespace {namespace} not found")
        deployment_id = params.get("deploymentId", "")
        if not deployment_id:
            return 400, _api_error(400, "InvalidParameter", "deploymentId is required")
        deployment = ns.deployments.get(deployment_id)
        if deployment is None:
            return 404, _api_error(
                404, "DeploymentNotFound", f"deployment {deployment_id} not found"
            )
        # Newest last, so a client that takes the first item gets the wrong job.
        jobs = [_job_json(self.world.workspace_id, deployment, j) for j in deployment.jobs]
        return self._page(jobs, params)

    def _lineage(self, body: bytes) -> tuple[int, Any]:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, _api_error(400, "InvalidParameter", "the body is not JSON")
        job_id = str(params.get("id", "")).strip()
        namespace = str(params.get("namespace", ""))
        if params.get("idType") != "JOB" or not job_id:
            return 400, _api_error(400, "InvalidParameter", "id and idType=JOB are required")
        if job_id in self.faults.job_bodies:
            return 200, _encode(self.faults.job_bodies[job_id])
        fault = self.faults.job_faults.get(job_id)
        if fault == "error":
            return 500, _api_error(500, "InternalError", f"lineage of job {job_id} unavailable")
        if fault == "malformed":
            return 200, b'{"success": true, "data": {"nodes": [ {"id": '
        if fault == "refused":
            return 200, _api_error(200, "JobLineageUnavailable", f"no lineage for {job_id} yet")
        deployment = self.world.find_job(namespace, job_id)
        if deployment is None:
            return 404, _api_error(404, "JobNotFound", f"job {job_id} not found in {namespace}")
        data = self.world.lineage(
            namespace, deployment, job_id, bool(params.get("isColumnLevel", True))
        )
        if fault == "bad-shape":
            data["nodes"] = [{"catalogName": "c", "databaseName": "d", "tables": "oops"}]
        poison = self.faults.poisoned.get(job_id) or self._chosen_poison(job_id)
        if poison is not None:
            return 200, POISONS[poison](data)
        return 200, _ok(data)

    def _chosen_poison(self, job_id: str) -> str | None:
        """The poison `bad_rate` gives this job, if any (the same every time it is asked)."""
        if not self.faults.bad_rate:
            return None
        roll = zlib.crc32(job_id.encode())
        if (roll % 10_000) / 10_000 >= self.faults.bad_rate:
            return None
        names = sorted(POISONS)
        return names[(roll // 10_000) % len(names)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], simulator: Simulator
    ) -> None:
        self.simulator = simulator
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test, a stopped sync) is normal; anything else is a bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("simulator: client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each response would wait for
    # the client's delayed ACK (~40 ms), tripling the simulated latency.
    disable_nagle_algorithm = True
    server: _Server
    arrived = 0.0  # time.monotonic() when the current request line was read

    def parse_request(self) -> bool:
        """The request line and headers, read without the email package.

        The standard library parses headers with it, at a cost above the rest of a request.
        The real API's CPU is not on the exporter's machine; the simulator's is, so it keeps
        its own small: an HTTP/1.1 request line and at most MAX_HEADERS `name: value` lines.
        """
        self.arrived = time.monotonic()  # the request line is in: the API's clock starts
        self.command, self.request_version = "", self.protocol_version  # for send_error
        self.close_connection = True
        raw_requestline: bytes = self.raw_requestline  # type: ignore[attr-defined]
        self.requestline = str(raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {self.requestline!r}")
            return False
        self.command, self.path, self.request_version = words
        headers = HTTPMessage()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("iso-8859-1").partition(":")
            if not colon or len(line) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {line[:80]!r}")
                return False
            headers[name.strip()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers
        self.close_connection = (
            self.request_version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
        )
        return True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:  # the ECS metadata service's IMDSv2 token
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: " + format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        simulator = self.server.simulator
        self._send(*simulator.respond(self.command, self.path, headers, body, self.arrived))

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _encode(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def _parse_authorization(value: str) -> dict[str, str] | None:
    algorithm, _, rest = value.partition(" ")
    if algorithm != signing.ALGORITHM:
        return None
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _gateway_error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "RequestId": _request_id(),
        "HostId": "ververica.sim.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
    }


def _api_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "requestId": _request_id(),
        "success": False,
        "httpCode": status,
        "errorCode": code,
        "errorMessage": message,
        "data": None,
    }


def _ok(data: Any) -> dict[str, Any]:
    return {
        "requestId": _request_id(),
        "success": True,
        "httpCode": 200,
        "errorCode": '""',
        "errorMessage": '""',
        "data": data,
    }


ENGINE_VERSION = "vvr-8.0.9-flink-1.17"


def _deployment_json(workspace: str, d: SimDeployment) -> dict[str, Any]:
    job = d.current_job
    owner = str(d.properties.get("owner", "ana"))
    return {
        "deploymentId": d.id,
        "name": d.name,
        "description": f"{d.name}: written by the {owner} team",
        "namespace": d.namespace,
        "workspace": workspace,
        "engineVersion": ENGINE_VERSION,
        "executionMode": "STREAMING",
        "creator": f"uid-{owner}",
        "creatorName": owner,
        "modifier": f"uid-{owner}",
        "modifierName": owner,
        "createdAt": d.created_at_ms,
        "modifiedAt": str(d.created_at_ms),
        # A label holding a secret, as some teams keep a webhook's token there.
        "labels": {"team": owner, "tier": 1 + len(d.sources) % 3, "alert.token": f"tok-{d.id}"},
        "deploymentTarget": {"name": "default-queue", "namespace": d.namespace, "quota": 10},
        "jobSummary": {"running": int(job is not None and job.status == "RUNNING")},
        # Configuration, as the real API sends it: the exporter keeps none of it.
        "artifact": {"sqlArtifact": {"sqlScript": "CREATE TABLE t WITH ('password' = 'pw')"}},
        "flinkConf": {"execution.checkpointing.interval": "60s"},
    }


def _job_json(workspace: str, d: SimDeployment, job: Any) -> dict[str, Any]:
    owner = str(d.properties.get("owner", "ana"))
    return {
        "jobId": job.id,
        "deploymentId": d.id,
        "deploymentName": d.name,
        "namespace": d.namespace,
        "workspace": workspace,
        "createdAt": str(job.created_at_ms),
        "startTime": job.created_at_ms // 1000,
        "endTime": job.ended_at_ms,
        "status": {"currentJobStatus": job.status, "running": {"observedFlinkJobRestarts": 0}},
        "engineVersion": ENGINE_VERSION,
        "executionMode": "STREAMING",
        "creator": f"uid-{owner}",
        "creatorName": owner,
        "flinkConf": {"state.backend": "rocksdb"},
        "userFlinkConf": {"secret.key": "do-not-store"},
        "localVariables": [{"name": "pw", "value": "do-not-store"}],
    }
