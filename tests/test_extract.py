"""A full fetch of a simulated workspace over loopback HTTP."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from exporter.api.wire import JobRef, ListedDeployment
from exporter.extract import DeploymentFetch, FetchCount, fetch_workspace
from exporter.simulator import Simulator, World, WorldSize


class ProgressRecorder:
    def __init__(self) -> None:
        self.total = 0
        self.done: list[DeploymentFetch] = []

    def listed(self, count: int) -> None:
        self.total += count

    def fetched(self, fetch: DeploymentFetch) -> None:
        self.done.append(fetch)


def test_full_fetch_of_a_simulated_workspace(make_client: Any, simulator: Simulator) -> None:
    seen = ProgressRecorder()
    results = fetch_workspace(make_client(), progress=seen)
    world = simulator.world
    assert [r.namespace for r in results] == sorted(world.namespaces)
    for result in results:
        ns = world.namespaces[result.namespace]
        assert result.listed and not result.failed
        assert sorted(d.deployment.deployment_id for d in result.deployments) == sorted(
            ns.deployments
        )
        for fetched in result.deployments:
            expected = ns.deployments[fetched.deployment.deployment_id].current_job
            if expected is None:
                assert fetched.job is None and not fetched.has_job
                continue
            assert fetched.job is not None and fetched.job.job_id == expected.id
            assert fetched.lineage is not None and fetched.lineage.data is not None
            assert fetched.lineage.data.nodes
    assert len(seen.done) == seen.total == sum(len(r.deployments) for r in results)


def test_deployments_keep_the_order_they_were_listed_in(make_client: Any) -> None:
    client = make_client()
    results = fetch_workspace(client)
    for result in results:
        listed = [d.deployment_id for d in client.list_deployments(result.namespace)]
        assert [d.deployment.deployment_id for d in result.deployments] == listed


def test_a_bug_in_a_fetch_thread_is_raised_not_lost(make_client: Any) -> None:
    class Broken(ProgressRecorder):
        def fetched(self, fetch: DeploymentFetch) -> None:
            raise RuntimeError(f"progress broke on {fetch.deployment.deployment_id}")

    with pytest.raises(RuntimeError, match="progress broke on"):
        fetch_workspace(make_client(), progress=Broken())


class TestWithADigest:
    @pytest.fixture
    def world(self) -> World:  # deployments with and without a job
        size = WorldSize(namespaces=1, deployments_per_namespace=12, no_job_fraction=0.4)
        return World("ws-digest", seed=5, size=size)

    def test_a_fetch_keeps_only_what_a_run_needs(
        self, make_client: Any, simulator: Simulator
    ) -> None:
        def digest(fetched: DeploymentFetch) -> tuple[str, int]:
            assert fetched.job is not None and fetched.lineage is not None
            assert fetched.job.status is not None  # the whole job, while it is digested
            return fetched.job.job_id, len(fetched.lineage.raw["data"]["nodes"])

        results = fetch_workspace(make_client(), digest=digest)
        kept = [d for r in results for d in r.deployments]
        without_job = [d for d in kept if not d.has_job]
        assert without_job and len(without_job) < len(kept)
        for fetched in kept:
            # Neither the configuration the API sends (artifact, flinkConf) nor the lineage.
            assert isinstance(fetched.deployment, ListedDeployment) and fetched.lineage is None
            assert b"artifact" not in fetched.deployment.packed_record
            if fetched.job is None:
                assert fetched.digest is None and not fetched.succeeded
                continue
            assert fetched.succeeded and fetched.digest[0] == fetched.job.job_id
            assert fetched.digest[1] > 0
            assert fetched.job == JobRef(fetched.digest[0])


def test_a_failing_job_and_a_failing_namespace_are_captured(
    make_client: Any, simulator: Simulator
) -> None:
    world = simulator.world
    namespaces = sorted(world.namespaces)
    simulator.faults.failing_namespaces.add(namespaces[1])
    victim = next(d for d in world.namespaces[namespaces[0]].deployments.values() if d.jobs)
    assert victim.current_job is not None
    simulator.faults.job_faults[victim.current_job.id] = "bad-shape"
    first, second = fetch_workspace(make_client())
    assert [f.deployment.deployment_id for f in first.failed] == [victim.id]
    assert "tables" in str(first.failed[0].error)
    assert not second.listed and second.deployments == []
    assert "ListDeployments" in str(second.listing_error)


def test_fetch_count_tells_what_is_outstanding_and_passes_progress_on(
    make_client: Any, simulator: Simulator
) -> None:
    inner = ProgressRecorder()
    count = FetchCount(inner)
    with make_client() as client:
        results = fetch_workspace(client, progress=count)
    deployments = sum(len(r.deployments) for r in results)
    assert count.outstanding() == 0
    assert inner.total == deployments == len(inner.done) > 0
    count.listed(3)
    assert count.outstanding() == 3


class InvariantRecorder(ProgressRecorder):
    """Fails a fetch reported before the page that holds it was counted as listed."""

    def __init__(self) -> None:
        super().__init__()
        self.ahead: list[tuple[int, int]] = []

    def fetched(self, fetch: DeploymentFetch) -> None:
        super().fetched(fetch)
        if len(self.done) > self.total:
            self.ahead.append((len(self.done), self.total))


def test_a_page_is_counted_as_listed_before_any_of_its_fetches_ends(
    make_client: Any, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never `1/0 deployments fetched`: a page is counted before its fetches start. Fetches
    that end at once and a thread switch every microsecond make the old order show."""
    from exporter import extract

    monkeypatch.setattr(
        extract, "fetch_deployment", lambda client, ns, deployment: DeploymentFetch(ns, deployment)
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with make_client(concurrency=8) as client:
            for _ in range(30):
                seen = InvariantRecorder()
                fetch_workspace(client, progress=seen)
                assert seen.ahead == []
                assert len(seen.done) == seen.total > 0
    finally:
        sys.setswitchinterval(interval)


def test_a_slot_is_used_while_a_response_is_digested(make_client: Any) -> None:
    """With one request slot, other deployments' requests are made while a response is
    digested (a slow digest stands for parsing and normalizing): the slot does not wait."""
    client = make_client(concurrency=1)
    made_meanwhile: list[int] = []

    def digest(fetched: DeploymentFetch) -> None:
        before = client.stats.requests
        time.sleep(0.05)
        made_meanwhile.append(client.stats.requests - before)

    results = fetch_workspace(client, digest=digest)
    assert all(d.error is None for r in results for d in r.deployments)
    assert len(made_meanwhile) > 2 and max(made_meanwhile) >= 1
    assert client.stats.max_in_flight == 1  # never more than the slots
