"""Property-based tests: arbitrary JSON never crashes parsing, normalizing or a sync.

It yields a clear per-job error (a PayloadError naming the job and the field) or a result.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.api.wire import LineageResponse, parse_body
from exporter.errors import ApiContext, PayloadError
from exporter.normalize import JobIdentity, normalize

CONTEXT = ApiContext("ws", "ns", "dep", "job-1")
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right shape, sometimes anything at all."""
    return strategy | json_values


relation = st.fixed_dictionaries(
    {"source": maybe(st.text(max_size=12)), "destination": maybe(st.text(max_size=12))},
    optional={"jobId": maybe(st.text(max_size=6))},
)
column = st.fixed_dictionaries(
    {"columnName": maybe(st.text(min_size=1, max_size=8))},
    optional={
        "id": maybe(st.text(max_size=6)),
        "columnType": maybe(st.text(max_size=8)),
        "nullable": maybe(st.booleans()),
        "createdAt": maybe(st.integers(min_value=0, max_value=2**42)),
    },
)
table = st.fixed_dictionaries(
    {"tableName": maybe(st.text(min_size=1, max_size=8))},
    optional={
        "id": maybe(st.text(max_size=6)),
        "columns": maybe(st.lists(column, max_size=3)),
        "with": maybe(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
    },
)
node = st.fixed_dictionaries(
    {"catalogName": maybe(st.text(max_size=6)), "databaseName": maybe(st.text(max_size=6))},
    optional={"isTemporary": maybe(st.booleans()), "tables": maybe(st.lists(table, max_size=3))},
)
lineage_body = st.fixed_dictionaries(
    {"success": maybe(st.just(True))},
    optional={
        "data": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "nodes": maybe(st.lists(node, max_size=3)),
                    "edges": maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "tableLineage": maybe(st.lists(relation, max_size=3)),
                                "columnLineage": maybe(st.lists(relation, max_size=3)),
                            },
                        )
                    ),
                    "jobInfos": maybe(st.lists(json_values, max_size=2)),
                },
            )
        ),
        "requestId": maybe(st.text(max_size=6)),
    },
)
any_body = lineage_body | json_values


@settings(max_examples=300, deadline=None)
@given(any_body)
def test_parsing_and_normalizing_never_crash(body: Any) -> None:
    try:
        response = parse_body(LineageResponse, body, CONTEXT, "GetLineageInfo")
    except PayloadError as exc:
        assert exc.context == CONTEXT and exc.field  # names the job and the field
        assert "job job-1" in str(exc)
        return
    if response.data is not None:
        state = normalize(JobIdentity("ns", "dep", "name", "job-1"), response.data)
        assert ("ns", "dep") in state["jobs"]  # the job itself is always a row
        for key in state["table_edges"]:
            assert key[0] == "ns" and key[-1]  # every edge is kept, with a job


@pytest.fixture
def sqlite_harness(sim_env: Any, sqlite_url: str, tmp_path: Any) -> Harness:
    from conftest import write_config

    config = write_config(tmp_path / "c.toml", sim_env, sqlite_url, max_attempts="1")
    return Harness(sim_env, sqlite_url, config)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=any_body)
def test_a_sync_survives_any_lineage_body(sqlite_harness: Harness, body: Any) -> None:
    h = sqlite_harness
    deployment = next(
        d for ns in h.world.namespaces.values() for d in ns.deployments.values() if d.jobs
    )
    assert deployment.current_job is not None
    job = deployment.current_job.id
    h.sim.faults.job_bodies[job] = body
    code = h.sync()
    run = h.last_run()
    assert code in (0, 1)
    if code == 1:
        # The one bad job failed with a message naming it; everything else was stored.
        assert run["status"] == "partial" and run["jobs_failed"] == 1
        assert job in str(run["error_summary"])
    else:
        assert run["status"] == "succeeded"
    h.sim.faults.job_bodies.clear()


# -- any text in every string field: SQLite and PostgreSQL store the same -------------------------

# Any character at all (surrogates included), and often the ones databases are particular about.
PARTICULAR = ["\x00", "\ud800", "\udfff", "'", '"', ";", "\\", "\n", "%", "🚀", "\ufffd"]
any_text = st.text(
    alphabet=st.sampled_from(PARTICULAR) | st.characters(exclude_categories=()),
    min_size=1,  # an empty table or column name is refused by validation, rightly
    max_size=12,
)
STRUCTURE = {"success", "httpCode", "errorCode", "errorMessage", "requestId", "data", "nodes",
             "tables", "columns", "edges", "tableLineage", "columnLineage", "jobInfos",
             "isTemporary", "nullable", "createdAt", "modifiedAt"}  # fmt: skip


def with_texts(value: Any, texts: list[str], at: list[int]) -> Any:
    """`value` with every string (and every key of a free-form map) replaced by the next text."""

    def next_text() -> str:
        at[0] += 1
        return texts[at[0] % len(texts)]

    if isinstance(value, str):
        return next_text()
    if isinstance(value, list):
        return [with_texts(v, texts, at) for v in value]
    if isinstance(value, dict):
        return {
            (k if k in STRUCTURE or not _free_form(value) else next_text()): (
                v if k in STRUCTURE and not isinstance(v, dict | list) else with_texts(v, texts, at)
            )
            for k, v in value.items()
        }
    return value


def _free_form(mapping: dict[str, Any]) -> bool:
    """A map whose keys are data (with options, properties), not the API's field names."""
    return not ({"tableName", "columnName", "catalogName", "source", "id", "nodes"} & set(mapping))


@pytest.fixture
def both_databases(sim_env: Any, sqlite_url: str, pg_url: str, tmp_path: Any) -> Any:
    from conftest import write_config

    harnesses = [
        Harness(
            sim_env, url, write_config(tmp_path / f"{name}.toml", sim_env, url, max_attempts="1")
        )
        for name, url in (("sqlite", sqlite_url), ("pg", pg_url))
    ]
    yield harnesses
    for h in harnesses:
        h.engine.dispose()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(texts=st.lists(any_text, min_size=1, max_size=30))
def test_any_text_anywhere_is_stored_alike_on_sqlite_and_postgresql(
    both_databases: list[Harness], texts: list[str]
) -> None:
    from conftest import assert_consistent, snapshot

    from exporter.simulator.poison import ok

    sqlite_h, pg_h = both_databases
    world = sqlite_h.world
    ns = "default-namespace"
    deployment = next(d for d in world.namespaces[ns].deployments.values() if d.jobs)
    assert deployment.current_job is not None
    job = deployment.current_job.id
    data = with_texts(world.lineage(ns, deployment, job), texts, [0])
    sqlite_h.sim.faults.job_bodies[job] = ok(data)
    # No exception escapes, and every such text is storable: the job is stored on both.
    assert [h.sync() for h in both_databases] == [0, 0]
    assert snapshot(sqlite_h) == snapshot(pg_h)
    for h in both_databases:
        assert_consistent(h)
