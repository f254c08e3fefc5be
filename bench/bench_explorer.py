"""Benchmark: the explorer drawing a 500-node lineage graph in headless Chromium.

Writes a layered graph through the real store (`--layers` x `--width` tables, each fed by two
tables of the layer before, and one sink fed by the whole last layer: about 490 nodes and 950
edges by default), serves the explorer, and opens the sink's upstream graph (depth = layers + 1)
in Debian's chromium, `--repeat` times. Prints the /lineage.json answer time, the page's own
layout-and-draw time (dagre + SVG, `data-draw-ms`), and the time from navigation to the drawn
graph. Asserts nothing.

    .venv/bin/python bench/bench_explorer.py [--layers 10] [--width 50] [--repeat 5] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from exporter import database, migrate, store
from exporter.config import UiSettings
from exporter.history import diff
from exporter.normalize import State, job_attributes
from exporter.web.server import Explorer

WS, NS = "bench-explorer", "default-namespace"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def layered_state(layers: int, width: int, rng: random.Random) -> State:
    state = State.empty()

    def table(layer: int, i: int) -> str:
        return f"c.l{layer:02d}.t{i:03d}"

    edges = [
        (table(layer - 1, parent), table(layer, i), f"job-{layer}-{i}")
        for layer in range(1, layers)
        for i in range(width)
        for parent in rng.sample(range(width), 2)
    ]
    edges += [(table(layers - 1, i), "c.sink.all", "job-sink") for i in range(width)]
    for source, destination, job in edges:
        state["table_edges"][(NS, source, "", destination, "", job)] = {}
        state["jobs"][(NS, f"dep-{job}")] = {
            "job_id": job,
            "deployment_name": f"deployment {job}",
            "properties": {},
            **job_attributes({"status": {"currentJobStatus": "RUNNING"}}, {}),
        }
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--width", type=int, default=62)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'explorer.db'}"
    migrate.upgrade(url)
    engine = database.make_engine(url)
    run_id, now = store.start_run(engine, WS, datetime.now(UTC))
    with database.transaction(engine) as conn:
        changes = diff(
            layered_state(args.layers, args.width, random.Random(7)), store.load_current(conn, WS)
        )
        store.apply_changes(conn, WS, run_id, now, changes)
        store.refresh_statistics(conn, changes.rows_added)
        store.finish_run(conn, run_id, now, store.RunOutcome("succeeded", 0, 0, 0, 0, 0, None))
    explorer = Explorer(engine, UiSettings(), port=0).start()
    query = f"name=c.sink.all&direction=upstream&depth={args.layers + 1}"
    answer = httpx.get(explorer.url + "lineage.json?" + query).json()
    print(f"graph: {len(answer['nodes'])} nodes, {len(answer['edges'])} edges")
    json_ms, draw_ms, page_ms = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        for _ in range(args.repeat + 1):  # the first is a warm-up
            started = time.perf_counter()
            httpx.get(explorer.url + "lineage.json?" + query).raise_for_status()
            json_ms.append((time.perf_counter() - started) * 1000)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            started = time.perf_counter()
            page.goto(explorer.url + "lineage?" + query)
            page.wait_for_selector("#graph[data-rendered]", timeout=60_000)
            page_ms.append((time.perf_counter() - started) * 1000)
            draw_ms.append(float(page.get_attribute("#graph", "data-draw-ms") or "nan"))
            assert page.locator("g.node").count() == len(answer["nodes"])
            page.close()
        browser.close()
    explorer.stop()
    for name, values in (("lineage.json", json_ms), ("layout + draw (in the page)", draw_ms),
                         ("navigation to drawn graph", page_ms)):  # fmt: skip
        rest = values[1:]
        spread = f"(min {min(rest):.0f}, max {max(rest):.0f})"
        print(f"  {name:30} median {statistics.median(rest):7.0f} ms  {spread}")


if __name__ == "__main__":
    main()
