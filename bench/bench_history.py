"""Benchmark: questions over a year of history, before and after the time indexes.

Builds a year of synthetic history directly into the schema (not through syncs: a year of
runs every 15 minutes is 35,040 syncs), at an earlier schema revision, times the questions,
upgrades to head with Alembic (timed: that is what an existing installation goes through), and
times them again. The history, written with COPY on PostgreSQL and executemany on SQLite:

- one workspace and namespace; a sync run every `--interval` minutes for `--days` days;
- `--deployments` deployments, each a job that reads table t(i) and writes table t(i+1) (one
  long chain, so a 10-hop traversal walks ten jobs), each table with `--columns` columns and
  each job `--column-edges` column edges (c_k of t(i) -> c_k of t(i+1));
- every column changes type every `--column-days` days and every column edge disappears for one
  run every `--edge-days` days, each at its own moment (an offset from its ID); tables, jobs,
  table edges and deployments keep one version all year.
- versions are written in the order syncs write them (`--layout time`, the default): by the run
  that opened them, with IDs in that order, so a week's versions lie together on disk as they
  do in a database the exporter filled; `--layout entity` writes each entity's versions
  together instead (the worst case for questions over time).

    .venv/bin/python bench/bench_history.py [--pg-url URL] [--sqlite] [--deployments N]
        [--days D] [--layout time|entity] [--before REV] [--repeat N] [--keep | --reuse URL]

Prints, per database and schema revision, each question's median time over `--repeat` runs
(after one warm-up), the database size and bytes per version row. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from measured import Measured, compile_package, run_measured
from sqlalchemy import Engine, bindparam, create_engine, inspect, text

from exporter import changes, migrate, query, store
from exporter.changes_json import json_changes
from exporter.dbapi import Connection
from exporter.sqltypes import UtcDateTime

WS, NS, CATALOG, DATABASE = "bench-history", "default-namespace", "hive", "warehouse"
T0 = datetime(2025, 12, 1, tzinfo=UTC)
TYPES = ("STRING", "BIGINT", "DECIMAL(10,2)", "TIMESTAMP(3)", "DOUBLE", "INT")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
VERSION_TABLES = (
    "column_versions",
    "column_edge_versions",
    "table_versions",
    "table_edge_versions",
    "job_versions",
    "deployment_versions",
)


# -- the year ---------------------------------------------------------------------------------


class Year:
    """The synthetic history's shape; each `*_rows` yields rows in column order."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.deployments = args.deployments
        self.columns = args.columns
        self.column_edges = args.column_edges
        self.interval = timedelta(minutes=args.interval)
        self.runs = int(timedelta(days=args.days) / self.interval)
        self.column_period = int(timedelta(days=args.column_days) / self.interval)
        self.edge_period = int(timedelta(days=args.edge_days) / self.interval)
        self.time_order = args.layout == "time"

    def at(self, run: int) -> datetime:
        """When run `run` (0-based) started."""
        return T0 + run * self.interval

    def table(self, i: int) -> str:
        return f"t{i:05d}"

    def run_rows(self) -> Iterator[tuple[Any, ...]]:
        for r in range(self.runs):
            started = self.at(r)
            yield (r + 1, WS, started, started + timedelta(seconds=20), "succeeded", 2)

    def column_version_rows(self) -> Iterator[tuple[Any, ...]]:
        entities = range(1, (self.deployments + 1) * self.columns + 1)
        versions = _versions(entities, 7919, self.column_period, self.runs, self.time_order)
        for vid, (fk, k, start, end) in enumerate(versions, start=1):
            kind = TYPES[(fk + k) % len(TYPES)]
            yield (
                vid, self.at(start), None if end is None else self.at(end), start + 1,
                fk, f"col-{fk}", kind, kind, True, f"column {fk}",
            )  # fmt: skip

    def column_edge_version_rows(self) -> Iterator[tuple[Any, ...]]:
        entities = range(1, self.deployments * self.column_edges + 1)
        versions = _versions(entities, 104729, self.edge_period, self.runs, self.time_order, gap=1)
        for vid, (fk, _, start, end) in enumerate(versions, start=1):
            yield (vid, self.at(start), None if end is None else self.at(end), start + 1, fk)


def _periods(seed: int, period: int, runs: int, gap: int = 0) -> list[tuple[int, int | None]]:
    """[start, end) run ranges of one entity: a change (or a gap of `gap` runs) every `period`
    runs from its own offset; the last range is open."""
    periods: list[tuple[int, int | None]] = []
    start = 0
    boundary = _first_boundary(seed, period)
    while boundary < runs:
        periods.append((start, boundary))
        start = boundary + gap
        boundary += period
    if start < runs:
        periods.append((start, None))
    return periods


