"""The Flink OpenAPI client: signed requests, paging, bounded concurrency and retries.

Returns wire models. A transient failure (throttling, 5xx, timeout, connection error) is retried
with exponential backoff and full jitter until the attempts or the time budget run out; a
signature, credential or parameter error is raised at once.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from exporter.api.credentials import Credentials, CredentialSource
from exporter.api.signing import API_VERSION, AcsSignatureAuth
from exporter.api.wire import (
    Deployment,
    DeploymentPage,
    Envelope,
    Job,
    JobPage,
    LineageBody,
    LineageResponse,
    Page,
    parse_body,
)
from exporter.config import WorkspaceSettings
from exporter.errors import (
    ApiContext,
    ApiError,
    AuthError,
    CredentialsError,
    ExporterError,
    PayloadError,
)
from exporter.redact import Redactor
from exporter.storable import UnstorableBody, decode_body

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Page)
E = TypeVar("E", bound=Envelope)
L = TypeVar("L", LineageResponse, LineageBody)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE_SIZE = 100
MAX_PAGES = 10_000  # a guard against an API that never reaches totalSize
AUTH_CODES = (
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
    "Forbidden",
    "NoPermission",
)

# Called with (action, context, request params, decoded body) for every successful response.
ResponseRecorder = Callable[[str, ApiContext, dict[str, Any], Any], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass
class ClientStats:
    """Counters for benchmarks, metrics and the sync summary; safe to update from threads."""

    requests: int = 0
    retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def failed(self, code: str, retried: bool) -> None:
        with self._lock:
            self.errors_by_code[code] += 1
            self.retries += int(retried)


class RateLimiter:
    """Spaces request starts evenly, so that at most `per_second` begin in any second.

    Each caller reserves the next start time under a lock, then sleeps outside it: waiting
    threads queue in order without holding each other up.
    """

    def __init__(
        self,
        per_second: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._sleep = sleep
        self._monotonic = monotonic
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when the caller may start a request (at once when there is no cap)."""
        if not self._interval:
            return
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


