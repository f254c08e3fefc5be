"""Extract: for each namespace, its deployments, the newest job of each and that job's lineage.

Per-deployment work (ListJobs then GetLineageInfo) runs on twice as many threads as the
workspace's `concurrency`; the client's own semaphore keeps the requests in flight within it, and
while one thread parses a response another's request has its slot.
Failures are captured per namespace (listing) and per deployment (jobs or lineage), never raised,
so the caller decides what a partial result means.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextvars import copy_context
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from exporter.api.client import FlinkClient
from exporter.api.wire import (
    Deployment,
    Job,
    JobRef,
    LineageBody,
    LineageResponse,
    ListedDeployment,
)
from exporter.errors import ApiContext, ExporterError, FetchCancelled, PayloadError
from exporter.storable import MAX_ID_BYTES, describe_too_long, too_long

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeploymentFetch:
    """What the API said about one deployment in this pass."""

    namespace: str
    deployment: Deployment | ListedDeployment
    job: Job | JobRef | None = None
    # Validated, or with a digest its body (the digest validates what it needs)
    lineage: LineageResponse | LineageBody | None = None
    error: ExporterError | None = None
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # What `digest` made of the lineage in the fetch thread; the parsed response is then dropped.
    digest: Any = None

    @property
    def has_job(self) -> bool:
        return self.job is not None or self.error is not None

    @property
    def succeeded(self) -> bool:
        return self.error is None and (self.lineage is not None or self.digest is not None)


@dataclass
class NamespaceFetch:
    """One namespace: its listing error, or the fetch of every listed deployment."""

    namespace: str
    listing_error: ExporterError | None = None
    deployments: list[DeploymentFetch] = field(default_factory=list)

    @property
    def listed(self) -> bool:
        return self.listing_error is None

    @property
    def without_job(self) -> int:
        return sum(1 for d in self.deployments if not d.has_job)

    @property
    def failed(self) -> list[DeploymentFetch]:
        return [d for d in self.deployments if d.error is not None]


class StopSignal(Protocol):
    """Anything that says whether to stop starting work (a threading.Event, a deadline)."""

    def is_set(self) -> bool: ...


class Progress(Protocol):
    """Told as deployments are listed and as each one's fetch ends (from fetch threads)."""

    def listed(self, count: int) -> None: ...

    def fetched(self, fetch: DeploymentFetch) -> None: ...


class FetchCount:
    """A Progress that counts deployments listed and fetched, and passes both on."""

    def __init__(self, then: Progress | None = None) -> None:
        self._then = then
        self._lock = threading.Lock()
        self._listed = 0
        self._fetched = 0

    def listed(self, count: int) -> None:
        with self._lock:
            self._listed += count
        if self._then is not None:
            self._then.listed(count)

    def fetched(self, fetch: DeploymentFetch) -> None:
        with self._lock:
            self._fetched += 1
        if self._then is not None:
            self._then.fetched(fetch)

    def outstanding(self) -> int:
        """Deployments listed so far whose fetch has not ended."""
        with self._lock:
            return self._listed - self._fetched


# Fetch threads per request slot (`concurrency`): a thread parses and digests each response after
# its slot is freed, and another thread's request takes the slot meanwhile.
FETCH_THREADS_PER_SLOT = 2

# Turns a successful fetch into what the caller keeps (e.g. normalized rows), in the fetch thread,
# so parsing overlaps the network and the parsed response need not be held until the end.
Digest = Callable[[DeploymentFetch], Any]


def fetch_deployment(
    client: FlinkClient,
    namespace: str,
    deployment: Deployment | ListedDeployment,
    validate: bool = True,
) -> DeploymentFetch:
    """ListJobs, choose the newest instance, GetLineageInfo (its lineage validated, or with
    `validate=False` left to the caller); any API failure is captured, and so is an ID too long
    to store (before any request for it)."""
    name = deployment.name or None
    context = ApiContext(client.settings.id, namespace, deployment.deployment_id, None, name)
    try:
        _check_id(deployment.deployment_id, context, "ListDeployments", "deploymentId")
        job = client.newest_job(namespace, deployment.deployment_id, name)
        if job is None:
            return DeploymentFetch(namespace, deployment)
        _check_id(job.job_id, replace(context, job=job.job_id), "ListJobs", "jobId")
        lineage = (client.get_lineage if validate else client.get_lineage_body)(
            namespace, deployment.deployment_id, job.job_id, name
        )
        return DeploymentFetch(namespace, deployment, job, lineage)
    except ExporterError as exc:
        log.warning("%s", exc)
        return DeploymentFetch(namespace, deployment, error=exc)


def _check_id(value: str, context: ApiContext, action: str, field: str) -> None:
    if too_long(value, MAX_ID_BYTES):
        problem = describe_too_long("the ID", value, MAX_ID_BYTES)
        raise PayloadError(context, action, field, problem)