def _first_boundary(seed: int, period: int) -> int:
    offset = seed % period
    return offset if offset > 0 else period


def _versions(
    entities: range, multiplier: int, period: int, runs: int, time_order: bool, gap: int = 0
) -> Iterator[tuple[int, int, int, int | None]]:
    """(entity, version index, start run, end run or None) of every version of `entities`
    (entity e's seed is e * multiplier), in entity order or in the order syncs write them: by
    the run that opened them."""
    if not time_order:
        for fk in entities:
            for k, (start, end) in enumerate(_periods(fk * multiplier, period, runs, gap)):
                yield fk, k, start, end
        return
    first = {fk: _first_boundary(fk * multiplier, period) for fk in entities}
    by_residue: dict[int, list[int]] = {}
    for fk, boundary in first.items():
        by_residue.setdefault(boundary % period, []).append(fk)
    for fk in entities:  # the first run opens every entity's first version
        yield fk, 0, 0, first[fk] if first[fk] < runs else None
    for start in range(1, runs):
        boundary = start - gap  # versions after the first open `gap` runs after a boundary
        for fk in by_residue.get(boundary % period, ()):
            if first[fk] <= boundary:
                end = boundary + period
                k = (boundary - first[fk]) // period + 1
                yield fk, k, start, end if end < runs else None


def identity_rows(year: Year) -> dict[str, tuple[str, list[tuple[Any, ...]]]]:
    """The small tables: identities, and the one-version-all-year entities."""
    d, c = year.deployments, year.columns
    start = year.at(0)
    deployments = [(i, 1, f"dep-{i:05d}") for i in range(1, d + 1)]
    tables = [(i + 1, 1, year.table(i), "") for i in range(d + 1)]
    columns = [
        (t * c + k + 1, t + 1, f"c{k:03d}") for t in range(d + 1) for k in range(c)
    ]  # fmt: skip
    qualified = f"{CATALOG}.{DATABASE}."
    table_edges = [
        (i, 1, qualified + year.table(i - 1), "", qualified + year.table(i), "", f"job-{i:05d}")
        for i in range(1, d + 1)
    ]
    column_edges = [
        (
            (i - 1) * year.column_edges + k + 1, 1,
            f"{qualified}{year.table(i - 1)}.c{k:03d}", "",
            f"{qualified}{year.table(i)}.c{k:03d}", "", f"job-{i:05d}",
        )
        for i in range(1, d + 1)
        for k in range(year.column_edges)
    ]  # fmt: skip
    edge_columns = "id, namespace_id, source_name, source_owner, destination_name, "
    edge_columns += "destination_owner, job_id"
    return {
        "workspaces": ("id", [(WS,)]),
        "namespaces": ("id, workspace_id, name", [(1, WS, NS)]),
        "catalogs": ("id, namespace_id, name", [(1, 1, CATALOG)]),
        "databases": ("id, catalog_id, name", [(1, 1, DATABASE)]),
        "deployments": ("id, namespace_id, deployment_id", deployments),
        "tables": ("id, database_id, name, owner_deployment_id", tables),
        "columns": ("id, table_id, name", columns),
        "table_edges": (edge_columns, table_edges),
        "column_edges": (edge_columns, column_edges),
        "table_versions": (
            "id, valid_from, valid_to, run_id, table_fk, table_uid, connector, is_temporary, "
            "with_options, properties",
            [(i, start, None, 1, i, f"tbl-{i}", "paimon", False, "{}", "{}") for i, *_ in tables],
        ),
        "job_versions": (
            "id, valid_from, valid_to, run_id, deployment_fk, job_id, deployment_name, "
            "properties, job_status",
            [(i, start, None, 1, i, f"job-{i:05d}", n, "{}", "RUNNING") for i, _, n in deployments],
        ),
        "table_edge_versions": (
            "id, valid_from, valid_to, run_id, edge_fk",
            [(i, start, None, 1, i) for i, *_ in table_edges],
        ),
        "deployment_versions": (
            "id, valid_from, valid_to, run_id, deployment_fk, deployment_name, has_job",
            [(i, start, None, 1, i, n, True) for i, _, n in deployments],
        ),
    }


# -- loading ----------------------------------------------------------------------------------


