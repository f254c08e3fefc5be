"""The client against the simulator over loopback HTTP: paging, newest job, retries, errors."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from pydantic import SecretStr

from exporter.api.client import RetryPolicy, newest
from exporter.api.credentials import Credentials
from exporter.api.wire import Job
from exporter.errors import ApiError, AuthError, PayloadError
from exporter.simulator import Simulator
from exporter.simulator.world import SimDeployment, SimJob, World, WorldSize

NS = "default-namespace"


def first_deployment_with_job(world: World, namespace: str = NS) -> SimDeployment:
    return next(d for d in world.namespaces[namespace].deployments.values() if d.jobs)


def test_list_deployments_pages_to_the_end(make_client: Any, simulator: Simulator) -> None:
    ns = simulator.world.namespaces[NS]
    while len(ns.deployments) < 230:  # three pages of 100
        deployment = simulator.world._generate_deployment(ns)
        ns.deployments[deployment.id] = deployment
    client = make_client()
    deployments = client.list_deployments(NS)
    assert sorted(d.deployment_id for d in deployments) == sorted(ns.deployments)
    assert simulator.stats.by_action["ListDeployments"] == 3


def test_newest_job_is_the_largest_created_at(make_client: Any, simulator: Simulator) -> None:
    deployment = first_deployment_with_job(simulator.world)
    deployment.jobs.insert(0, SimJob("job-newest", 9_999_999_999_999))
    deployment.jobs.append(SimJob("job-old", 1_000))
    job = make_client().newest_job(NS, deployment.id)
    assert job is not None and job.job_id == "job-newest"


def test_deployment_without_jobs_has_no_newest_job(make_client: Any, simulator: Simulator) -> None:
    deployment = first_deployment_with_job(simulator.world)
    deployment.jobs.clear()
    assert make_client().newest_job(NS, deployment.id) is None


def test_newest_tie_break_and_missing_times() -> None:
    jobs = [Job(jobId="a"), Job(jobId="b", createdAt=5), Job(jobId="c", createdAt=5)]
    picked = newest(jobs)
    assert picked is not None and picked.job_id == "c"
    assert newest([]) is None


def test_lineage_request_carries_the_documented_parameters(
    make_client: Any, simulator: Simulator
) -> None:
    deployment = first_deployment_with_job(simulator.world)
    job = deployment.current_job
    assert job is not None
    response = make_client(depth=2, column_level=False).get_lineage(NS, deployment.id, job.id)
    assert response.data is not None and response.data.nodes
    assert response.data.edges.column_lineage == []  # isColumnLevel false was sent


def test_throttling_then_success_retries_with_new_nonces(
    make_client: Any, simulator: Simulator
) -> None:
    simulator.faults.throttle_next = 3
    client = make_client()
    assert client.list_deployments(NS)
    assert client.stats.retries == 3
    assert client.stats.errors_by_code["Throttling.User"] == 3
    assert len(simulator.stats.nonces) == 4
    assert len(set(simulator.stats.nonces)) == 4
    assert not simulator.stats.rejected  # no retry reused a nonce


def test_server_errors_then_success(make_client: Any, simulator: Simulator) -> None:
    simulator.faults.server_error_next = 2
    client = make_client()
    assert client.list_deployments(NS)
    assert client.stats.retries == 2


def test_transient_failure_gives_up_after_max_attempts(
    make_client: Any, simulator: Simulator
) -> None:
    simulator.faults.throttle_next = 100
    client = make_client()
    with pytest.raises(ApiError) as caught:
        client.list_deployments(NS)
    error = caught.value
    assert error.retryable and error.attempts == 5
    assert error.status == 429 and error.code == "Throttling.User"
    assert error.request_id and "after 5 attempts" in str(error)
    assert simulator.stats.by_action["ListDeployments"] == 5


def test_retries_stop_within_the_time_budget(simulator: Simulator, sim_credentials: Any) -> None:
    from conftest import workspace_settings

    from exporter.api.client import FlinkClient

    simulator.faults.throttle_next = 100
    slept: list[float] = []
    settings = workspace_settings(simulator, retry_budget="1s")
    with (
        FlinkClient(
            settings,
            sim_credentials,
            retry=RetryPolicy(max_attempts=1000, base_delay=0.4, max_delay=0.4),
            # The clock is the one thing we fake: sleeping advances it.
            sleep=slept.append,
            monotonic=lambda: sum(slept),
        ) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.list_deployments(NS)
    assert caught.value.retryable
    assert sum(slept) <= 1.0
    assert len(slept) < 1000


def test_auth_error_is_not_retried(make_client: Any, simulator: Simulator) -> None:
    wrong = Credentials(simulator.access_key_id, SecretStr("not-the-secret"))
    client = make_client(credentials=wrong)
    with pytest.raises(AuthError) as caught:
        client.list_deployments(NS)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.context.workspace == simulator.world.workspace_id
    assert caught.value.context.namespace == NS
    assert simulator.stats.by_action["ListDeployments"] == 1
    assert "not-the-secret" not in str(caught.value)


def test_unknown_access_key(make_client: Any, simulator: Simulator) -> None:
    client = make_client(credentials=Credentials("nobody", SecretStr("x")))
    with pytest.raises(AuthError, match=r"InvalidAccessKeyId\.NotFound"):
        client.list_deployments(NS)


def test_parameter_error_is_not_retried_and_carries_context(
    make_client: Any, simulator: Simulator
) -> None:
    client = make_client()
    with pytest.raises(ApiError) as caught:
        client.list_jobs(NS, "no-such-deployment")
    error = caught.value
    assert not error.retryable and error.attempts == 1
    assert (error.status, error.code) == (404, "DeploymentNotFound")
    assert error.context.deployment == "no-such-deployment"
    assert "no-such-deployment" in str(error)


def test_lineage_server_error_names_the_job(make_client: Any, simulator: Simulator) -> None:
    deployment = first_deployment_with_job(simulator.world)
    job = deployment.current_job
    assert job is not None
    simulator.faults.job_faults[job.id] = "error"
    with pytest.raises(ApiError) as caught:
        make_client().get_lineage(NS, deployment.id, job.id)
    assert caught.value.context.job == job.id
    assert caught.value.attempts == 5  # 5xx is transient


@pytest.mark.parametrize("fault", ["malformed", "bad-shape"])
def test_malformed_lineage_is_a_payload_error(
    make_client: Any, simulator: Simulator, fault: str
) -> None:
    deployment = first_deployment_with_job(simulator.world)
    job = deployment.current_job
    assert job is not None
    simulator.faults.job_faults[job.id] = fault
    with pytest.raises(PayloadError) as caught:
        make_client().get_lineage(NS, deployment.id, job.id)
    assert caught.value.context.job == job.id


def test_timeouts_are_retried_then_reported(make_client: Any, simulator: Simulator) -> None:
    simulator.faults.slow_rate = 1.0
    simulator.faults.slow_seconds = 0.5
    client = make_client(read_timeout="100ms")
    with pytest.raises(ApiError) as caught:
        client.list_deployments(NS)
    assert caught.value.code == "Timeout" and caught.value.status is None
    assert caught.value.attempts == 5


def test_connection_refused_is_retried() -> None:
    from conftest import workspace_settings

    from exporter.api.client import FlinkClient

    world = World("ws-x", size=WorldSize(namespaces=1, deployments_per_namespace=1))
    sim = Simulator(world)
    settings = workspace_settings(sim)
    sim.stop()  # nothing listens on that port any more
    with (
        FlinkClient(
            settings,
            Credentials("a", SecretStr("b")),
            retry=RetryPolicy(max_attempts=3, base_delay=0.001),
        ) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.list_deployments(NS)
    assert caught.value.code == "ConnectionError" and caught.value.attempts == 3


def test_in_flight_requests_never_exceed_concurrency(
    simulator: Simulator, make_client: Any
) -> None:
    from exporter.extract import fetch_workspace

    simulator.faults.latency = 0.02
    client = make_client(concurrency=3)
    fetch_workspace(client)
    assert simulator.stats.max_in_flight <= 3
    assert client.stats.max_in_flight <= 3
    assert client.stats.max_in_flight == 3  # and the limit is actually used


class FakeClock:
    """A monotonic clock that only sleeping advances; records each sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_request_starts_evenly() -> None:
    from exporter.api.client import RateLimiter

    clock = FakeClock()
    limiter = RateLimiter(4, sleep=clock.sleep, monotonic=clock.monotonic)
    starts = []
    for _ in range(9):
        limiter.wait()
        starts.append(clock.now)
    assert starts[0] == 100.0  # the first request does not wait
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([0.25] * 8)
    # At most 4 starts in any one-second window.
    assert all(sum(1 for t in starts if s <= t < s + 1) <= 4 for s in starts)