def fetch_workspace(
    client: FlinkClient,
    namespaces: list[str] | None = None,
    progress: Progress | None = None,
    stop: StopSignal | None = None,
    digest: Digest | None = None,
) -> list[NamespaceFetch]:
    """Fetch every configured namespace (or the given ones) of the client's workspace.

    Namespaces are listed side by side, each on its own thread, and each page's deployments are
    queued as it arrives for FETCH_THREADS_PER_SLOT x `concurrency` fetch threads (the client's
    own semaphore keeps all requests, listings included, within `concurrency`). A queued
    deployment costs a tuple, not a future: 10,000 futures held 20 MB until the fetch ended.

    When `stop` is set, deployments not yet started are skipped with a FetchCancelled error.
    With `digest`, each successful fetch keeps `digest(fetch)` instead of its lineage (which the
    digest validates: `wire.LineageBody`),
    each deployment is kept as listed (`ListedDeployment`) from its listing on, and a job as its
    ID (memory that would grow with the workspace); an ExporterError raised by the digest (e.g.
    a payload of the wrong shape) fails that job only.
    """
    listings = [_Listing(NamespaceFetch(ns)) for ns in namespaces or client.settings.namespaces]
    queued: queue.SimpleQueue[tuple[_Listing, int, Deployment | ListedDeployment] | None]
    queued = queue.SimpleQueue()
    crashed: list[BaseException] = []  # a bug in a thread is raised here, not lost with it

    def list_namespace(listing: _Listing) -> None:
        for page in _pages(client, listing):
            if progress is not None:  # before any of its fetches can end: never "1/0 fetched"
                progress.listed(len(page))
            for deployment in page:
                listing.fetched.append(None)
                kept = deployment.listed() if digest is not None else deployment
                queued.put((listing, len(listing.fetched) - 1, kept))

    def fetch_queued() -> None:
        while (task := queued.get()) is not None:
            listing, position, deployment = task
            if listing.result.listed:  # else its listing failed: nothing of it is used
                namespace = listing.result.namespace
                fetched = _fetch_and_report(client, namespace, deployment, progress, stop, digest)
                listing.fetched[position] = fetched

    listers = [_start("list", _guarded(list_namespace, crashed), listing) for listing in listings]
    fetchers = [
        _start("fetch", _guarded(fetch_queued, crashed))
        for _ in range(FETCH_THREADS_PER_SLOT * client.settings.concurrency)
    ]
    for thread in listers:
        thread.join()
    for _ in fetchers:
        queued.put(None)
    for thread in fetchers:
        thread.join()
    if crashed:
        raise crashed[0]
    for listing in listings:
        if listing.result.listed:
            listing.result.deployments = [_ended(f) for f in listing.fetched]
    return [listing.result for listing in listings]


def _ended(fetched: DeploymentFetch | None) -> DeploymentFetch:
    assert fetched is not None, "every listed deployment's fetch ends before the listing's"
    return fetched


@dataclass
class _Listing:
    """A namespace being listed, and the fetch of each deployment listed so far (None until it
    ends), in listing order."""

    result: NamespaceFetch
    fetched: list[DeploymentFetch | None] = field(default_factory=list)


def _pages(client: FlinkClient, listing: _Listing) -> Iterator[list[Deployment]]:
    """The namespace's pages; a listing that fails part-way is a listing failure: the fetches
    it queued are skipped or ignored, so nothing in that namespace changes."""
    try:
        yield from client.iter_deployment_pages(listing.result.namespace)
    except ExporterError as exc:
        log.warning("%s", exc)
        listing.result.listing_error = exc


def _guarded(work: Callable[..., None], crashed: list[BaseException]) -> Callable[..., None]:
    def guarded(*args: Any) -> None:
        try:
            work(*args)
        except BaseException as exc:
            crashed.append(exc)

    return guarded


def _start(name: str, work: Callable[..., None], *args: Any) -> threading.Thread:
    # Each thread runs in a copy of the caller's context: log records keep the run's tags.
    thread = threading.Thread(target=copy_context().run, args=(work, *args), name=name)
    thread.start()
    return thread


def _fetch_and_report(
    client: FlinkClient,
    namespace: str,
    deployment: Deployment | ListedDeployment,
    progress: Progress | None,
    stop: StopSignal | None,
    digest: Digest | None,
) -> DeploymentFetch:
    if stop is not None and stop.is_set():
        return DeploymentFetch(namespace, deployment, error=FetchCancelled("shutting down"))
    fetched = DeploymentFetch(namespace, deployment)
    try:
        fetched = fetch_deployment(client, namespace, deployment, validate=digest is None)
        if digest is not None and fetched.error is None:
            # What a run keeps to its end: the digest (none without a job), the deployment as
            # listed and the job's ID.
            digested = digest(fetched) if fetched.succeeded else None
            fetched = replace(
                fetched,
                job=fetched.job.identity() if isinstance(fetched.job, Job) else fetched.job,
                lineage=None,
                digest=digested,
            )
    except ExporterError as exc:
        log.warning("%s", exc)
        fetched = replace(fetched, lineage=None, error=exc)
    except Exception as exc:  # anything else about one job's data fails that job alone
        error = _unexpected(client, fetched, exc)
        log.warning("%s", error)
        log.debug("the unexpected error's traceback", exc_info=exc)
        fetched = replace(fetched, lineage=None, error=error)
    if progress is not None:
        progress.fetched(fetched)
    return fetched


def _unexpected(client: FlinkClient, fetched: DeploymentFetch, exc: Exception) -> PayloadError:
    deployment, job = fetched.deployment, fetched.job
    context = ApiContext(
        client.settings.id,
        fetched.namespace,
        deployment.deployment_id,
        job.job_id if job is not None else None,
        deployment.name or None,
    )
    problem = f"could not be taken: {type(exc).__name__}: {str(exc)[:300]}"
    return PayloadError(context, "GetLineageInfo", "(body)", problem)
