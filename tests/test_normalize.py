"""normalize: one payload -> rows, resolving edge endpoints and scoping temporary tables."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.api.wire import LineageInfo, LineageTables
from exporter.errors import ApiContext, PayloadError
from exporter.normalize import (
    JobIdentity,
    Reports,
    State,
    check_limits,
    content_hash,
    job_attributes,
    normalize,
    reports,
)
from exporter.simulator import World, WorldSize
from exporter.storable import MAX_ID_BYTES, MAX_NAME_BYTES

JOB = JobIdentity("ns", "dep-1", "my-job", "job-1")


def payload(**overrides: Any) -> LineageInfo:
    data: dict[str, Any] = {
        "nodes": [
            {
                "id": "n1",
                "catalogName": "paimon",
                "databaseName": "ods",
                "isTemporary": False,
                "connector": "paimon",
                "tables": [
                    {
                        "id": "t1",
                        "tableName": "orders",
                        "with": {"a": 1},
                        "properties": {"p": "x"},
                        "columns": [
                            {
                                "id": "c1",
                                "columnName": "id",
                                "columnType": "BIGINT",
                                "nullable": False,
                            }
                        ],
                    },
                    {
                        "id": "t2",
                        "tableName": "orders_agg",
                        "columns": [{"id": "c2", "columnName": "id", "columnType": "BIGINT"}],
                    },
                ],
            },
            {
                "id": "n2",
                "catalogName": "default_catalog",
                "databaseName": "default_database",
                "isTemporary": True,
                "connector": "datagen",
                "tables": [{"id": "t3", "tableName": "tmp", "columns": []}],
            },
        ],
        "edges": {
            "tableLineage": [
                {"source": "t1", "destination": "t2", "jobId": "job-1"},
                {"source": "paimon.ods.orders", "destination": "t3", "jobId": "job-1"},
                {"source": "kafka://x/topic", "destination": "hive.db.elsewhere", "jobId": None},
            ],
            "columnLineage": [
                {"source": "c1", "destination": "paimon.ods.orders_agg.id", "jobId": "job-1"},
                {"source": "nowhere", "destination": "c2", "jobId": "job-1"},
            ],
        },
        "jobInfos": [
            {"id": "job-1\n", "properties": {"owner": "ana", "n": 3}},
            {"id": "other", "properties": {"x": 1}},
        ],
    }
    data.update(overrides)
    return LineageInfo.model_validate(data)


def test_tables_and_columns_are_keyed_by_name() -> None:
    state = normalize(JOB, payload())
    orders = state["tables"][("ns", "paimon", "ods", "orders", "")]
    assert orders == {
        "node_id": "n1",
        "table_uid": "t1",
        "connector": "paimon",
        "is_temporary": False,
        "with_options": {"a": 1},
        "properties": {"p": "x"},
    }
    column = state["columns"][("ns", "paimon", "ods", "orders", "", "id")]
    assert column["column_type"] == "BIGINT" and column["nullable"] is False


def test_temporary_tables_belong_to_their_deployment() -> None:
    state = normalize(JOB, payload())
    assert ("ns", "default_catalog", "default_database", "tmp", "dep-1") in state["tables"]
    other = normalize(JobIdentity("ns", "dep-2", None, "job-2"), payload())
    assert ("ns", "default_catalog", "default_database", "tmp", "dep-2") in other["tables"]


def test_edge_endpoints_resolve_by_id_then_name_else_raw() -> None:
    state = normalize(JOB, payload())
    assert set(state["table_edges"]) == {
        ("ns", "paimon.ods.orders", "", "paimon.ods.orders_agg", "", "job-1"),
        ("ns", "paimon.ods.orders", "", "default_catalog.default_database.tmp", "dep-1", "job-1"),
        # unresolvable endpoints are kept as they are; a missing jobId is this job's
        ("ns", "kafka://x/topic", "", "hive.db.elsewhere", "", "job-1"),
    }
    assert set(state["column_edges"]) == {
        ("ns", "paimon.ods.orders.id", "", "paimon.ods.orders_agg.id", "", "job-1"),
        ("ns", "nowhere", "", "paimon.ods.orders_agg.id", "", "job-1"),
    }


def test_job_row_takes_its_own_job_info() -> None:
    state = normalize(JOB, payload())
    assert state["jobs"] == {
        ("ns", "dep-1"): {
            "job_id": "job-1",
            "deployment_name": "my-job",
            "properties": {"owner": "ana", "n": 3},
            **job_attributes({}, {}),  # what ListJobs said: nothing, in this test
        }
    }


def test_an_empty_payload_still_records_the_job() -> None:
    state = normalize(JOB, LineageInfo())
    assert state.size() == 1 and ("ns", "dep-1") in state["jobs"]


def test_what_an_unchanged_contribution_keeps_is_what_its_rows_would_share() -> None:
    """`reports` (tables and edge jobs, read without making rows) equals what the rows say, for
    temporary tables, edges of another job and every payload of a simulated world."""
    other_job = payload(
        edges={"tableLineage": [{"source": "t1", "destination": "t2", "jobId": "job-9"}]}
    )
    cases = [(JOB, payload()), (JobIdentity("ns", "dep-2", None, "job-2"), payload())]
    cases.append((JOB, other_job))
    world = World("ws", seed=3, size=WorldSize(namespaces=2, deployments_per_namespace=8))
    for namespace, ns in world.namespaces.items():
        for deployment in ns.deployments.values():
            for job in deployment.jobs:
                data = LineageInfo.model_validate(world.lineage(namespace, deployment, job.id))
                cases.append((JobIdentity(namespace, deployment.id, None, job.id), data))
    assert len(cases) > 10
    for job, data in cases:
        assert reports(job, data) == Reports.of_keys(normalize(job, data).rows), job
    assert reports(JOB, other_job).edge_jobs == {"job-9"}
    mine, theirs = reports(JOB, payload()), reports(JobIdentity("ns", "d", None, "j"), other_job)
    assert mine.overlaps(theirs)  # the catalog tables they both report
    assert not mine.overlaps(Reports(frozenset(), frozenset({"job-9"})))


def test_an_unchanged_body_validated_for_its_tables_alone_reports_the_same() -> None:
    """What a sync validates of an unchanged body (`LineageTables`) gives the same `reports` as
    the whole validation, stray whitespace in edge job IDs, numbers as IDs and nulls included."""
    world = World("ws", seed=5, size=WorldSize(namespaces=2, deployments_per_namespace=8))
    bodies: list[tuple[JobIdentity, dict[str, Any]]] = [
        (JOB, payload().model_dump(by_alias=True)),
        (
            JOB,
            {
                "nodes": [
                    {
                        "catalogName": "c",
                        "databaseName": "d",
                        "isTemporary": "true",
                        "tables": [{"tableName": "t", "columns": None}],
                    },
                    {"catalogName": "c", "databaseName": "d", "tables": None},
                ],
                "edges": {
                    "tableLineage": [{"source": "a", "destination": "b", "jobId": " job-9 "}],
                    "columnLineage": [{"source": "a", "destination": "b", "jobId": 42}],
                },
            },
        ),
    ]
    for namespace, ns in world.namespaces.items():
        for deployment in ns.deployments.values():
            for job in deployment.jobs:
                identity = JobIdentity(namespace, deployment.id, None, job.id)
                bodies.append((identity, world.lineage(namespace, deployment, job.id)))
    for job, body in bodies:
        whole = reports(job, LineageInfo.model_validate(body))
        assert reports(job, LineageTables.model_validate(body)) == whole, job
    assert reports(JOB, LineageTables.model_validate(bodies[1][1])) == Reports(
        frozenset({("ns", "c", "d", "t", "dep-1")}), frozenset({"job-9", "42"})
    )


def test_same_payload_same_rows() -> None:
    assert normalize(JOB, payload()) == normalize(JOB, payload())


def test_columns_share_their_type_strings_across_payloads() -> None:
    def parsed() -> LineageInfo:  # as from a response: its strings are new objects
        columns = [
            {"id": f"c{i}", "columnName": f"c{i}", "columnType": "".join(["BIG", "INT"])}
            for i in range(3)
        ]
        table = {"id": "t", "tableName": "t", "columns": columns}
        node = {"id": "n", "catalogName": "c", "databaseName": "d", "tables": [table]}
        return LineageInfo.model_validate({"nodes": [node]})

    one, other = parsed(), parsed()
    sent = {id(c.column_type) for info in (one, other) for c in info.nodes[0].tables[0].columns}
    assert len(sent) == 6
    kept = {
        id(attrs["column_type"])
        for state in (normalize(JOB, one), normalize(JOB, other))
        for attrs in state["columns"].values()
    }
    assert len(kept) == 1


def test_content_hash_follows_the_content() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"a": 1, "b": [1, 2]})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash({"a": [1, 2]}) != content_hash({"a": [2, 1]})


# -- limits on what is stored -----------------------------------------------------------------

CONTEXT = ApiContext("ws", "ns", "dep-1", "job-1", "my-job")


def limited(**change: Any) -> State:
    """The rows of a one-table payload whose table, column or edge parts are replaced."""
    table = change.get("table", "orders")
    column = change.get("column", "id")
    data = {
        "nodes": [
            {
                "catalogName": change.get("catalog", "paimon"),
                "databaseName": "ods",
                "tables": [{"tableName": table, "columns": [{"columnName": column}]}],
            }
        ],
        "edges": {
            "tableLineage": [
                {
                    "source": change.get("source", "kafka://topic"),
                    "destination": f"paimon.ods.{table}",
                    "jobId": change.get("job_id", "job-1"),
                }
            ]
        },
    }
    return normalize(JOB, LineageInfo.model_validate(data))


def test_names_within_the_limits_pass() -> None:
    check_limits(limited(table="t" * 300, column="c" * 300), CONTEXT)
    check_limits(limited(source="kafka://" + "e" * (MAX_NAME_BYTES - 8)), CONTEXT)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"table": "t" * MAX_NAME_BYTES}, "tableName"),
        ({"catalog": "c" * MAX_NAME_BYTES}, "tableName"),
        ({"column": "c" * (MAX_NAME_BYTES - len("paimon.ods.orders"))}, "columnName"),
        ({"column": "🚀" * 300}, "columnName"),  # 300 characters, 1,200 bytes
        ({"source": "kafka://" + "e" * MAX_NAME_BYTES}, "edges.tableLineage.source"),
        ({"job_id": "j" * (MAX_ID_BYTES + 1)}, "edges.tableLineage.jobId"),
    ],
)
def test_a_name_too_long_to_store_names_the_job_and_the_field(
    change: dict[str, str], field: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        check_limits(limited(**change), CONTEXT)
    assert caught.value.field == field
    message = str(caught.value)
    assert "deployment dep-1 (my-job)" in message and "job job-1" in message
    assert "bytes; at most" in message
