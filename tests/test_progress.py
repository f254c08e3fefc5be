"""Progress: a bar on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import io
import logging

import pytest

from exporter.api.wire import Deployment
from exporter.errors import ApiContext, ApiError
from exporter.extract import DeploymentFetch
from exporter.progress import FetchProgress


def fetch(error: bool = False) -> DeploymentFetch:
    deployment = Deployment.model_validate({"deploymentId": "d", "name": "n"})
    failure = ApiError(ApiContext("ws"), "GetLineageInfo", code="X") if error else None
    return DeploymentFetch("ns", deployment, error=failure)


def test_terminal_bar_redraws_in_place() -> None:
    stream = io.StringIO()
    ticks = iter(float(i) for i in range(100))
    progress = FetchProgress("ws-1", stream, interactive=True, clock=lambda: next(ticks))
    progress.listed(4)
    progress.fetched(fetch())
    progress.fetched(fetch(error=True))
    progress.close()
    out = stream.getvalue()
    assert out.count("\r") >= 3 and out.endswith("\n")
    last = out.rstrip("\n").split("\r")[-1]
    assert last == "[" + "#" * 15 + "." * 15 + "] ws-1: 2/4 deployments fetched, 1 failed"


def test_plain_log_lines_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = FetchProgress("ws-1", stream, interactive=False, log_every=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="exporter.progress"):
        progress.listed(3)  # first line at once
        progress.fetched(fetch())  # within 5 s: silent
        now[0] = 6.0
        progress.fetched(fetch())  # 5 s later: a line
        progress.fetched(fetch())
        progress.close()  # and the final state
    assert stream.getvalue() == ""
    assert [r.getMessage() for r in caplog.records] == [
        "ws-1: 0/3 deployments fetched",
        "ws-1: 2/3 deployments fetched",
        "ws-1: 3/3 deployments fetched",
    ]
