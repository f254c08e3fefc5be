"""docker-compose.yml runs the whole stack: checked as a document (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exporter.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, object]) -> dict[str, dict[str, object]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def test_the_three_services(compose: dict[str, object]) -> None:
    assert set(services(compose)) == {"postgres", "simulator", "exporter"}


def test_postgres_keeps_its_data_in_a_volume_and_has_a_healthcheck(
    compose: dict[str, object],
) -> None:
    postgres = services(compose)["postgres"]
    volumes = postgres["volumes"]
    assert isinstance(volumes, list)
    named = [v.split(":")[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named and named[0] in compose["volumes"]  # type: ignore[operator]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])  # type: ignore[index]


def test_exporter_migrates_then_runs_with_health_on_the_checked_port(
    compose: dict[str, object],
) -> None:
    exporter = services(compose)["exporter"]
    command = " ".join(exporter["entrypoint"])  # type: ignore[arg-type]
    assert re.search(r"db upgrade && exec lineage-exporter .*run", command)
    port = re.search(r"--health-port (\d+)", command)
    assert port is not None
    check = " ".join(exporter["healthcheck"]["test"])  # type: ignore[index]
    assert f"127.0.0.1:{port.group(1)}/healthz" in check
    assert exporter["depends_on"]["postgres"]["condition"] == "service_healthy"  # type: ignore[index]


def test_exporter_environment_and_config(
    compose: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = services(compose)["exporter"]["environment"]
    assert isinstance(env, dict)
    for name in (
        "LINEAGE_EXPORTER_CONFIG",
        "LINEAGE_EXPORTER_DATABASE_URL",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ):
        assert env.get(name), name
    assert env["LINEAGE_EXPORTER_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["LINEAGE_EXPORTER_DATABASE_URL"]
    # The config the container reads is the repository's, and it is valid.
    config = ROOT / env["LINEAGE_EXPORTER_CONFIG"].removeprefix("/app/")
    monkeypatch.setenv("LINEAGE_EXPORTER_DATABASE_URL", "postgresql+psycopg://x@postgres/lineage")
    settings = load_settings(config)
    simulator = services(compose)["simulator"]
    sim_port = re.search(r'"--port", "(\d+)"|--port\W+(\d+)', str(simulator["command"]))
    assert sim_port is not None
    assert (
        settings.workspaces[0].base_url
        == f"http://simulator:{sim_port.group(2) or sim_port.group(1)}"
    )
