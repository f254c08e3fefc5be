"""One sync run of one workspace: extract -> normalize -> merge/diff -> store, atomically.

A job's successful fetch replaces its deployment's previous contribution; a failed fetch keeps
it; a deployment missing from a successful listing loses it; a namespace whose listing failed
keeps all of its contributions. The wanted state is the union of the contributions, diffed with
the stored current state, and the difference is written in one transaction with the run's record.

A run that changes a few contributions diffs, in Python, just the keys they report (now or
before); one that changes many stages every contribution's rows and lets the database diff the
whole state (`staging`), so that its memory does not grow with the workspace.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any, TypeVar

from pydantic_core import to_json
from sqlalchemy import Engine

from exporter import database, store
from exporter.api.client import FlinkClient
from exporter.api.credentials import Credentials, CredentialSource, StaticSource, open_source
from exporter.api.wire import Job, LineageBody, LineageResponse, parse_body
from exporter.collector import young_collections_only
from exporter.config import RetentionSettings, WorkspaceSettings
from exporter.early import EarlyStager, Staged
from exporter.errors import (
    ApiContext,
    CredentialsError,
    DataRefused,
    ExporterError,
    FetchCancelled,
    PayloadError,
    RowsRefused,
)
from exporter.extract import (
    DeploymentFetch,
    Digest,
    FetchCount,
    NamespaceFetch,
    Progress,
    fetch_workspace,
)
from exporter.failures import JobFailure, culprits, failures_of
from exporter.history import Ranked, diff, diff_made_rows, keys_of, merge, restrict
from exporter.lease import workspace_lease
from exporter.logs import run_context
from exporter.normalize import (
    KINDS,
    ROWS_VERSION,
    JobIdentity,
    Key,
    Reports,
    State,
    check_limits,
    content_hash,
    deployment_attributes,
    job_attributes,
    normalize,
    reports,
)
from exporter.redact import Redactor
from exporter.staging import Staging

log = logging.getLogger(__name__)

Key2 = tuple[str, str]  # (namespace, deployment_id)

# A run that changes at most this many contributions (or this share of them) diffs only the keys
# those contributions report, now or before; a larger one diffs the whole current state. Each
# normalizes stored payloads again: the keyed diff the changed ones' (and the few unchanged ones
# that may report a key they dropped), the whole one every unchanged one's: it pays past half.
FEW_CHANGES = 10
FEW_CHANGES_SHARE = 0.5
# Contributions staged at a time from stored payloads (each is about 34 KB of JSON on average).
STAGE_BATCH = 100
# Stored payloads a keyed diff loads at a time.
REMADE_BATCH = 25


class SyncInterrupted(ExporterError):
    """The daemon was asked to stop while fetching; nothing of this run was written."""


@dataclass
class SyncSummary:
    """What one run did, for the CLI's one-line summary and the daemon's log."""

    workspace_id: str
    run_id: int | None = None
    status: str = "running"
    deployments: int = 0
    without_job: int = 0
    jobs_total: int = 0
    jobs_failed: int = 0
    namespaces_failed: int = 0
    # (opened, closed) versions: of lineage (tables, columns, jobs, edges), of deployments
    lineage_changes: tuple[int, int] = (0, 0)
    deployment_changes: tuple[int, int] = (0, 0)
    changes_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)
    api_requests: int = 0
    api_retries: int = 0
    api_errors: dict[str, int] = field(default_factory=dict)
    fetch_seconds: float = 0.0  # from the first request to the last response
    write_seconds: float = 0.0  # normalize, diff and the write transaction

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def rows_added(self) -> int:
        return self.lineage_changes[0] + self.deployment_changes[0]

    @property
    def rows_closed(self) -> int:
        return self.lineage_changes[1] + self.deployment_changes[1]

    def line(self) -> str:
        if self.status == "skipped":
            return f"{self.workspace_id}: skipped: {'; '.join(self.errors)}"
        parts = [
            f"{self.deployments} deployments",
            f"{self.jobs_total - self.jobs_failed} jobs fetched",
            f"{self.jobs_failed} failed",
        ]
        if self.without_job:
            parts.append(f"{self.without_job} without a job")
        if self.namespaces_failed:
            parts.append(f"{self.namespaces_failed} namespaces failed")
        by_kind = {**self.changes_by_kind, "deployments": self.deployment_changes}
        changed = ", ".join(
            f"{kind} +{opened}/-{closed}"
            for kind, (opened, closed) in by_kind.items()
            if opened or closed
        )
        return (
            f"{self.workspace_id}: {self.status} (run {self.run_id}): {', '.join(parts)}; "
            f"rows added {self.rows_added}, closed {self.rows_closed}; "
            f"fetch {self.fetch_seconds:.2f} s, write {self.write_seconds:.2f} s"
            + (f" [{changed}]" if changed else "")
            + self._failed_names()
        )

    def _failed_names(self, most: int = 5) -> str:
        """`; failed: ns/deployment (name) job J [stage], ...`: which ones (why follows)."""
        if not self.failures:
            return ""
        names = [f.name() for f in self.failures[:most]]
        if len(self.failures) > most:
            names.append(f"and {len(self.failures) - most} more")
        return f"; failed: {', '.join(names)}"


@dataclass(frozen=True)
class Plan:
    """Which contributions the new state is built from."""

    fetched: list[DeploymentFetch]
    kept: set[Key2]
    removed: set[Key2]


def plan_contributions(results: list[NamespaceFetch], stored: set[Key2]) -> Plan:
    """Decide, per deployment, whether its contribution is replaced, kept or removed (pure)."""
    fetched: list[DeploymentFetch] = []
    kept: set[Key2] = set()
    listed_namespaces = {r.namespace for r in results if r.listed}
    live: set[Key2] = set()
    for result in results:
        if not result.listed:
            continue
        for d in result.deployments:
            key = (result.namespace, d.deployment.deployment_id)
            if d.succeeded:
                fetched.append(d)
                live.add(key)
            elif d.error is not None:
                live.add(key)
                if key in stored:
                    kept.add(key)
    # Namespaces whose listing failed, or that are no longer configured, keep what they had.
    kept |= {key for key in stored if key[0] not in listed_namespaces}
    removed = {key for key in stored if key[0] in listed_namespaces and key not in live}
    return Plan(fetched, kept, removed)


def sync_workspace(
    engine: Engine,
    workspace: WorkspaceSettings,
    *,
    credentials: CredentialSource | Credentials | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    retention: RetentionSettings | None = None,
    redactor: Redactor | None = None,
    live_statuses: Sequence[str] = ("RUNNING",),
) -> SyncSummary:
    """Run one sync of the workspace and return its summary; never half-writes.

    Holds the workspace's lease throughout: if another process (a replica, or a `sync` started
    by hand) is syncing it, this returns at once with status `skipped`. A sync that runs past
    the workspace's `sync_deadline` stops fetching and fails, writing nothing, and so does one
    whose credentials provider cannot supply credentials (the error names the provider type).
    `credentials`: the workspace's source, kept by a long-running caller so that what the
    provider fetched is reused (default: a provider built for this one sync).
    """
    if isinstance(credentials, Credentials):
        credentials = StaticSource(credentials)
    run = _Run(
        engine,
        workspace,
        credentials or open_source(workspace),
        clock,
        _Deadline(workspace.sync_deadline.total_seconds(), stop),
        progress,
        SyncSummary(workspace.id),
        retention or RetentionSettings(),
        redactor or Redactor(),
    )
    with run_context(workspace.id), workspace_lease(engine, workspace.id) as held:
        if not held:
            run.summary.status = "skipped"
            run.summary.errors.append(
                f"workspace {workspace.id}: another process is syncing it (its lease is held)"
            )
            return run.summary
        store.set_live_statuses(engine, live_statuses)
        run_id, now = store.start_run(engine, workspace.id, clock(), ROWS_VERSION)
        run.summary.run_id = run_id
        with run_context(workspace.id, run_id), young_collections_only():
            _execute(run, run_id, now)
    return run.summary


class _Deadline:
    """Set when the caller asks to stop or when the sync has run for `seconds`."""

    def __init__(self, seconds: float, stop: threading.Event | None) -> None:
        self._ends = time.monotonic() + seconds
        self.seconds = seconds
        self._stop = stop

    def is_set(self) -> bool:
        return self.stopped or self.expired

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends


@dataclass
class _Run:
    """Everything one run of one workspace works with."""

    engine: Engine
    workspace: WorkspaceSettings
    credentials: CredentialSource
    clock: Callable[[], datetime]
    deadline: _Deadline
    progress: Progress | None
    summary: SyncSummary
    retention: RetentionSettings
    redactor: Redactor


def _execute(run: _Run, run_id: int, now: datetime) -> None:
    summary, workspace = run.summary, run.workspace
    writer: EarlyStager | None = None
    try:
        run.credentials.get()  # a provider with nothing to give fails the run before any fetch
        with run.engine.connect() as conn:
            stored = store.live_contributions(conn, workspace.id)
        started = time.monotonic()
        many = ManyChanges(len(stored))
        if store.last_rows_version(run.engine, workspace.id) != ROWS_VERSION:
            many.force()  # rows written under other rules: compare the whole state
        count = FetchCount(run.progress)
        writer = EarlyStager(run.engine, workspace.id, run_id, now, many, stored, count.outstanding)

        def changed(contribution: store.NewContribution, digested: Digested) -> None:
            many.changed()
            writer.offer(contribution, digested)

        with FlinkClient(workspace, run.credentials, redactor=run.redactor) as client:
            results = fetch_workspace(
                client,
                progress=count,
                stop=run.deadline,
                digest=digester(workspace.id, stored, on_change=changed),
            )
            summary.api_requests = client.stats.requests
            summary.api_retries = client.stats.retries
            summary.api_errors = dict(client.stats.errors_by_code)
        if run.deadline.stopped:
            raise SyncInterrupted(f"workspace {workspace.id}: stopped while fetching")
        _raise_credentials_failure(results)
        cancelled = any(isinstance(d.error, FetchCancelled) for r in results for d in r.deployments)
        if cancelled and run.deadline.expired:  # a fetch that completed in time stands
            raise SyncInterrupted(
                f"workspace {workspace.id}: the sync ran past its deadline "
                f"({run.deadline.seconds:.0f}s, sync_deadline) while fetching"
            )
        fetched = time.monotonic()
        summary.fetch_seconds = fetched - started
        _count(summary, results, run.clock())
        try:
            written = writer.finish()
            try:
                _store(run, run_id, now, results, stored, many, written)
            except _EarlyWritesUnused as exc:
                log.info(
                    "workspace %s: writing again without the early writes: %s", workspace.id, exc
                )
                _store(run, run_id, now, results, stored, many, None)
        except Exception as exc:
            if not database.is_refusal(exc):
                raise
            writer.close()  # its uncommitted rows would block the trials below
            results = _without_refused(run, run_id, now, results, stored, many, exc)
            _count(summary, results, run.clock())
            _store(run, run_id, now, results, stored, many, None)
        for failure in summary.failures:
            log.warning("failed: %s", failure.describe())
        summary.write_seconds = time.monotonic() - fetched
    except Exception as exc:
        summary.status = "failed"
        summary.errors.append(str(exc))
        log.error("workspace %s run %s failed, nothing written: %s", workspace.id, run_id, exc)
        if writer is not None:
            writer.close()  # before recording the failure: its transaction may hold locks
        store.fail_run(run.engine, run_id, run.clock(), f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, ExporterError):
            raise
    finally:
        if writer is not None:
            writer.close()


def _raise_credentials_failure(results: list[NamespaceFetch]) -> None:
    """Credentials that stopped coming mid-sync fail the whole run (nothing is written): the
    jobs they failed say nothing about their lineage, and every later request would fail too."""
    for result in results:
        errors = [result.listing_error, *(d.error for d in result.deployments)]
        for error in errors:
            if isinstance(error, CredentialsError):
                raise error


class _EarlyWritesUnused(Exception):
    """Rows were written early for a contribution the run must not use after all (its
    namespace's listing failed later); the transaction is rolled back and written again."""


def _store(
    run: _Run,
    run_id: int,
    now: datetime,
    results: list[NamespaceFetch],
    stored: dict[Key2, store.StoredContribution],
    many: ManyChanges,
    written: Staged | None,
) -> None:
    """The run's one transaction: continued from the early staging, or begun here."""
    workspace_id = run.workspace.id
    with (
        database.continued_transaction(written.connection)
        if written is not None
        else database.transaction(run.engine)
    ) as conn:
        _write(conn, workspace_id, run_id, now, results, stored, many, run.summary, written)
        if run.summary.lineage_changes != (0, 0):  # else the run has no rows in the feed
            store.record_run_counts(conn, workspace_id, run_id, now, run.summary.changes_by_kind)
        store.record_failures(conn, run_id, run.summary.failures)
        pruned = store.prune(
            conn, workspace_id, now, run.retention.payload_days, run.retention.history_days
        )
        if pruned:
            log.info("workspace %s: retention pruned %d rows", workspace_id, pruned)
        store.finish_run(conn, run_id, run.clock(), _outcome(run.summary))


def _without_refused(
    run: _Run,
    run_id: int,
    now: datetime,
    results: list[NamespaceFetch],
    stored: dict[Key2, store.StoredContribution],
    many: ManyChanges,
    refusal: Exception,
) -> list[NamespaceFetch]:
    """The results with each changed contribution whose rows the database refuses failed
    alone (RowsRefused), so that the run stores everything else.

    Validation before writing should leave the database nothing to refuse; this is the net
    under it. The culprits are found by halves, each half written in a transaction that is
    rolled back: about 2 log2(n) trial writes per culprit, of ever fewer rows. A refusal that
    no contribution explains alone (a write that fails even without any changed one, or that
    refuses every one of several alike) fails the run as before: nothing is written.
    """
    log.warning(
        "workspace %s: the database refused the run's rows (%s); finding the jobs responsible",
        run.workspace.id,
        _first_line(refusal),
    )
    changed = [
        _key(d)
        for r in results
        if r.listed
        for d in r.deployments
        if d.succeeded and d.digest.payload is not None
    ]

    def trial(included: set[Key2]) -> Exception | None:
        excluded = {key: refusal for key in changed if key not in included}
        with_only = _failed(run.workspace.id, results, excluded)
        try:
            with database.trial_transaction(run.engine) as conn:
                scratch = SyncSummary(run.workspace.id)
                _write(conn, run.workspace.id, run_id, now, with_only, stored, many, scratch)
        except Exception as exc:
            if database.is_refusal(exc):
                return exc
            raise
        return None

    unexplained = DataRefused(
        f"database refused the run's rows, and no job's rows alone: {_first_line(refusal)}"
    )
    if trial(set()) is not None:
        raise unexplained from refusal
    refused = culprits(changed, trial)
    # Every one of several refused alone says more about the write than about the data.
    if not refused or len(refused) == len(changed) > 1:
        raise unexplained from refusal
    return _failed(run.workspace.id, results, refused)


def _failed(
    workspace_id: str, results: list[NamespaceFetch], refused: dict[Key2, Exception]
) -> list[NamespaceFetch]:
    """The results with the `refused` contributions' fetches failed (RowsRefused)."""
    return [
        replace(
            result,
            deployments=[
                replace(
                    d,
                    digest=None,
                    error=RowsRefused(_context(workspace_id, d), _first_line(refused[_key(d)])),
                )
                if _key(d) in refused
                else d
                for d in result.deployments
            ],
        )
        for result in results
    ]


def _first_line(exc: BaseException) -> str:
    """What the database said, without the statement and parameters that follow it."""
    cause = exc.__cause__ or exc
    text = f"{type(cause).__name__}: {cause}".strip().splitlines()[0]
    return text[:300]


@dataclass(slots=True)
class Digested:
    """A successful fetch, digested in its fetch thread (the parsed response is not kept): a
    changed one as its rows and the payload to store, an unchanged one as what its rows may
    share with others' (its rows are made again from the stored payload if a run needs them).

    A changed one's rows are released once staged (`early`): they are made again from the
    payload if the run needs them once more."""

    job_id: str
    content_hash: str
    state: State | None  # None when unchanged, or staged
    payload: bytes | None  # to store (store.pack_payload); None when it equals the stored one
    reports: Reports | None = None  # when unchanged


class ManyChanges:
    """Whether a run changes so many contributions that it diffs the whole state, set-based
    (`staging`), rather than the keys its changes report. Told of each change from the fetch
    threads; once reached, stays reached."""

    def __init__(self, contributions: int) -> None:
        self._threshold = max(FEW_CHANGES, int(contributions * FEW_CHANGES_SHARE))
        self._changes = 0
        self._forced = False
        self._lock = threading.Lock()

    def changed(self) -> None:
        with self._lock:
            self._changes += 1

    def force(self) -> None:
        """Diff the whole state whatever changes (rows written under other rules)."""
        self._forced = True

    @property
    def reached(self) -> bool:
        return self._forced or self._changes > self._threshold


def digester(
    workspace_id: str,
    stored: dict[Key2, store.StoredContribution],
    on_change: Callable[[store.NewContribution, Digested], None] = lambda contribution, d: None,
) -> Digest:
    """The per-fetch work done while other requests are in flight: hash, and normalize what
    changed (an unchanged contribution costs its hash and the names of its tables).

    `on_change` is told of each contribution whose content differs from the stored one.
    """

    def digest(fetched: DeploymentFetch) -> Digested:
        payload = stored_payload(fetched)
        hashed = payload_hash(payload)
        before = stored.get((fetched.namespace, fetched.deployment.deployment_id))
        context = _context(workspace_id, fetched)
        body = fetched.lineage
        assert body is not None
        if before is not None and before.content_hash == hashed:  # validated when it was stored
            job = _job_identity(fetched.namespace, payload, with_attributes=False)
            tables = body.tables(context) if isinstance(body, LineageBody) else body.data
            assert tables is not None
            return Digested(payload["job_id"], hashed, None, None, reports(job, tables))
        response = body.validated(context) if isinstance(body, LineageBody) else body
        state = _normalize_payload(workspace_id, fetched.namespace, payload, response)
        check_limits(state, context)
        packed = store.pack_payload(to_json(payload, inf_nan_mode="null"))
        digested = Digested(payload["job_id"], hashed, state, packed)
        on_change(_new_contribution(fetched, digested), digested)
        return digested

    return digest


def _count(summary: SyncSummary, results: list[NamespaceFetch], at: datetime) -> None:
    """The summary's counts, status and failures from the fetch results (counted afresh)."""
    summary.namespaces_failed = sum(1 for r in results if not r.listed)
    summary.deployments = sum(len(r.deployments) for r in results)
    summary.without_job = sum(r.without_job for r in results)
    summary.jobs_total = sum(1 for r in results for d in r.deployments if d.has_job)
    summary.jobs_failed = sum(len(r.failed) for r in results)
    summary.failures = failures_of(results, at)
    summary.errors = [f.describe() for f in summary.failures]
    if results and summary.namespaces_failed == len(results):
        summary.status = "failed"
    elif summary.namespaces_failed or summary.jobs_failed:
        summary.status = "partial"
    else:
        summary.status = "succeeded"


def _outcome(summary: SyncSummary) -> store.RunOutcome:
    errors = "; ".join(summary.errors[:20])
    if len(summary.errors) > 20:
        errors += f"; ... and {len(summary.errors) - 20} more"
    return store.RunOutcome(
        status=summary.status,
        deployments_total=summary.deployments,
        jobs_total=summary.jobs_total,
        jobs_failed=summary.jobs_failed,
        rows_added=summary.rows_added,
        rows_closed=summary.rows_closed,
        error_summary=errors[:4000] or None,
    )


def _write(
    conn: Any,
    workspace_id: str,
    run_id: int,
    now: datetime,
    results: list[NamespaceFetch],
    stored: dict[Key2, store.StoredContribution],
    many: ManyChanges,
    summary: SyncSummary,
    written: Staged | None = None,
) -> None:
    _write_deployments(conn, workspace_id, run_id, now, results, summary)
    plan = plan_contributions(results, set(stored))
    if written is not None and not written.contributions <= {_key(f) for f in plan.fetched}:
        raise _EarlyWritesUnused("a namespace whose contributions were staged failed to list")
    if many.reached:
        _write_whole(conn, workspace_id, run_id, now, plan, stored, summary, written)
    else:
        _write_keyed(conn, workspace_id, run_id, now, plan, stored, summary)


def _write_deployments(
    conn: Any,
    workspace_id: str,
    run_id: int,
    now: datetime,
    results: list[NamespaceFetch],
    summary: SyncSummary,
) -> None:
    """Every listed deployment's row, with or without a job. A namespace whose listing failed,
    and a deployment whose fetch failed, keep theirs (a failed fetch changes no history)."""
    listed = [r for r in results if r.listed]
    fetches = [(_key(d), d) for r in listed for d in r.deployments]
    failed = {key for key, d in fetches if d.error is not None}
    stored = store.current_deployments(conn, workspace_id, [r.namespace for r in listed])
    opened, closed = diff_made_rows(
        {key: d for key, d in fetches if key not in failed},
        lambda d: deployment_attributes(d.deployment, d.has_job),
        (row for row in stored if row[0] not in failed),
    )
    store.apply_deployment_changes(conn, workspace_id, run_id, now, opened, closed)
    summary.deployment_changes = (len(opened), len(closed))


def _write_keyed(
    conn: Any,
    workspace_id: str,
    run_id: int,
    now: datetime,
    plan: Plan,
    stored: dict[Key2, store.StoredContribution],
    summary: SyncSummary,
) -> None:
    """A run of few changes: diff just the keys that changed and removed contributions report,
    now or before, in Python."""
    digests: list[tuple[DeploymentFetch, Digested]] = [(f, f.digest) for f in plan.fetched]
    changed = [(f, d) for f, d in digests if d.payload is not None]
    if not changed and not plan.removed:
        return  # every contribution is as stored, so the stored state is still the wanted one
    # A diff of just the changed keys also needs what changed and removed contributions
    # reported before.
    replaced = {_key(f) for f, _ in changed} & stored.keys()
    gone = plan.removed | replaced
    before = chain.from_iterable(_loaded(conn, workspace_id, stored, gone, REMADE_BATCH))
    affected = _affected(workspace_id, changed, before)
    if affected is None:  # a payload stored by an older version: compare everything
        _write_whole(conn, workspace_id, run_id, now, plan, stored, summary, None)
        return
    # A key that a changed contribution reports takes its attributes (it ranks as fetched
    # now, after every unchanged one), so only the keys that changed contributions no longer
    # report, and removed ones did, need the unchanged contributions that may report them
    # (and any that ranks after now: a clock set back).
    reported = keys_of(d.state for _, d in changed if d.state is not None)
    reach = Reports.of_keys({kind: affected[kind] - reported[kind] for kind in KINDS})
    unchanged = [
        f
        for f, d in digests
        if d.payload is None
        and (f.digest.reports.overlaps(reach) or stored[_key(f)].fetched_at >= now)
    ]
    # Each contribution keeps just its rows of the affected keys (merging them is merging all
    # and then keeping those), so a run holds what it compares, not every payload that shares
    # a table with a change.
    ranked = [
        Ranked(now, _key(f)[1], restrict(_state_of(workspace_id, f), affected)) for f, _ in changed
    ]
    remade = plan.kept | {_key(f) for f in unchanged}
    for contribution in chain.from_iterable(
        _loaded(conn, workspace_id, stored, remade, REMADE_BATCH)
    ):
        # An unchanged contribution ranks by when its content last changed, so attributes
        # that several jobs report do not flip between them from run to run.
        state = restrict(_stored_state(workspace_id, contribution), affected)
        ranked.append(Ranked(contribution.fetched_at, contribution.deployment_id, state))
    current_rows = store.load_current(conn, workspace_id, only=affected)
    changes = diff(merge(ranked), current_rows)
    store.apply_changes(conn, workspace_id, run_id, now, changes)
    store.refresh_statistics(conn, changes.rows_added)
    new = [_new_contribution(f, d) for f, d in changed]
    store.save_contributions(conn, workspace_id, run_id, now, new, stored, plan.removed)
    summary.lineage_changes = changes.rows_added, changes.rows_closed
    summary.changes_by_kind = changes.by_kind()


def _write_whole(
    conn: Any,
    workspace_id: str,
    run_id: int,
    now: datetime,
    plan: Plan,
    stored: dict[Key2, store.StoredContribution],
    summary: SyncSummary,
    written: Staged | None,
) -> None:
    """A run of many changes: stage every contribution's rows (those not staged early) and let
    the database diff the whole state, a batch of contributions in memory at a time."""
    staging = written.staging if written is not None else Staging(conn)
    staged = written.contributions if written is not None else set()
    changed = [f for f in plan.fetched if f.digest.payload is not None]
    for batch in _batches([f for f in changed if _key(f) not in staged]):
        staging.add(Ranked(now, _key(f)[1], _state_of(workspace_id, f)) for f in batch)
    # Kept and unchanged contributions rank by when their content last changed.
    unchanged = {_key(f) for f in plan.fetched if f.digest.payload is None}
    for loaded in _loaded(conn, workspace_id, stored, plan.kept | unchanged, STAGE_BATCH):
        staging.add(
            Ranked(c.fetched_at, c.deployment_id, _stored_state(workspace_id, c)) for c in loaded
        )
    by_kind = staging.apply(workspace_id, run_id, now)
    opened = sum(o for o, _ in by_kind.values())
    store.refresh_statistics(conn, opened)
    saved = written.saved if written is not None else set()
    new = [_new_contribution(f, f.digest) for f in changed if _key(f) not in saved]
    store.save_contributions(conn, workspace_id, run_id, now, new, stored, plan.removed)
    summary.lineage_changes = opened, sum(c for _, c in by_kind.values())
    summary.changes_by_kind = by_kind


T = TypeVar("T")


def _batches(items: Sequence[T], size: int = STAGE_BATCH) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _loaded(
    conn: Any,
    workspace_id: str,
    stored: dict[Key2, store.StoredContribution],
    keys: set[Key2],
    size: int,
) -> Iterator[list[store.StoredContribution]]:
    """The stored contributions of `keys` (in key order) with their payloads, `size` at a time:
    a parsed payload holds about 0.5 MB."""
    for batch in _batches(sorted(keys), size):
        loaded = store.with_payloads(conn, workspace_id, stored, set(batch))
        yield [loaded[key] for key in batch]


def _state_of(workspace_id: str, fetched: DeploymentFetch) -> State:
    """A changed contribution's rows: kept from its digest, else made again from its payload."""
    digested: Digested = fetched.digest
    if digested.state is not None:
        return digested.state
    assert digested.payload is not None
    payload = json.loads(store.unpack_payload(digested.payload))
    return _normalize_payload(workspace_id, fetched.namespace, payload)


def _new_contribution(fetched: DeploymentFetch, digested: Digested) -> store.NewContribution:
    assert digested.payload is not None
    return store.NewContribution(
        fetched.namespace,
        fetched.deployment.deployment_id,
        digested.job_id,
        digested.content_hash,
        digested.payload,
    )


def _affected(
    workspace_id: str,
    changed: list[tuple[DeploymentFetch, Digested]],
    before: Iterable[store.StoredContribution],
) -> dict[str, set[Key]] | None:
    """The keys a diff of this run's changes must compare, or None for the whole state.

    Only keys that a changed or removed contribution reports, now or `before`, can differ:
    every other key is reported by the same unchanged contributions as when it was written.
    """
    old = (_stored_state(workspace_id, contribution) for contribution in before)
    try:
        return keys_of(chain((d.state for _, d in changed if d.state is not None), old))
    except ExporterError as exc:  # a payload stored by an older version: compare everything
        log.info("workspace %s: diffing the whole state: %s", workspace_id, exc)
        return None


def _stored_state(workspace_id: str, contribution: store.StoredContribution) -> State:
    """The rows of a stored contribution (loaded with its payload), normalized again."""
    assert contribution.payload is not None
    return _normalize_payload(workspace_id, contribution.namespace, contribution.payload)


def _key(fetched: DeploymentFetch) -> Key2:
    return (fetched.namespace, fetched.deployment.deployment_id)


def _context(workspace_id: str, fetched: DeploymentFetch) -> ApiContext:
    job_id = fetched.job.job_id if fetched.job is not None else None
    deployment = fetched.deployment
    return ApiContext(
        workspace_id, fetched.namespace, deployment.deployment_id, job_id, deployment.name or None
    )


def stored_payload(fetched: DeploymentFetch) -> dict[str, Any]:
    """What is kept of a successful fetch: enough to audit it and to rebuild its rows."""
    assert isinstance(fetched.job, Job) and fetched.lineage is not None
    return {
        "deployment_id": fetched.deployment.deployment_id,
        "deployment_name": fetched.deployment.name or fetched.job.deployment_name,
        "job_id": fetched.job.job_id,
        "job": fetched.job.record(),
        "deployment": fetched.deployment.record(),
        "lineage": fetched.lineage.raw,
    }


def payload_hash(payload: dict[str, Any]) -> str:
    """The hash of what a payload contributes (not of per-request noise such as requestId)."""
    lineage = payload["lineage"]
    data = lineage.get("data") if isinstance(lineage, dict) else None
    records = [payload.get("job"), payload.get("deployment")]
    return content_hash([payload["deployment_name"], payload["job_id"], data, records])


def _normalize_payload(
    workspace_id: str,
    namespace: str,
    payload: dict[str, Any],
    response: LineageResponse | None = None,
) -> State:
    """Rows of a stored payload (its lineage parsed again unless the parsed response is given)."""
    context = ApiContext(workspace_id, namespace, payload["deployment_id"], payload["job_id"])
    if response is None:
        response = parse_body(LineageResponse, payload["lineage"], context, "GetLineageInfo")
    if response.data is None:
        raise PayloadError(context, "GetLineageInfo", "data", "missing from a successful response")
    return normalize(_job_identity(namespace, payload), response.data)


def _job_identity(
    namespace: str, payload: dict[str, Any], with_attributes: bool = True
) -> JobIdentity:
    attributes = (
        job_attributes(payload.get("job") or {}, payload.get("deployment") or {})
        if with_attributes
        else {}
    )
    return JobIdentity(
        namespace,
        payload["deployment_id"],
        payload["deployment_name"],
        payload["job_id"],
        attributes,
    )
