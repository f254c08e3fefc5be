"""The explorer in a real browser: Debian's headless Chromium driven by Playwright, against the
explorer served by uvicorn over a database with history, on both databases. Screenshots of each
page go to tests/artifacts/. Run alone with `pytest -m browser`."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from web_history import HOSTILE, T0, T1, write_explorer_history

from exporter.config import UiSettings
from exporter.database import make_engine
from exporter.web.server import Explorer

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# Chromium's own traffic (updates, sync, safe browsing) stays off: only the explorer is reached.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def explorer(db_url: str) -> Iterator[str]:
    engine: Engine = make_engine(db_url)
    write_explorer_history(engine)
    served = Explorer(engine, UiSettings(), port=0).start()
    yield served.url
    served.stop()
    engine.dispose()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert errors == [], errors  # no script error, no CSP violation


def shot(page: Any, name: str, request: pytest.FixtureRequest) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = (
        request.node.callspec.params.get("db_url", "") if hasattr(request.node, "callspec") else ""
    )
    page.screenshot(path=str(ARTIFACTS / f"{name}-{suffix}.png"), full_page=True)


# Waits are CSS selectors: a predicate in JavaScript would be evaluated by Playwright, and the
# page's Content-Security-Policy (no eval) refuses that, as it should.
RENDERED_AT = '#graph[data-rendered^="%s"]'


def rendered(page: Any) -> None:
    page.wait_for_selector("#graph[data-rendered]")


def edge(page: Any, source: str, destination: str) -> Any:
    return page.locator(f'g.edge[data-source="{source}"][data-destination="{destination}"]')


def test_search_then_open_the_graph(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "?q=c.d.c")
    shot(page, "search", request)
    page.click('a.result[data-name="c.d.c"]')
    rendered(page)
    assert page.locator('g.node[data-name="c.d.c"]').count() == 1
    assert page.locator('g.node[data-name="c.d.b"]').count() == 1
    assert edge(page, "c.d.b", "c.d.c").get_attribute("data-job") == "j2"
    assert "status-RUNNING" in edge(page, "c.d.b", "c.d.c").get_attribute("class")
    label = edge(page, "c.d.b", "c.d.c").locator("text.edge-label").text_content()
    assert label == "deployment j2"
    shot(page, "graph", request)


def test_sliding_back_in_time_removes_an_edge_and_it_comes_back(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "lineage?name=c.d.c&direction=upstream")
    rendered(page)
    assert edge(page, "c.d.b", "c.d.c").count() == 1
    slider = page.locator("#time-slider")
    assert slider.get_attribute("max") == "2" and slider.input_value() == "2"
    slider.fill("1")  # the second run: b -> c was gone
    page.wait_for_selector(RENDERED_AT % "2026-03-02")
    assert edge(page, "c.d.b", "c.d.c").count() == 0
    assert "as_of=2026-03-02" in page.url  # the URL follows: a shareable link
    shot(page, "graph-t1", request)
    slider.fill("0")
    page.wait_for_selector(RENDERED_AT % "2026-03-01")
    assert edge(page, "c.d.b", "c.d.c").count() == 1
    # The link reproduces the view.
    page.goto(page.url.replace("as_of=2026-03-01", "as_of=2026-03-02"))
    rendered(page)
    assert edge(page, "c.d.b", "c.d.c").count() == 0


def test_comparing_two_instants_marks_what_was_added_and_removed(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "lineage?name=c.d.c&direction=upstream")
    rendered(page)
    page.fill("#as-of", T1.strftime("%Y-%m-%dT%H:%M:%S"))
    page.dispatch_event("#as-of", "change")
    page.fill("#compare", T0.strftime("%Y-%m-%dT%H:%M:%S"))
    page.dispatch_event("#compare", "change")
    page.wait_for_selector('#graph[data-rendered*="|2026-03-01"]')
    removed = edge(page, "c.d.b", "c.d.c")
    assert removed.get_attribute("data-state") == "removed"
    assert "state-removed" in removed.get_attribute("class")
    assert page.locator('g.node[data-name="c.d.a"]').get_attribute("data-state") == "removed"
    assert page.locator('g.node[data-name="c.d.c"]').get_attribute("data-state") == "both"
    assert "compare=2026-03-01" in page.url
    shot(page, "compare", request)


def test_clicking_a_node_recentres_and_a_table_expands_to_columns(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "lineage?name=c.d.c&direction=upstream")
    rendered(page)
    page.locator('g.node[data-name="c.d.b"]').click()
    page.wait_for_url(re.compile(r"name=c\.d\.b(&|$)"))
    rendered(page)
    assert page.locator(".graph-page h1 .focus-name").text_content() == "c.d.b"
    assert edge(page, "c.d.a", "c.d.b").count() == 1
    assert page.locator("text.expand").count() == 2  # c.d.a and c.d.b: tables expand
    page.locator('g.node[data-name="c.d.b"] text.expand').click()
    page.wait_for_selector('g.edge[data-source="c.d.a.k"][data-destination="c.d.b.k"]')
    assert page.locator('g.node[data-name="c.d.b.k"]').count() == 1
    page.goto(explorer + "lineage?name=c.d.c.k&direction=upstream")
    rendered(page)
    assert page.locator("text.expand").count() == 0  # a column graph has no tables to expand


def test_a_hostile_name_renders_as_text(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "lineage?name=c.d.c&direction=upstream")
    rendered(page)
    node = page.locator("g.node").filter(has_text="evil<script>")
    assert node.count() == 1
    assert node.get_attribute("data-name") == HOSTILE
    assert node.locator("text").first.text_content() == HOSTILE
    assert page.evaluate("window.__pwned") is None
    page.goto(explorer + "?q=evil")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("a.result").first.text_content() == HOSTILE


def test_the_table_page_and_the_runs_page(
    page: Any, explorer: str, request: pytest.FixtureRequest
) -> None:
    page.goto(explorer + "table?name=c.d.b")
    assert page.locator("table.columns td.column-name").all_text_contents() == ["k"]
    assert "BIGINT" in page.locator("table.columns").text_content()
    assert "changed" in page.locator("table.history").text_content()
    assert "deployment j2" in page.locator("table.jobs").text_content()
    shot(page, "table", request)
    page.goto(explorer + "runs")
    assert page.locator("tr.run").count() == 3
    shot(page, "runs", request)
