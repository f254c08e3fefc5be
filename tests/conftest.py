"""Shared fixtures: a running simulator, workspace settings pointing at it, database URLs."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

# Before anything imports alibabacloud_credentials (it reads its environment once, at import):
# no provider may try the ECS metadata address, and no socket may leave the machine, in this
# process or in any Python process a test starts (tests/guard/sitecustomize.py).
GUARD_DIR = Path(__file__).parent / "guard"
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["LINEAGE_EXPORTER_LOOPBACK_ONLY"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(GUARD_DIR))
import loopback_guard  # noqa: E402

loopback_guard.install()

import pytest  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from exporter.api.client import FlinkClient, RetryPolicy  # noqa: E402
from exporter.api.credentials import Credentials  # noqa: E402
from exporter.config import WorkspaceSettings  # noqa: E402
from exporter.simulator import Faults, Simulator, World, WorldSize  # noqa: E402
from exporter.simulator.world import SimDeployment  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy import Engine

WORKSPACE_ID = "ws-test"
REQUIRE_PG_ENV = "LINEAGE_EXPORTER_REQUIRE_PG"
PG_URL_ENV = "LINEAGE_EXPORTER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Every test: no connection or name lookup beyond 127.0.0.1 was even attempted."""
    loopback_guard.violations.clear()
    yield
    assert not loopback_guard.violations, f"left the machine: {loopback_guard.violations}"


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
        f'read_timeout = "{extra.pop("read_timeout", "5s")}"',
        'retry_budget = "5s"',
        f"max_attempts = {extra.pop('max_attempts', '2')}",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- PostgreSQL: required in CI -------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        param = (
            callspec.params.get("db_url") or callspec.params.get("empty_db_url")
            if callspec
            else None
        )
        if {"pg_url", "empty_pg_url", "pg_template"} & set(names) or param == "postgresql":
            item.add_marker(pytest.mark.postgres)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PostgreSQL required (CI), a skipped PostgreSQL test fails the session."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not os.environ.get(REQUIRE_PG_ENV):
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if "postgres" in r.keywords]
    if skipped:
        reporter.write_line(
            f"ERROR: {len(skipped)} PostgreSQL test(s) skipped while {REQUIRE_PG_ENV} is set",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- databases ------------------------------------------------------------------------------------


def _pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def _pg_database_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def _pg_execute(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_available() -> bool:
    from sqlalchemy.exc import OperationalError

    try:
        _pg_execute("SELECT 1")
    except OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_template(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL database migrated to head, cloned by each test that needs one."""
    if not pg_available:
        reason = f"PostgreSQL not reachable at {_pg_admin_url()}"
        if os.environ.get(REQUIRE_PG_ENV):
            pytest.fail(f"{reason} and {REQUIRE_PG_ENV} is set", pytrace=False)
        pytest.skip(reason)
    from exporter import migrate

    name = f"lineage_tpl_{os.getpid()}"
    _pg_execute(f"DROP DATABASE IF EXISTS {name}")
    _pg_execute(f"CREATE DATABASE {name}")
    migrate.upgrade(_pg_database_url(name))
    yield name
    _pg_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fresh_pg_database(template: str | None) -> Iterator[str]:
    import uuid

    name = f"lineage_test_{uuid.uuid4().hex[:12]}"
    _pg_execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield _pg_database_url(name)
    finally:
        _pg_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    yield from _fresh_pg_database(pg_template)


@pytest.fixture
def empty_pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema at all."""
    yield from _fresh_pg_database(None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for one test."""
    from exporter import migrate

    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both databases, migrated to head."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no schema) on each backend, for migration tests."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("empty_pg_url"))
    return f"sqlite:///{tmp_path / 'empty.db'}"


# -- an exporter wired to the simulator and a database, driven through the CLI ------------------


class Harness:
    """The simulator, a config file and a database: `sync()` runs the real CLI command."""

    def __init__(self, simulator: Simulator, database_url: str, config: Path) -> None:
        from exporter.database import make_engine

        self.sim = simulator
        self.world = simulator.world
        self.url = database_url
        self.config = config
        self.engine = make_engine(database_url)

    def sync(self) -> int:
        from exporter.cli import main

        return main(["--config", str(self.config), "sync"])

    def rows(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: object) -> object:
        return self.rows(sql, **params)[0][0]

    def last_run(self) -> dict[str, object]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = (
                conn.execute(text("SELECT * FROM lineage_sync_runs ORDER BY run_id DESC LIMIT 1"))
                .mappings()
                .one()
            )
        return dict(row)


@pytest.fixture
def harness(
    sim_env: Simulator, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    config = write_config(tmp_path / "exporter.toml", sim_env, db_url)
    h = Harness(sim_env, db_url, config)
    yield h
    h.engine.dispose()


# -- what the lineage views hold, for comparing states --------------------------------------

NS = "default-namespace"
SNAPSHOT_VIEWS = {
    "tables": "namespace, qualified_name, owner_deployment_id, table_id, connector, is_temporary, "
    "with_options, properties",
    "columns": "namespace, qualified_name, owner_deployment_id, column_id, column_type, "
    "column_native_type, nullable, description",
    "jobs": "namespace, deployment_id, job_id, deployment_name, properties",
    "table_edges": "namespace, source_name, destination_name, job_id, source_owner, "
    "destination_owner",
    "column_edges": "namespace, source_name, destination_name, job_id, source_owner, "
    "destination_owner",
}


def hashable(row: tuple[object, ...]) -> tuple[object, ...]:
    """A row alike on both databases: JSON objects as sorted text, booleans as integers."""

    def one(value: object) -> object:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            with contextlib.suppress(ValueError):  # else a name that only looks like JSON
                value = json.loads(value)  # SQLite returns JSON as text
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True)
        if isinstance(value, bool):
            return int(value)
        return value

    return tuple(one(v) for v in row)


def snapshot(h: Harness, at: object | None = None) -> dict[str, set[tuple[object, ...]]]:
    """Every view's rows, current (at=None) or as of instant `at`."""
    result = {}
    for kind, columns in SNAPSHOT_VIEWS.items():
        if at is None:
            rows = h.rows(f"SELECT {columns} FROM lineage_{kind}_current")
        else:
            rows = h.rows(
                f"SELECT {columns} FROM lineage_{kind}_history "
                "WHERE valid_from <= :t AND (valid_to IS NULL OR valid_to > :t)",
                t=at,
            )
        result[kind] = {hashable(r) for r in rows}
    return result


def history_count(h: Harness) -> int:
    """Every version row: of lineage, and of the listed deployments."""
    return sum(
        int(h.scalar(f"SELECT COUNT(*) FROM {table}"))  # type: ignore[call-overload]
        for table in (*VERSION_TABLES, "deployment_versions")
    )


def with_job(world: World, namespace: str = NS) -> list[SimDeployment]:
    return [d for d in world.namespaces[namespace].deployments.values() if d.jobs]


VERSION_TABLES = {
    "table_versions": "table_fk",
    "column_versions": "column_fk",
    "job_versions": "deployment_fk",
    "table_edge_versions": "edge_fk",
    "column_edge_versions": "edge_fk",
}


def assert_consistent(h: Harness) -> None:
    """One open version per entity, and the current state is what the contributions say."""
    from exporter import store, sync
    from exporter.history import Ranked, diff, merge

    for table, entity in VERSION_TABLES.items():
        doubled = h.rows(
            f"SELECT {entity} FROM {table} WHERE valid_to IS NULL "
            f"GROUP BY {entity} HAVING COUNT(*) > 1"
        )
        assert doubled == [], f"{table}: several open versions of {doubled[:3]}"
    workspace = h.world.workspace_id
    with h.engine.connect() as conn:
        current = store.load_current(conn, workspace)
        live = store.live_contributions(conn, workspace)
        loaded = store.live_contributions(conn, workspace, with_payload_for=set(live))
    ranked = [
        Ranked(c.fetched_at, c.deployment_id, sync._stored_state(workspace, c))
        for c in loaded.values()
    ]
    leftover = diff(merge(ranked), current)
    assert (leftover.rows_added, leftover.rows_closed) == (0, 0)
    assert dangling_keys(h.engine) == {}


def dangling_keys(engine: Engine) -> dict[str, int]:
    """Rows whose key names no row, per key that PostgreSQL does not enforce (migration 0012:
    each version's entity and run), checked on both databases."""
    from exporter.schema import ONLY_ON, metadata

    unenforced = [
        (table.name, key)
        for table in metadata.sorted_tables
        for key in table.foreign_key_constraints
        if key.info.get(ONLY_ON)
    ]
    dangling = {}
    with engine.connect() as conn:
        for table, key in unenforced:
            column, referred = key.column_keys[0], key.referred_table.name
            count = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {table} v WHERE NOT EXISTS "
                f"(SELECT 1 FROM {referred} r WHERE r.id = v.{column})"
            ).scalar_one()
            if count:
                dangling[str(key.name)] = int(count)
    return dangling


def run_instants(h: Harness) -> list[datetime]:
    """Each run's instant, the instants between them, a day before the first and a day after
    the last."""
    runs = [r[0] for r in h.rows("SELECT started_at FROM lineage_sync_runs ORDER BY run_id")]
    if isinstance(runs[0], str):  # SQLite returns text from a view
        runs = [datetime.fromisoformat(r + "+00:00") for r in runs]
    between = [a + (b - a) / 2 for a, b in itertools.pairwise(runs)]
    return sorted([*runs, *between, runs[0] - timedelta(days=1), runs[-1] + timedelta(days=1)])


def churned_history(h: Harness) -> None:
    """Runs with every kind of change: lineage churn, a job that fails, restarts, and a
    deployment that goes away."""
    assert h.sync() == 0
    for step in range(4):
        h.sim.world.advance(changes=5)
        deployment = with_job(h.world)[step]
        if step == 1:
            h.world.set_status(deployment, "FAILED")
        if step == 2:
            h.world._add_job(deployment, f"job-restarted-{step}")
        assert h.sync() == 0
