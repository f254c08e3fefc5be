"""Answers as text for people, JSON for programs, and pictures (Mermaid, Graphviz DOT, SVG).

Pure functions from `exporter.query` results to strings, except `svg`, which runs Graphviz.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from exporter.errors import QueryError

if TYPE_CHECKING:  # a diff is rendered without the traversal's imports (the schema)
    from exporter.changes import Change
    from exporter.query import Hop, Traversal

TRAVERSAL_FORMATS = ("text", "json", "mermaid", "dot", "svg")
DIFF_FORMATS = ("text", "json")
GRAPHVIZ_HINT = (
    "Graphviz is not installed: install it (Debian/Ubuntu: `apt install graphviz`, "
    "macOS: `brew install graphviz`) or use --format dot and render it elsewhere"
)


def traversal(result: Traversal, fmt: str) -> str:
    """The traversal in the requested format."""
    renderers = {"text": _text, "json": _json, "mermaid": mermaid, "dot": dot, "svg": svg}
    if fmt not in renderers:
        raise QueryError(f"unknown format {fmt!r}: use one of {', '.join(TRAVERSAL_FORMATS)}")
    return renderers[fmt](result)


def _job_label(hop: Hop) -> str:
    return f"{hop.deployment_name} ({hop.job_id})" if hop.deployment_name else hop.job_id


def _text(result: Traversal) -> str:
    lines = []
    for direction in result.directions:
        hops = [h for h in result.hops if h.direction == direction]
        lines.append(
            f"{direction} of {result.name} as of {result.as_of.isoformat()} "
            f"({result.level} level, {len(hops)} edges, depth <= {result.max_depth})"
        )
        if not hops:
            lines.append("  (nothing)")
        for hop in hops:
            other = hop.source_name if direction == "upstream" else hop.destination_name
            arrow = "<-" if direction == "upstream" else "->"
            near = hop.destination_name if direction == "upstream" else hop.source_name
            lines.append(
                f"  {hop.depth:>2} {'  ' * (hop.depth - 1)}{near} {arrow} {other}"
                f"  [job {_job_label(hop)}; {hop.namespace}]"
            )
    return "\n".join(lines)


def _json(result: Traversal) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)


def _nodes(result: Traversal) -> dict[str, str]:
    """Node name -> short identifier, in first-seen order, the queried name first."""
    ids: dict[str, str] = {result.name: "n0"}
    for hop in result.hops:
        for name in (hop.source_name, hop.destination_name):
            ids.setdefault(name, f"n{len(ids)}")
    return ids


def _edges(result: Traversal) -> list[tuple[str, str, str]]:
    """(source, destination, job label), each once, whichever direction reached it."""
    seen: dict[tuple[str, str, str], None] = {}
    for hop in result.hops:
        seen.setdefault((hop.source_name, hop.destination_name, _job_label(hop)), None)
    return list(seen)


def _mermaid_text(value: str) -> str:
    return value.replace('"', "#quot;")


def mermaid(result: Traversal) -> str:
    """A Mermaid flowchart, left to right, data flowing along the arrows."""
    ids = _nodes(result)
    lines = ["flowchart LR"]
    for name, node in ids.items():
        label = name.replace('"', "#quot;")
        lines.append(f'    {node}["{label}"]' + (":::focus" if node == "n0" else ""))
    for source, destination, job in _edges(result):
        lines.append(
            f'    {ids[source]} -->|"{job.replace(chr(34), "#quot;")}"| {ids[destination]}'
        )
    lines.append("    classDef focus stroke-width:3px")
    return "\n".join(lines)


def _dot_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(result: Traversal) -> str:
    """A Graphviz digraph, left to right."""
    ids = _nodes(result)
    lines = ["digraph lineage {", "    rankdir=LR;", "    node [shape=box, fontname=Helvetica];"]
    for name, node in ids.items():
        style = ", penwidth=3" if node == "n0" else ""
        lines.append(f"    {node} [label={_dot_quote(name)}{style}];")
    for source, destination, job in _edges(result):
        lines.append(f"    {ids[source]} -> {ids[destination]} [label={_dot_quote(job)}];")
    lines.append("}")
    return "\n".join(lines)


def svg(result: Traversal) -> str:
    """The DOT picture rendered by Graphviz's `dot`; a QueryError says how to get it if absent."""
    program = shutil.which("dot")
    if program is None:
        raise QueryError(GRAPHVIZ_HINT)
    done = subprocess.run(
        [program, "-Tsvg"], input=dot(result), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise QueryError(f"Graphviz failed: {done.stderr.strip()}")
    return done.stdout


# -- diffs ------------------------------------------------------------------------------------


def changes(items: Iterable[Change], fmt: str, header: str) -> str:
    """A diff's changes as text (one line each, grouped by kind) or JSON."""
    return "\n".join(change_lines(items, fmt, header))


def json_array(objects: Iterable[str]) -> Iterator[str]:
    """A JSON array of already encoded objects, one per line (a file that line tools can still
    take apart), each line made as its object arrives."""
    held: str | None = None  # each line waits for the next to know if a comma ends it
    for encoded in objects:
        if held is None:
            yield "["
        else:
            yield held + ","
        held = encoded
    if held is None:
        yield "[]"
    else:
        yield held
        yield "]"


def change_lines(items: Iterable[Change], fmt: str, header: str) -> Iterator[str]:
    """`changes` line by line, each made as its change arrives (a week is 100,000s of lines:
    they are written as the database sends them, never all held)."""
    if fmt == "json":
        # Encoded by pydantic-core (4x faster than the json module's C encoder on a week's
        # changes); imported here, as `diff --format json` never comes here and every command
        # imports this module (16 ms).
        from pydantic_core import to_json

        yield from json_array(to_json(item.to_dict(), fallback=str).decode() for item in items)
        return
    if fmt != "text":
        raise QueryError(f"unknown format {fmt!r}: use one of {', '.join(DIFF_FORMATS)}")
    yield header
    sign = {"added": "+", "removed": "-", "changed": "~"}
    counts = dict.fromkeys(("added", "removed", "changed"), 0)
    for item in items:
        counts[item.change] += 1
        line = f"  {sign[item.change]} {item.kind:<11} {item.namespace}: {item.name}"
        if item.change == "changed":
            details = "; ".join(
                f"{attr}: {_short(old)} -> {_short(new)}"
                for attr, (old, new) in sorted(item.changed_attributes().items())
            )
            line += f"  ({details})"
        yield line
    if not any(counts.values()):
        yield "  no changes"
    yield "  " + ", ".join(f"{n} {c}" for c, n in counts.items())


def _short(value: Any) -> str:
    shown = (
        json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else str(value)
    )
    return shown if len(shown) <= 80 else shown[:77] + "..."