def test_rate_limiter_lets_time_already_passed_count() -> None:
    from exporter.api.client import RateLimiter

    clock = FakeClock()
    limiter = RateLimiter(2, sleep=clock.sleep, monotonic=clock.monotonic)
    limiter.wait()
    clock.now += 5  # the caller was busy: the next start is due already
    limiter.wait()
    assert clock.slept == []


def test_no_rate_cap_never_sleeps() -> None:
    from exporter.api.client import RateLimiter

    clock = FakeClock()
    limiter = RateLimiter(None, sleep=clock.sleep, monotonic=clock.monotonic)
    for _ in range(100):
        limiter.wait()
    assert clock.slept == []


def test_requests_per_second_caps_every_request_the_client_sends(
    simulator: Simulator, sim_credentials: Any
) -> None:
    from conftest import workspace_settings

    from exporter.api.client import FlinkClient
    from exporter.extract import fetch_workspace

    clock = FakeClock()
    settings = workspace_settings(simulator, concurrency=1, requests_per_second=20)
    with FlinkClient(
        settings, sim_credentials, sleep=clock.sleep, monotonic=clock.monotonic
    ) as client:
        fetch_workspace(client)
    sent = simulator.stats.total
    assert sent == client.stats.requests > 10
    # Only the limiter sleeps here, and only it advances the clock: every start after the
    # first waited its 50 ms turn.
    assert clock.now - 100.0 == pytest.approx((sent - 1) / 20)
