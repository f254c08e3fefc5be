"""Redaction rules: which keys name a secret, and what is kept."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.redact import REDACTED, Redactor


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "ssl.keystore.password",
        "scan.passwd",
        "db_pwd",
        "accessKeySecret",
        "fs.oss.accessKeySecret",
        "accessKey",
        "properties.sasl.jaas.config",
        "SASL_JAAS_CONFIG",
        "security-token",
        "private.key",
        "api_key",
        "credentials.json",
    ],
)
def test_keys_that_name_a_secret(key: str) -> None:
    assert Redactor().is_secret(key)


@pytest.mark.parametrize(
    "key", ["hostname", "username", "topic", "connector", "with.parallelism", "scan.startup.mode"]
)
def test_keys_that_do_not(key: str) -> None:
    assert not Redactor().is_secret(key)


def test_extra_keys_add_to_the_built_in_ones() -> None:
    redactor = Redactor.with_extra_keys(["Host-Name", " "])
    assert redactor.is_secret("hostname") and redactor.is_secret("password")
    assert not redactor.is_secret("username")


def test_options_redacts_values_but_keeps_keys_references_and_empties() -> None:
    options = {
        "connector": "mysql-cdc",
        "password": "hunter2",
        "token": 12345,
        "secret": {"nested": "value"},
        "ssl.truststore.password": "${secret_values.truststore}",
        "sasl.jaas.config": "",
        "api.key": None,
    }
    redacted = Redactor().options(options)
    assert redacted == {
        "connector": "mysql-cdc",
        "password": REDACTED,
        "token": REDACTED,
        "secret": REDACTED,
        "ssl.truststore.password": "${secret_values.truststore}",
        "sasl.jaas.config": "",
        "api.key": None,
    }
    assert options["password"] == "hunter2"  # the input is not changed


def test_options_without_secrets_is_the_same_object() -> None:
    options = {"connector": "kafka", "topic": "orders"}
    assert Redactor().options(options) is options


def _body(**table: Any) -> dict[str, Any]:
    return {
        "success": True,
        "data": {
            "nodes": [{"catalogName": "c", "tables": [{"tableName": "t", **table}]}],
            "jobInfos": [{"id": "j", "properties": {"password": "job-pw", "parallelism": 2}}],
        },
    }


def test_lineage_body_redacts_with_properties_and_job_infos() -> None:
    body = _body(**{"with": {"password": "pw"}, "properties": {"secret": "s", "owner": "x"}})
    assert Redactor().lineage_body(body) is body
    table = body["data"]["nodes"][0]["tables"][0]
    assert table["with"] == {"password": REDACTED}
    assert table["properties"] == {"secret": REDACTED, "owner": "x"}
    assert body["data"]["jobInfos"][0]["properties"] == {"password": REDACTED, "parallelism": 2}


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"success": False},
        {"data": None},
        {"data": {"nodes": "not a list", "jobInfos": [1, "x", None]}},
        {"data": {"nodes": [{"tables": [{"with": ["not", "a", "map"]}, 7]}]}},
    ],
)
def test_lineage_body_of_an_unexpected_shape_is_left_for_validation(body: Any) -> None:
    import copy

    before = copy.deepcopy(body)
    assert Redactor().lineage_body(body) == before


def test_redact_lineage_tells_whether_anything_was_redacted() -> None:
    body = _body(**{"with": {"password": "pw"}})
    assert Redactor().redact_lineage(body) is True
    assert Redactor().redact_lineage(body) is False  # already redacted: nothing left to hide
    assert Redactor().redact_lineage(_body(**{"with": {"topic": "t"}})) is True  # the job's pw
    clean = {"data": {"nodes": [{"tables": [{"with": {"topic": "t"}}]}], "jobInfos": []}}
    assert Redactor().redact_lineage(clean) is False
