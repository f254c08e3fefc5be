"""Benchmark: multi-hop traversal as of a past instant on a large column-level graph.

Builds a layered lineage graph (default 12 layers x 100 tables x 40 columns; each column derives
from the same column of 1-2 tables of the layer before: about 65,000 column edges), writes it
through the real store as three runs with about 3% of edges changing between runs, then times
10-hop upstream traversals from columns of the last layer as of the middle run, through
`exporter.query.traverse` (the CLI's path) and, on PostgreSQL, the `lineage_upstream` function.

    .venv/bin/python bench/bench_query.py [--pg-url URL] [--sqlite] [--layers N] [--queries N]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, bindparam, create_engine, text

from exporter import database, migrate, store
from exporter.history import diff
from exporter.normalize import State
from exporter.query import traverse
from exporter.sqltypes import UtcDateTime

WS, NS = "bench-query", "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def table_name(layer: int, index: int) -> str:
    return f"cat.layer{layer:02d}.t{index:03d}"


def build_graph(args: argparse.Namespace, rng: random.Random) -> dict[tuple[str, str, str], None]:
    """Column edges (source column, destination column, job) of the layered graph."""
    edges: dict[tuple[str, str, str], None] = {}
    for layer in range(1, args.layers):
        for index in range(args.tables):
            sources = rng.sample(range(args.tables), rng.choice((1, 2)))
            job = f"job-{layer:02d}-{index:03d}"
            for column in range(args.columns):
                for source in sources:
                    edges[
                        (
                            f"{table_name(layer - 1, source)}.c{column:02d}",
                            f"{table_name(layer, index)}.c{column:02d}",
                            job,
                        )
                    ] = None
    return edges


def to_state(edges: dict[tuple[str, str, str], None]) -> State:
    state = State.empty()
    for source, destination, job in edges:
        state["column_edges"][(NS, source, "", destination, "", job)] = {}
        table_source, table_destination = source.rsplit(".", 1)[0], destination.rsplit(".", 1)[0]
        state["table_edges"][(NS, table_source, "", table_destination, "", job)] = {}
        state["jobs"][(NS, f"dep-{job}")] = {
            "job_id": job,
            "deployment_name": f"deployment {job}",
            "properties": {},
        }
    return state


def mutate(
    edges: dict[tuple[str, str, str], None], rng: random.Random, fraction: float
) -> dict[tuple[str, str, str], None]:
    """Drop `fraction` of the edges and rewire as many to other sources of the same layer."""
    kept = dict(edges)
    for edge in rng.sample(sorted(edges), int(len(edges) * fraction)):
        del kept[edge]
        source, destination, job = edge
        table, column = source.rsplit(".", 1)
        layer = table.split(".")[1]
        other = f"cat.{layer}.t{rng.randrange(100):03d}.{column}"
        kept[(other, destination, job)] = None
    return kept


def write_runs(engine: Engine, states: list[State]) -> list[datetime]:
    instants = []
    for number, state in enumerate(states):
        at = T0 + timedelta(days=number)
        started = time.perf_counter()
        run_id, now = store.start_run(engine, WS, at)
        with database.transaction(engine) as conn:
            changes = diff(state, store.load_current(conn, WS))
            store.apply_changes(conn, WS, run_id, now, changes)
            store.refresh_statistics(conn, changes.rows_added)
            outcome = store.RunOutcome("succeeded", 0, 0, 0, changes.rows_added, 0, None)
            store.finish_run(conn, run_id, at, outcome)
        print(
            f"  run {number}: {changes.rows_added} rows added, {changes.rows_closed} closed "
            f"in {time.perf_counter() - started:.1f} s"
        )
        instants.append(at)
    return instants


def time_queries(engine: Engine, names: list[str], as_of: datetime, depth: int) -> None:
    python_ms, function_ms, sizes = [], [], []
    function = text(
        "SELECT count(*) FROM lineage_upstream(CAST(:n AS text), CAST(:t AS timestamptz), :d)"
    ).bindparams(bindparam("t", type_=UtcDateTime))
    with engine.connect() as conn:
        traverse(conn, names[0], as_of=as_of, max_depth=depth)  # warm the cache
        for name in names:
            started = time.perf_counter()
            result = traverse(conn, name, as_of=as_of, max_depth=depth)
            python_ms.append((time.perf_counter() - started) * 1000)
            sizes.append(len(result.hops))
            if engine.dialect.name == "postgresql":
                started = time.perf_counter()
                count = conn.execute(function, {"n": name, "t": as_of, "d": depth}).scalar()
                function_ms.append((time.perf_counter() - started) * 1000)
                assert count == len({(h.depth, h.source_name, h.destination_name, h.job_id)
                                     for h in result.hops})  # fmt: skip
    print(
        f"  {depth}-hop upstream as of {as_of:%Y-%m-%d %H:%M} over {len(names)} columns: "
        f"edges reached median {statistics.median(sizes):.0f} (max {max(sizes)}); "
        f"exporter.query.traverse median {statistics.median(python_ms):.1f} ms, "
        f"p95 {_p95(python_ms):.1f} ms, max {max(python_ms):.1f} ms"
    )
    if function_ms:
        print(
            f"  lineage_upstream() median {statistics.median(function_ms):.1f} ms, "
            f"p95 {_p95(function_ms):.1f} ms, max {max(function_ms):.1f} ms"
        )


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def run(url: str, args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    migrate.upgrade(url)
    engine = database.make_engine(url)
    first = build_graph(args, rng)
    second = mutate(first, rng, 0.03)
    third = mutate(second, rng, 0.03)
    print(f"{engine.dialect.name}: {len(first)} column edges per run, {args.layers} layers")
    instants = write_runs(engine, [to_state(first), to_state(second), to_state(third)])
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT count(*) FROM column_edge_versions")).scalar()
    print(f"  column edge versions stored: {versions}")
    last_layer = args.layers - 1
    names = [
        f"{table_name(last_layer, rng.randrange(args.tables))}.c{rng.randrange(args.columns):02d}"
        for _ in range(args.queries)
    ]
    time_queries(engine, names, instants[1] + timedelta(hours=12), 10)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true", help="also run on SQLite")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--columns", type=int, default=40)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    name = "lineage_bench_query"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        run(admin.url.set(database=name).render_as_string(hide_password=False), args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
