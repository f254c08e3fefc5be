"""What failed in a run, one record per namespace listing, deployment or job (pure).

The same records make the sync's summary, the run's `error_summary`, the log and the
`lineage_job_failures` view, so each names the failure the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from exporter.errors import (
    ApiError,
    ExporterError,
    FetchCancelled,
    PayloadError,
    RowsRefused,
    shorten,
)

if TYPE_CHECKING:  # the store records failures without depending on the client
    from exporter.extract import NamespaceFetch

K = TypeVar("K", bound=Hashable)
NAME_LIMIT = 60  # characters of an identifier in a summary line's list of failures

# Where a failure happened: a namespace's listing (whatever went wrong with it), a deployment's
# ListJobs call, a job's GetLineageInfo call, or a body that arrived but that the exporter or
# the database could not take (its shape, a name too long to store, rows the database refused).
STAGES = ("list_deployments", "list_jobs", "lineage", "payload")


@dataclass(frozen=True)
class JobFailure:
    """One namespace listing, deployment or job that failed in a run, and why."""

    namespace: str
    deployment_id: str | None
    deployment_name: str | None
    job_id: str | None
    stage: str
    error: str
    failed_at: datetime

    def name(self) -> str:
        """Which one failed, briefly: `namespace/deployment (name) job J [stage]`."""
        what = self.namespace
        if self.deployment_id:
            what += f"/{shorten(self.deployment_id, NAME_LIMIT)}"
            if self.deployment_name:
                what += f" ({shorten(self.deployment_name, NAME_LIMIT)})"
        if self.job_id:
            what += f" job {shorten(self.job_id, NAME_LIMIT)}"
        return f"{what} [{self.stage}]"

    def describe(self) -> str:
        """`stage: error`; the error names the workspace, namespace, deployment and job."""
        return f"{self.stage}: {self.error}"


def stage_of(error: ExporterError) -> str:
    """The stage a deployment's or job's failure belongs to (see STAGES)."""
    if isinstance(error, PayloadError | RowsRefused):
        return "payload"
    if isinstance(error, ApiError) and error.action == "ListJobs":
        return "list_jobs"
    return "lineage"


def failures_of(results: Iterable[NamespaceFetch], at: datetime) -> list[JobFailure]:
    """Every failure in a run's fetch results; a listing failure is dated `at` (the run's end
    of fetching), a deployment's when its fetch ended. Cancelled fetches are not failures of
    their own (the run itself fails)."""
    failures: list[JobFailure] = []
    for result in results:
        if result.listing_error is not None:
            error = str(result.listing_error)
            failures.append(
                JobFailure(result.namespace, None, None, None, "list_deployments", error, at)
            )
            continue
        for fetch in result.failed:
            assert fetch.error is not None
            if isinstance(fetch.error, FetchCancelled):
                continue
            failures.append(
                JobFailure(
                    result.namespace,
                    fetch.deployment.deployment_id,
                    fetch.deployment.name or None,
                    fetch.job.job_id if fetch.job is not None else _job_of(fetch.error),
                    stage_of(fetch.error),
                    str(fetch.error),
                    fetch.fetched_at,
                )
            )
    return failures


def _job_of(error: ExporterError) -> str | None:
    context = getattr(error, "context", None)
    return getattr(context, "job", None)


def culprits(
    together: Sequence[K], trial: Callable[[set[K]], Exception | None]
) -> dict[K, Exception]:
    """The items of `together` (refused as a whole) that `trial` refuses alone, each with its
    refusal, found by halves: `trial(items)` returns the refusal of a write of just those
    items, or None. A culprit costs about 2 log2(n) trials, of ever fewer items; refusals
    that only a combination of items causes are not found (the caller decides what then)."""
    found: dict[K, Exception] = {}
    half = len(together) // 2
    for part in (together[:half], together[half:]):
        if not part:
            continue
        refusal = trial(set(part))
        if refusal is None:
            continue
        if len(part) == 1:
            found[part[0]] = refusal
        else:
            found.update(culprits(part, trial))
    return found
