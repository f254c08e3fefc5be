"""Shared fixtures: a running simulator, workspace settings pointing at it, database URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from exporter.client import FlinkClient, RetryPolicy
from exporter.config import Credentials, WorkspaceSettings
from exporter.simulator import Faults, Simulator, World, WorldSize

WORKSPACE_ID = "ws-test"
REQUIRE_PG_ENV = "LINEAGE_EXPORTER_REQUIRE_PG"
PG_URL_ENV = "LINEAGE_EXPORTER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def world() -> World:
    return World(WORKSPACE_ID, seed=11, size=WorldSize(namespaces=2, deployments_per_namespace=5))


@pytest.fixture
def simulator(world: World) -> Iterator[Simulator]:
    with Simulator(world, faults=Faults()) as sim:
        yield sim


@pytest.fixture
def sim_credentials(simulator: Simulator) -> Credentials:
    return Credentials(simulator.access_key_id, SecretStr(simulator.access_key_secret))


@pytest.fixture
def sim_env(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The simulator's credentials in the default environment variables."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", simulator.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", simulator.access_key_secret)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("LINEAGE_EXPORTER_DATABASE_URL", raising=False)
    return simulator


def workspace_settings(simulator: Simulator, **overrides: object) -> WorkspaceSettings:
    values: dict[str, object] = {
        "id": simulator.world.workspace_id,
        "endpoint": simulator.url,
        "namespaces": sorted(simulator.world.namespaces),
        "read_timeout": "5s",
        "retry_budget": "10s",
    }
    values.update(overrides)
    return WorkspaceSettings.model_validate(values)


@pytest.fixture
def make_client(simulator: Simulator, sim_credentials: Credentials) -> Iterator[object]:
    """A factory of clients for the simulator whose retries do not really sleep."""
    clients: list[FlinkClient] = []

    def factory(credentials: Credentials | None = None, **overrides: object) -> FlinkClient:
        client = FlinkClient(
            workspace_settings(simulator, **overrides),
            credentials or sim_credentials,
            retry=RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01),
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def write_config(path: Path, simulator: Simulator, database_url: str, **extra: str) -> Path:
    """A config file for the simulator's workspace, as a user would write it."""
    namespaces = ", ".join(f'"{n}"' for n in sorted(simulator.world.namespaces))
    lines = [
        "[database]",
        f'url = "{database_url}"',
        "",
        "[schedule]",
        f'interval = "{extra.pop("interval", "15m")}"',
        f'jitter = "{extra.pop("jitter", "0s")}"',
        "",
        "[[workspaces]]",
        f'id = "{simulator.world.workspace_id}"',
        f'endpoint = "{simulator.url}"',
        f"namespaces = [{namespaces}]",
        'read_timeout = "5s"',
        'retry_budget = "5s"',
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- PostgreSQL: required in CI -------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get(REQUIRE_PG_ENV) and "postgres" in report.keywords:
        # CI must run the PostgreSQL tests: a skip there is a failure.
        report.outcome = "failed"
        report.longrepr = f"PostgreSQL test skipped while {REQUIRE_PG_ENV} is set: {report.longrepr}"