def load(engine: Engine, year: Year) -> dict[str, int]:
    """Write the year; returns the rows of each version table."""
    big = {
        "sync_runs": (
            "id, workspace_id, started_at, finished_at, status, rows_version",
            year.run_rows(),
        ),
        "column_versions": (
            "id, valid_from, valid_to, run_id, column_fk, column_uid, column_type, "
            "column_native_type, nullable, description",
            year.column_version_rows(),
        ),
        "column_edge_versions": (
            "id, valid_from, valid_to, run_id, edge_fk",
            year.column_edge_version_rows(),
        ),
    }
    small = identity_rows(year)
    tables = {**{k: (cols, iter(rows)) for k, (cols, rows) in small.items()}, **big}
    order = [*list(small)[:9], "sync_runs", *list(small)[9:], "column_versions"]
    order.append("column_edge_versions")
    counts: dict[str, int] = {}
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            # Rows made here satisfy their foreign keys by construction: skip checking 66M of them
            # one by one (this session only; needs a superuser, as the bench's admin URL is).
            with raw.cursor() as cur:
                cur.execute("SET session_replication_role = replica")
        for table in order:
            columns, rows = tables[table]
            counts[table] = _write(raw, engine.dialect.name, table, columns, rows)
        raw.commit()
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cur:
                cur.execute("RESET session_replication_role")
    finally:
        raw.close()
    if inspect(engine).has_table("run_change_counts"):  # what each of the runs would have written
        settle(engine)  # the counting plans need the tables' statistics, as a live database has
        with engine.begin() as conn:
            for low in range(1, year.runs + 1, 1000):  # as 0010 counts them: bounded sorts
                store.record_change_counts(conn, low, low + 999)
    settle(engine)
    return {t: counts[t] for t in VERSION_TABLES}


def settle(engine: Engine) -> None:
    """Statistics, and on PostgreSQL the visibility map that index-only scans read: what
    autovacuum gives a database that has been running for a year."""
    command = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(command))


def _write(raw: Any, dialect: str, table: str, columns: str, rows: Iterator[Any]) -> int:
    count = 0
    if dialect == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    placeholders = ", ".join("?" for _ in columns.split(","))
    cur = raw.cursor()
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(tuple(_sqlite_value(v) for v in row))
        if len(batch) == 50_000:
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", batch)
            count += len(batch)
            batch.clear()
    cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", batch)
    return count + len(batch)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


# -- the questions ----------------------------------------------------------------------------


