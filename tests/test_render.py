"""Rendering traversals and diffs: text, JSON, Mermaid, DOT and SVG (through Graphviz)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest

from exporter import render
from exporter.changes import Change
from exporter.errors import QueryError
from exporter.query import Hop, Traversal

AT = datetime(2026, 3, 1, tzinfo=UTC)


def sample() -> Traversal:
    hops = [
        Hop("upstream", 1, "c.d.b", "c.d.c", "j2", "load c", "ns", "ws"),
        Hop("upstream", 2, 'c.d."a"', "c.d.b", "j1", None, "ns", "ws"),
    ]
    return Traversal("c.d.c", "table", AT, 10, ("upstream",), hops)


def test_text_shows_each_hop_with_its_job() -> None:
    out = render.traversal(sample(), "text")
    assert "upstream of c.d.c as of 2026-03-01T00:00:00+00:00 (table level, 2 edges" in out
    assert "c.d.c <- c.d.b  [job load c (j2); ns]" in out
    assert 'c.d.b <- c.d."a"  [job j1; ns]' in out


def test_json_round_trips() -> None:
    data = json.loads(render.traversal(sample(), "json"))
    assert data["name"] == "c.d.c" and data["level"] == "table"
    assert [h["job_id"] for h in data["hops"]] == ["j2", "j1"]


def test_mermaid_and_dot_draw_every_edge_once() -> None:
    mermaid = render.traversal(sample(), "mermaid")
    assert mermaid.startswith("flowchart LR")
    assert 'n0["c.d.c"]:::focus' in mermaid and 'n2["c.d.#quot;a#quot;"]' in mermaid
    assert mermaid.count("-->") == 2 and 'n1 -->|"load c (j2)"| n0' in mermaid
    dot = render.traversal(sample(), "dot")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert 'n2 [label="c.d.\\"a\\""];' in dot and 'n1 -> n0 [label="load c (j2)"];' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_svg_through_graphviz() -> None:
    svg = render.traversal(sample(), "svg")
    assert "<svg" in svg and "c.d.c" in svg


def test_svg_without_graphviz_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(QueryError, match="apt install graphviz"):
        render.traversal(sample(), "svg")


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(QueryError, match="unknown format 'png'"):
        render.traversal(sample(), "png")


def test_diff_text_shows_old_and_new_values() -> None:
    items = [
        Change("column", "ws", "ns", "c.d.t.x", "changed", {"type": "INT"}, {"type": "BIGINT"}),
        Change("table", "ws", "ns", "c.d.t", "added", None, {"connector": "kafka"}),
    ]
    out = render.changes(items, "text", "changes")
    assert "~ column      ns: c.d.t.x  (type: INT -> BIGINT)" in out
    assert "+ table       ns: c.d.t" in out and "1 added, 0 removed, 1 changed" in out
    assert json.loads(render.changes(items, "json", ""))[0]["new"] == {"type": "BIGINT"}
