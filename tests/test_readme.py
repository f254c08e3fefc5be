"""The README's example queries run on both databases against the demo's workspace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Harness

from exporter.demo import demo_world
from exporter.simulator import World

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def world() -> World:
    return demo_world()


def test_the_readme_has_the_three_demo_queries() -> None:
    assert len(readme_queries()) >= 3


def test_readme_queries_run_and_answer(harness: Harness) -> None:
    assert harness.sync() == 0
    harness.world.advance(4)
    assert harness.sync() == 0
    upstream, columns_then, last_changes = (harness.rows(q) for q in readme_queries()[:3])
    assert upstream, "the demo table has no upstream: the README example names the wrong table"
    assert columns_then
    assert last_changes
    assert {row[0] for row in last_changes} <= {
        "edge added",
        "edge removed",
        "column added",
        "column removed",
        "column changed",
    }