def questions(
    engine: Engine,
    year: Year,
    config: Path,
    processes: dict[str, Measured],
    at_head: bool,
    skip_snapshots: bool = False,
) -> dict[str, Callable[[], object]]:
    mid = year.at(year.runs // 2)
    week, day = (mid, mid + timedelta(days=7)), (mid, mid + timedelta(days=1))
    mid_run = year.runs // 2 + 1
    hour = (
        "date_trunc('hour', changed_at)"
        if engine.dialect.name == "postgresql"
        else "substr(changed_at, 1, 13)"
    )
    times = {"a": UtcDateTime(), "b": UtcDateTime()}

    def rows(sql: str, **params: Any) -> Callable[[], object]:
        statement = text(sql).bindparams(
            *(bindparam(k, type_=times[k]) for k in params if k in times)
        )

        def ask() -> object:
            with engine.connect() as conn:
                return len(conn.execute(statement, params).fetchall())

        return ask

    last_run_columns = """
        SELECT c.change, c.entity_name, c.old_value, c.new_value FROM lineage_changes c
        WHERE c.entity_kind = 'column'
          AND c.run_id = (SELECT MAX(run_id) FROM lineage_sync_runs WHERE status <> 'running')"""
    deepest = f"{CATALOG}.{DATABASE}.{year.table(year.deployments)}.c000"

    def traverse() -> object:
        with engine.connect() as conn:
            found = query.traverse(conn, deepest, as_of=mid, direction="upstream", max_depth=10)
        return len(found.hops)

    def diff_in_process() -> object:
        with engine.connect() as conn:
            return len(changes.diff(conn, week[0], week[1]))

    def diff_encoded() -> object:
        with Connection(url) as conn:
            return sum(1 for _ in json_changes(conn, week[0], week[1]))

    def in_child(name: str, command: list[str]) -> ProcessAnswer:
        """Run a command as its own process; keep its measures (peak RSS, the machine's busy
        CPU); its JSON answer's size, and the process's own time (not the bench's reading of its
        answer: 353 MB at 10,000)."""
        with tempfile.TemporaryFile() as out:
            env = {k: v for k, v in os.environ.items() if k != "LINEAGE_EXPORTER_DATABASE_URL"}
            run = run_measured(command, stdout=out, env=env)
            if run.returncode != 0:
                raise RuntimeError(f"{command[:4]} failed")
            processes[name] = run
            out.seek(0)
            return ProcessAnswer(len(json.load(out)), run.seconds)

    iso = [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in week]
    url = engine.url.render_as_string(hide_password=False)
    # What `diff` did before 0009 (and still answers any revision): two whole snapshots compared.
    two_snapshots = f"""
import json, sys
from datetime import datetime
from sqlalchemy import create_engine
from exporter.changes import diff_snapshots, snapshot
engine = create_engine({url!r})
start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in sys.argv[1:3])
with engine.connect() as conn:
    found = diff_snapshots(snapshot(conn, start), snapshot(conn, end))
print(json.dumps([c.to_dict() for c in found], default=str))
"""
    cli = [sys.executable, "-m", "exporter", "--config", str(config), "diff"]
    asked: dict[str, Callable[[], object]] = {}
    if not skip_snapshots:
        asked["diff over a week: 2 snapshots (process)"] = lambda: in_child(
            "2 snapshots", [sys.executable, "-c", two_snapshots, *iso]
        )
    asked["diff over a week: windowed (query)"] = diff_in_process
    if at_head:  # the CLI checks that the schema is current; the counts are 0010's
        asked["diff over a week: JSON encoded by the database (query)"] = diff_encoded
        asked["diff over a week: CLI (process)"] = lambda: in_child(
            "CLI", [*cli, "--from", iso[0], "--to", iso[1], "--format", "json"]
        )
        asked["counts: one week by kind and change"] = rows(
            "SELECT entity_kind, change, SUM(changes) FROM lineage_change_counts "
            "WHERE changed_at >= :a AND changed_at < :b GROUP BY entity_kind, change",
            a=week[0],
            b=week[1],
        )
        asked["counts: one day by hour"] = rows(
            f"SELECT {hour}, SUM(changes) FROM lineage_change_counts "
            f"WHERE changed_at >= :a AND changed_at < :b GROUP BY {hour}",
            a=day[0],
            b=day[1],
        )

    return {
        "feed: one week by kind and change": rows(
            "SELECT entity_kind, change, COUNT(*) FROM lineage_changes "
            "WHERE changed_at >= :a AND changed_at < :b GROUP BY entity_kind, change",
            a=week[0],
            b=week[1],
        ),
        "feed: one day by hour": rows(
            f"SELECT {hour}, COUNT(*) FROM lineage_changes "
            f"WHERE changed_at >= :a AND changed_at < :b GROUP BY {hour}",
            a=day[0],
            b=day[1],
        ),
        "feed: one run (WHERE run_id = N)": rows(
            "SELECT * FROM lineage_changes WHERE run_id = :n", n=mid_run
        ),
        "README: last run's column changes": rows(last_run_columns),
        "count(*) of lineage_columns_current": rows("SELECT COUNT(*) FROM lineage_columns_current"),
        **asked,
        "10-hop upstream as of mid-year": traverse,
    }


@dataclass(frozen=True)
class ProcessAnswer:
    """A question asked of a command: its answer's size and the process's own seconds."""

    size: int
    seconds: float

    def __str__(self) -> str:
        return str(self.size)


def timed(ask: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The median seconds of `repeat` askings after a warm-up (a process's own time when the
    question is a process), and the answer."""
    answer = ask()  # warm-up (and the answer)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        asked = ask()
        elapsed = time.perf_counter() - started
        seconds.append(asked.seconds if isinstance(asked, ProcessAnswer) else elapsed)
    return statistics.median(seconds), answer


def sizes(engine: Engine, path: Path | None) -> tuple[int, int]:
    """(database bytes, version tables' bytes with their indexes)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            tables = sum(
                conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar() or 0
                for t in VERSION_TABLES
            )
            return int(total or 0), int(tables)
    assert path is not None
    size = path.stat().st_size
    return size, size


# -- one database -------------------------------------------------------------------------------


def bench(url: str, label: str, args: argparse.Namespace, path: Path | None) -> None:
    year = Year(args)
    if args.build_only or args.reuse:
        args.before = "head"
    engine = create_engine(url)
    started = time.perf_counter()
    if args.reuse:  # a year kept by an earlier run, built with the same shape arguments
        with engine.connect() as conn:
            counts = {
                t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0)
                for t in VERSION_TABLES
            }
    else:
        migrate.upgrade(url, args.before)
        counts = load(engine, year)
    versions = sum(counts.values())
    print(
        f"\n{label}: {year.runs:,} runs, {args.deployments:,} deployments, "
        + ", ".join(f"{t} {n:,}" for t, n in counts.items())
        + (" (kept)" if args.reuse else f" (written in {time.perf_counter() - started:.0f} s)"),
        flush=True,
    )
    config = Path(tempfile.mkdtemp()) / "bench.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[[workspaces]]\nid = "{WS}"\n'
        f'endpoint = "http://127.0.0.1:9"\nnamespaces = ["{NS}"]\n'
    )
    results: dict[str, list[str]] = {}
    if args.build_only:
        return
    for revision in dict.fromkeys([args.before, "head"]):
        if revision == "head" and revision != args.before:
            started = time.perf_counter()
            migrate.upgrade(url, "head")
            settle(engine)
            print(f"  upgrade to head: {time.perf_counter() - started:.1f} s", flush=True)
        processes: dict[str, Measured] = {}
        asked = questions(engine, year, config, processes, revision == "head", args.no_snapshots)
        for name, ask in asked.items():
            seconds, answer = timed(ask, args.repeat)
            results.setdefault(name, []).append(f"{seconds * 1000:9.1f} ms ({answer} rows)")
            if isinstance(answer, ProcessAnswer) and answer.size:  # what a change costs
                per_change = f"{seconds / answer.size * 1e6:9.2f} us"
                results.setdefault(f"{name}: per change", []).append(per_change)
        total, tables = sizes(engine, path)
        results.setdefault("database size", []).append(f"{total / 1e6:9.0f} MB")
        results.setdefault("bytes per version row", []).append(f"{tables / versions:9.0f} B")
        for name in ("2 snapshots", "CLI"):
            run = processes.get(name)
            rss = f"{run.peak_rss_mb:9.0f} MB" if run else "(not asked)"
            results.setdefault(f"diff peak RSS: {name}", []).append(rss)
            # Every process's CPU during the last asking (the diff's and the database's
            # workers'): what two cores give in the figure's time bounds what can be asked.
            busy = f"{run.machine_busy_seconds:9.1f} core-s" if run else "(not asked)"
            results.setdefault(f"diff machine busy: {name}", []).append(busy)
    header = "  ".join(f"{r:>22}" for r in dict.fromkeys([args.before, "head"]))
    print(f"  {'question':40} {header}")
    for name, figures in results.items():
        figures = [""] * (len(header.split()) - len(figures)) + figures  # asked at head only
        print(f"  {name:40} " + "  ".join(f"{f:>22}" for f in figures), flush=True)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=PG_ADMIN, help="an admin URL (a database is made)")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--sqlite", action="store_true", help="also on SQLite")
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--interval", type=float, default=15, help="minutes between runs")
    parser.add_argument("--columns", type=int, default=80, help="columns per table")
    parser.add_argument("--column-edges", type=int, default=20, help="column edges per job")
    parser.add_argument("--column-days", type=float, default=5)
    parser.add_argument("--edge-days", type=float, default=10)
    parser.add_argument(
        "--layout",
        choices=("time", "entity"),
        default="time",
        help="write versions by opening run, as syncs do (default), or entity by entity",
    )
    parser.add_argument("--before", default="0008", help="the revision to compare head with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-snapshots", action="store_true", help="skip the diff from two whole snapshots"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--build-only", action="store_true", help="write the year at head, time nothing (--keep)"
    )
    parser.add_argument(
        "--reuse",
        metavar="URL",
        help="ask the questions (at head) of a year kept by --keep, given the same shape "
        "arguments (--deployments, --days, ...) it was built with; builds nothing",
    )
    args = parser.parse_args()
    compile_package()
    if args.reuse:
        dialect = "SQLite" if args.reuse.startswith("sqlite") else "PostgreSQL"
        path = Path(args.reuse.removeprefix("sqlite:///")) if dialect == "SQLite" else None
        bench(args.reuse, dialect, args, path)
        return
    if not args.no_pg:
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        name = f"bench_history_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            bench(url, "PostgreSQL", args, None)
        finally:
            if args.keep:
                print(f"kept: {url}")
            else:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder if not args.keep else tempfile.mkdtemp()) / "history.db"
            bench(f"sqlite:///{path}", "SQLite", args, path)
            if args.keep:
                print(f"kept: sqlite:///{path}")


if __name__ == "__main__":
    main()
