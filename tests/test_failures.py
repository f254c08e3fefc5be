"""failures: which listing, deployment or job failed, at which stage (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from exporter.api.wire import Deployment, Job
from exporter.errors import ApiContext, ApiError, FetchCancelled, PayloadError, RowsRefused
from exporter.extract import DeploymentFetch, NamespaceFetch
from exporter.failures import STAGES, culprits, failures_of, stage_of

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 12, 1, 11, 59, tzinfo=UTC)


def deployment(id_: str, name: str = "") -> Deployment:
    return Deployment.model_validate({"deploymentId": id_, "name": name})


def context(dep: str, job: str | None = None) -> ApiContext:
    return ApiContext("ws", "ns", dep, job, f"name of {dep}")


def test_each_kind_of_failure_has_its_stage() -> None:
    assert stage_of(ApiError(context("d"), "ListJobs", status=500)) == "list_jobs"
    assert stage_of(ApiError(context("d", "j"), "GetLineageInfo", status=500)) == "lineage"
    assert stage_of(PayloadError(context("d", "j"), "GetLineageInfo", "data", "bad")) == "payload"
    assert stage_of(PayloadError(context("d"), "ListJobs", "jobId", "too long")) == "payload"
    assert stage_of(RowsRefused(context("d", "j"), "DataError: no")) == "payload"


def test_failures_of_a_run_name_namespace_deployment_and_job() -> None:
    job = Job.model_validate({"jobId": "job-2"})
    results = [
        NamespaceFetch("ns-down", listing_error=ApiError(ApiContext("ws", "ns-down"), "X")),
        NamespaceFetch(
            "ns",
            deployments=[
                DeploymentFetch("ns", deployment("ok"), job, fetched_at=EARLIER, digest=object()),
                DeploymentFetch(
                    "ns",
                    deployment("d1", "orders-job"),
                    error=ApiError(context("d1"), "ListJobs", status=503),
                    fetched_at=EARLIER,
                ),
                DeploymentFetch(
                    "ns",
                    deployment("d2"),
                    error=PayloadError(context("d2", "job-1"), "GetLineageInfo", "data", "x"),
                    fetched_at=EARLIER,
                ),
                DeploymentFetch(
                    "ns",
                    deployment("d3", "refused-job"),
                    job,
                    error=RowsRefused(context("d3", "job-2"), "DataError"),
                    fetched_at=EARLIER,
                ),
                DeploymentFetch("ns", deployment("d4"), error=FetchCancelled("stop")),
            ],
        ),
    ]
    failures = failures_of(results, AT)
    rows = [(f.namespace, f.deployment_id, f.deployment_name, f.job_id, f.stage) for f in failures]
    assert rows == [
        ("ns-down", None, None, None, "list_deployments"),
        ("ns", "d1", "orders-job", None, "list_jobs"),
        ("ns", "d2", None, "job-1", "payload"),  # the job named by its error's context
        ("ns", "d3", "refused-job", "job-2", "payload"),
    ]
    assert {f.stage for f in failures} <= set(STAGES)
    assert failures[0].failed_at == AT and failures[1].failed_at == EARLIER
    assert failures[2].describe().startswith("payload: GetLineageInfo returned")
    assert failures[3].name() == "ns/d3 (refused-job) job job-2 [payload]"
    assert failures[0].name() == "ns-down [list_deployments]"


def test_a_long_identifier_is_cut_in_names_and_messages() -> None:
    long_id = "d" * 500
    failure = failures_of(
        [
            NamespaceFetch(
                "ns",
                deployments=[
                    DeploymentFetch(
                        "ns",
                        deployment(long_id),
                        error=PayloadError(context(long_id), "ListDeployments", "id", "long"),
                    )
                ],
            )
        ],
        AT,
    )[0]
    assert failure.deployment_id == long_id  # recorded whole
    assert len(failure.name()) < 120
    assert "(500 characters)" in failure.error and long_id not in failure.error


@pytest.mark.parametrize(
    ("count", "bad"),
    [(1, {0}), (2, {1}), (1000, {417}), (1000, {0, 999}), (37, {3, 4, 5}), (8, set(range(8)))],
)
def test_culprits_are_found_by_halves(count: int, bad: set[int]) -> None:
    trials: list[set[int]] = []

    def trial(items: set[int]) -> Exception | None:
        trials.append(items)
        hit = items & bad
        return ValueError(f"refused {min(hit)}") if hit else None

    found = culprits(list(range(count)), trial)
    assert set(found) == bad
    assert all(str(found[i]) == f"refused {i}" for i in bad)
    if len(bad) == 1 and count > 1:
        assert len(trials) <= 2 * math.ceil(math.log2(count))  # not one trial per item
        assert sum(map(len, trials)) <= 2 * count


def test_a_refusal_only_a_combination_causes_finds_no_culprit() -> None:
    def trial(items: set[int]) -> Exception | None:
        return ValueError("together") if {1, 6} <= items else None

    assert culprits(list(range(8)), trial) == {}
