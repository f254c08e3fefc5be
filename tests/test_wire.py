"""Wire-model tolerance on the real API's quirks, and clear errors on wrong shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.api.wire import (
    DeploymentPage,
    JobPage,
    JobRef,
    LineageBody,
    LineageInfo,
    LineageResponse,
    parse_body,
)
from exporter.errors import ApiContext, PayloadError

CONTEXT = ApiContext("ws-1", "ns-1", "dep-1", "job-1")
# The success example of the published GetLineageInfo reference, verbatim.
EXAMPLE = Path(__file__).parent / "fixtures" / "get_lineage_info_example.json"


def lineage(data: object, **envelope: object) -> LineageResponse:
    return parse_body(LineageResponse, {"success": True, **envelope, "data": data}, CONTEXT, "Get")


def test_the_published_example_parses() -> None:
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    parsed = parse_body(LineageResponse, body, CONTEXT, "GetLineageInfo")
    assert parsed.error_code is None and parsed.error_message is None
    assert parsed.data is not None
    assert parsed.data.job_infos[0].id == "664cc64d-5dea-4ad3-9ee4-8432a874****"
    table = parsed.data.nodes[0].tables[0]
    assert table.with_ == {"test": "test", "test2": 1}
    # Fields the exporter does not use are not validated, but kept in the raw body.
    raw_column = parsed.raw["data"]["nodes"][0]["tables"][0]["columns"][0]
    assert raw_column == body["data"]["nodes"][0]["tables"][0]["columns"][0]
    assert "createdAt" in raw_column and "creator" in raw_column


@pytest.mark.parametrize("value", [None, "", '""', "  "])
def test_empty_error_fields_mean_no_error(value: object) -> None:
    parsed = lineage({}, errorCode=value, errorMessage=value)
    assert parsed.error_code is None and parsed.error_message is None


def test_ids_are_stripped_and_numbers_become_strings() -> None:
    parsed = lineage(
        {
            "nodes": [{"id": 97383, "catalogName": "c", "databaseName": "d", "tables": []}],
            "edges": {"tableLineage": [{"source": " a ", "destination": "b\n", "jobId": " j\n"}]},
            "jobInfos": [{"id": "job-1\n", "properties": None}],
        }
    )
    assert parsed.data is not None
    assert parsed.data.nodes[0].id == "97383"
    edge = parsed.data.edges.table_lineage[0]
    assert (edge.source, edge.destination, edge.job_id) == ("a", "b", "j")
    assert parsed.data.job_infos[0].id == "job-1"
    assert parsed.data.job_infos[0].properties == {}


@pytest.mark.parametrize("value", [1723537978, 1723537978000, "1723537978000", "1723537978"])
def test_epoch_seconds_or_milliseconds(value: object) -> None:
    page = parse_body(JobPage, {"data": [{"jobId": "j", "createdAt": value}]}, CONTEXT, "ListJobs")
    assert page.data[0].created_at == datetime(2024, 8, 13, 8, 32, 58, tzinfo=UTC)


def test_numbers_sent_as_strings_and_unknown_fields_kept() -> None:
    body = {
        "data": [{"deploymentId": "d", "newField": {"x": 1}}],
        "totalSize": "3",
        "pageIndex": "2",
    }
    page = parse_body(DeploymentPage, body, CONTEXT, "ListDeployments")
    assert page.total_size == 3 and page.page_index == 2
    assert page.data[0].model_extra == {"newField": {"x": 1}}
    assert page.raw is body


def test_a_listed_deployment_keeps_its_record_not_its_configuration() -> None:
    body = {
        "data": [
            {
                "deploymentId": "d",
                "name": "orders",
                "labels": {"team": "a"},
                "createdAt": 1700000000000,
                "artifact": {"sqlArtifact": {"sqlScript": "INSERT INTO ..." * 100}},
            }
        ],
        "totalSize": 1,
    }
    deployment = parse_body(DeploymentPage, body, CONTEXT, "ListDeployments").data[0]
    listed = deployment.listed()
    assert (listed.deployment_id, listed.name) == ("d", "orders")
    assert listed.record() == deployment.record()
    assert listed.record()["labels"] == {"team": "a"}
    assert b"sqlScript" not in listed.packed_record


def test_a_job_identity_is_its_id_alone() -> None:
    body = {
        "data": [
            {
                "jobId": "j",
                "status": {
                    "currentJobStatus": "RUNNING",
                    "running": {"observedFlinkJobRestarts": 3},
                },
            }
        ],
        "totalSize": 1,
    }
    job = parse_body(JobPage, body, CONTEXT, "ListJobs").data[0]
    assert job.record()["status"] == {"currentJobStatus": "RUNNING"}
    assert job.identity() == JobRef("j")


def test_null_lists_are_empty() -> None:
    parsed = lineage({"nodes": None, "edges": {"tableLineage": None}, "jobInfos": None})
    assert parsed.data is not None
    assert parsed.data.nodes == [] and parsed.data.edges.table_lineage == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"nodes": {"not": "a list"}}, "data.nodes"),
        (
            {"nodes": [{"catalogName": "c", "databaseName": "d", "tables": "x"}]},
            "data.nodes.0.tables",
        ),
        ({"nodes": [{"databaseName": "d"}]}, "data.nodes.0.catalogName"),
        ({"edges": {"columnLineage": [{"source": "a"}]}}, "data.edges.columnLineage.0.destination"),
        ("a string", "data"),
    ],
)
def test_wrong_shapes_name_the_field_and_the_job(data: object, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        lineage(data)
    assert caught.value.field == field
    message = str(caught.value)
    for part in ("ws-1", "ns-1", "dep-1", "job-1", field):
        assert part in message


def test_a_body_that_is_not_an_object_is_a_clear_error() -> None:
    with pytest.raises(PayloadError, match=r"expected a JSON object, got list"):
        parse_body(LineageResponse, [1, 2], CONTEXT, "GetLineageInfo")


class TestALineageBodyLeftToValidate:
    def body(self, data: object) -> LineageBody:
        raw = {"success": True, "requestId": "r", "data": data}
        return parse_body(LineageBody, raw, CONTEXT, "GetLineageInfo")

    def test_its_data_is_the_body_as_sent(self) -> None:
        data = {"nodes": [{"catalogName": "c", "databaseName": "d", "tables": []}]}
        body = self.body(data)
        assert body.data is data and body.raw["data"] is data
        assert body.validated(CONTEXT).data == LineageInfo.model_validate(data)

    def test_data_that_is_not_an_object_is_refused_naming_it(self) -> None:
        with pytest.raises(PayloadError) as caught:
            self.body([1, 2])
        assert caught.value.field == "data" and "dictionary" in str(caught.value)

    def test_a_bad_field_is_named_by_the_whole_validation(self) -> None:
        data = {"nodes": [{"catalogName": "c", "databaseName": "d", "tables": [{"columns": 3}]}]}
        with pytest.raises(PayloadError) as whole:
            self.body(data).validated(CONTEXT)
        with pytest.raises(PayloadError) as tables:
            self.body(data).tables(CONTEXT)
        assert tables.value.field == whole.value.field == "data.nodes.0.tables.0.tableName"
        assert str(tables.value) == str(whole.value)