class _Transient(Exception):
    """An attempt failed in a way worth retrying; carries the error to raise if retries run out."""

    def __init__(self, error: ApiError | CredentialsError, code: str | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.code = code or (error.code if isinstance(error, ApiError) else None) or "transient"

    def final(self, attempts: int) -> ExporterError:
        """The error to raise when this was the last attempt."""
        if isinstance(self.error, ApiError):
            return self.error.after_attempts(attempts)
        return self.error


class FlinkClient:
    """A client for one workspace. Thread-safe: share it between fetch workers."""

    def __init__(
        self,
        settings: WorkspaceSettings,
        credentials: Credentials | CredentialSource,
        *,
        retry: RetryPolicy | None = None,
        recorder: ResponseRecorder | None = None,
        redactor: Redactor | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._retry = retry or RetryPolicy(max_attempts=settings.max_attempts)
        self._recorder = recorder
        self._redactor = redactor or Redactor()
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._rate = RateLimiter(settings.requests_per_second, sleep=sleep, monotonic=monotonic)
        self._http = httpx.Client(
            base_url=settings.base_url,
            auth=AcsSignatureAuth(credentials),
            timeout=httpx.Timeout(
                settings.read_timeout.total_seconds(),
                connect=settings.connect_timeout.total_seconds(),
            ),
            # Always verified; a custom CA bundle replaces the system's trust store.
            verify=ssl.create_default_context(cafile=settings.ca_bundle)
            if settings.ca_bundle
            else True,
            headers={"accept": "application/json", "workspace": settings.id},
            limits=httpx.Limits(max_connections=settings.concurrency),
        )

    def __enter__(self) -> FlinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the three calls -------------------------------------------------------------------

    def list_deployments(self, namespace: str) -> list[Deployment]:
        """Every deployment of the namespace, paged to the end."""
        return [d for page in self.iter_deployment_pages(namespace) for d in page]

    def iter_deployment_pages(self, namespace: str) -> Iterator[list[Deployment]]:
        """The namespace's deployments a page at a time, so work can start on the first page."""
        context = ApiContext(self.settings.id, namespace)
        path = f"/api/v2/namespaces/{quote(namespace, safe='')}/deployments"
        clean = self._redactor.deployments_body
        pages = self._iter_pages("ListDeployments", path, {}, context, DeploymentPage, clean)
        for page in pages:
            yield list(page.data)

    def list_jobs(
        self, namespace: str, deployment_id: str, deployment_name: str | None = None
    ) -> list[Job]:
        """Every job instance of the deployment (the current one and older ones), paged."""
        context = ApiContext(self.settings.id, namespace, deployment_id, None, deployment_name)
        path = f"/api/v2/namespaces/{quote(namespace, safe='')}/jobs"
        params = {"deploymentId": deployment_id}
        pages = self._iter_pages("ListJobs", path, params, context, JobPage)
        return [j for page in pages for j in page.data]

    def newest_job(
        self, namespace: str, deployment_id: str, deployment_name: str | None = None
    ) -> Job | None:
        """The deployment's job instance with the largest createdAt, or None if it has none."""
        return newest(self.list_jobs(namespace, deployment_id, deployment_name))

    def get_lineage(
        self,
        namespace: str,
        deployment_id: str,
        job_id: str,
        deployment_name: str | None = None,
    ) -> LineageResponse:
        """The lineage of one job instance (idType JOB, direction BOTH)."""
        return self._lineage(LineageResponse, namespace, deployment_id, job_id, deployment_name)

    def get_lineage_body(
        self,
        namespace: str,
        deployment_id: str,
        job_id: str,
        deployment_name: str | None = None,
    ) -> LineageBody:
        """`get_lineage` with the lineage left to validate (see `wire.LineageBody`)."""
        return self._lineage(LineageBody, namespace, deployment_id, job_id, deployment_name)

    def _lineage(
        self,
        model: type[L],
        namespace: str,
        deployment_id: str,
        job_id: str,
        deployment_name: str | None,
    ) -> L:
        context = ApiContext(self.settings.id, namespace, deployment_id, job_id, deployment_name)
        body = {
            "id": job_id,
            "idType": "JOB",
            "depth": self.settings.depth,
            "direction": "BOTH",
            "isColumnLevel": self.settings.column_level,
            "namespace": namespace,
            "workspace": self.settings.id,
        }
        response = self._call(
            "GetLineageInfo",
            "POST",
            "/meta/v2/lineage",
            context,
            model,
            body=body,
            # Connector credentials in `with` options go no further than this.
            clean=self._redactor.lineage_body,
        )
        if response.data is None:
            raise PayloadError(
                context, "GetLineageInfo", "data", "missing on a successful response"
            )
        return response

    # -- paging, retries, error classification ---------------------------------------------

    def _iter_pages(
        self,
        action: str,
        path: str,
        params: dict[str, Any],
        context: ApiContext,
        model: type[P],
        clean: Callable[[Any], Any] | None = None,
    ) -> Iterator[P]:
        seen = 0
        for index in range(1, MAX_PAGES + 1):
            query = {**params, "pageIndex": index, "pageSize": PAGE_SIZE}
            page = self._call(action, "GET", path, context, model, params=query, clean=clean)
            yield page
            count = len(page.data)  # type: ignore[attr-defined]
            seen += count
            if count == 0 or seen >= page.total_size:
                break

    def _call(
        self,
        action: str,
        method: str,
        path: str,
        context: ApiContext,
        model: type[E],
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        clean: Callable[[Any], Any] | None = None,
    ) -> E:
        """One API call with retries; `clean` is applied to the decoded body before anything
        (validation, the recorder, the caller) sees it."""
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers = {"x-acs-action": action, "x-acs-version": API_VERSION}
        if content is not None:
            headers["content-type"] = "application/json; charset=utf-8"
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                decoded = self._attempt(action, method, path, context, params, content, headers)
            except _Transient as transient:
                delay = self._retry.delay(attempt, self._rng)
                out_of_time = self._monotonic() - started + delay > self._budget
                if attempt >= self._retry.max_attempts or out_of_time:
                    self.stats.failed(transient.code, retried=False)
                    raise transient.final(attempt) from None
                self.stats.failed(transient.code, retried=True)
                log.info(
                    "retrying %s for %s in %.2fs: %s",
                    action,
                    context.describe(),
                    delay,
                    transient.error,
                )
                self._sleep(delay)
                continue
            if clean is not None:
                decoded = clean(decoded)
            parsed = parse_body(model, decoded, context, action)
            if self._recorder is not None:
                self._recorder(action, context, {**(params or {}), **(body or {})}, decoded)
            return parsed

    @property
    def _budget(self) -> float:
        return self.settings.retry_budget.total_seconds()

    def _attempt(
        self,
        action: str,
        method: str,
        path: str,
        context: ApiContext,
        params: dict[str, Any] | None,
        content: bytes | None,
        headers: dict[str, str],
    ) -> Any:
        """One signed request; returns the decoded body of a successful response."""
        self._rate.wait()
        with self._slots:
            self.stats.started()
            try:
                response = self._http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TimeoutException as exc:
                raise _Transient(
                    ApiError(context, action, code="Timeout", message=type(exc).__name__)
                ) from None
            except httpx.TransportError as exc:
                raise _Transient(
                    ApiError(context, action, code="ConnectionError", message=str(exc))
                ) from None
            except CredentialsError as exc:
                # The provider could not refresh (its endpoint down a moment): worth a retry
                # within the request's budget; after that the sync fails as a whole.
                raise _Transient(exc, code="CredentialsUnavailable") from None
            finally:
                self.stats.finished()
        return _decode(response, action, context)


def _decode(response: httpx.Response, action: str, context: ApiContext) -> Any:
    status = response.status_code
    try:
        body = decode_body(response.content)
    except UnstorableBody as exc:
        if status >= 500:
            raise _Transient(ApiError(context, action, status=status, code="ServerError")) from None
        if status >= 400:
            raise ApiError(context, action, status=status, message=response.text[:200]) from None
        raise PayloadError(context, action, "(body)", str(exc)) from None
    if isinstance(body, dict) and "Code" in body and ("RequestId" in body or status >= 400):
        raise _classify_gateway(context, action, status, body)
    if isinstance(body, dict) and (body.get("success") is False or status >= 400):
        raise _classify_api(context, action, status, body)
    return body


def _classify_gateway(
    context: ApiContext, action: str, status: int, body: dict[str, Any]
) -> Exception:
    """A gateway error body: {RequestId, HostId, Code, Message, Recommend}."""
    code = str(body.get("Code") or "")
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "message": body.get("Message"),
        "request_id": body.get("RequestId"),
    }
    if code.startswith("Throttling") or code == "ServiceUnavailable" or status >= 500:
        return _Transient(ApiError(context, action, retryable=True, **kwargs))
    if code.startswith(AUTH_CODES) or status in (401, 403):
        return AuthError(context, action, **kwargs)
    return ApiError(context, action, **kwargs)


def _classify_api(context: ApiContext, action: str, status: int, body: dict[str, Any]) -> Exception:
    """An API error body: {success: false, httpCode, errorCode, errorMessage, requestId}."""
    envelope = Envelope.model_validate(body)
    code = envelope.error_code or ""
    http_code = envelope.http_code or status
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code or None,
        "message": envelope.error_message,
        "request_id": envelope.request_id,
    }
    if code.startswith("Throttling") or status >= 500 or http_code >= 500:
        return _Transient(ApiError(context, action, retryable=True, **kwargs))
    return ApiError(context, action, **kwargs)


def newest(jobs: list[Job]) -> Job | None:
    """The job with the largest createdAt (ties: the largest job ID), or None."""
    if not jobs:
        return None
    return max(jobs, key=lambda j: (j.created_at or _EPOCH, j.job_id))
