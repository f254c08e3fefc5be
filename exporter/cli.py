"""The `lineage-exporter` command: one subcommand per user task, no business logic here.

A command imports the modules it runs (the configuration's models, the API client, the daemon,
the sync, the store, the traversal) when it runs: `diff` then starts with SQLAlchemy Core and
the database URL of the configuration file only.

Exit codes: 0 success, 1 a failure (some workspace, namespace or job failed), 2 a usage or
configuration error (nothing was contacted).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from exporter import __version__, render
from exporter.collector import imports_frozen
from exporter.errors import ApiContext, ConfigError, CredentialsError, ExporterError, QueryError
from exporter.logs import run_context, setup_logging
from exporter.questions import DIRECTIONS, parse_instant

if TYPE_CHECKING:
    from exporter.config import Settings
    from exporter.dbapi import Connection as BareConnection

log = logging.getLogger("exporter")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m exporter`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (ConfigError, CredentialsError, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExporterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lineage-exporter",
        description="Export Flink lineage from Alibaba Cloud Realtime Compute into SQL tables "
        "with history.",
        epilog="Exit codes: 0 success, 1 something failed, 2 usage or configuration error.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML configuration (default: $LINEAGE_EXPORTER_CONFIG, else config/exporter.toml)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line, each with workspace and run_id",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_db(commands)
    _add_sync(commands)
    _add_run(commands)
    _add_check(commands)
    _add_lineage(commands)
    _add_diff(commands)
    _add_ui(commands)
    _add_fetch(commands)
    _add_simulate(commands)
    return parser


def _settings(args: argparse.Namespace, *, optional: bool = False) -> Settings:
    from exporter.config import load_settings
    from exporter.config_file import resolve_config_path

    return load_settings(resolve_config_path(args.config), optional=optional)


def _query_settings(args: argparse.Namespace) -> Settings:
    """The settings of a command that reads only the database: no workspace needed, and no
    file either when LINEAGE_EXPORTER_DATABASE_URL is set."""
    return _settings(args, optional=True)


# -- db ---------------------------------------------------------------------------------------


def _add_db(commands: Any) -> None:
    cmd = commands.add_parser(
        "db",
        help="create or migrate the database schema (Alembic)",
        description="Alembic owns the schema: `db upgrade` creates or migrates it to the latest "
        "revision; `db current` prints the database's revision; `db downgrade REV` goes back.",
    )
    actions = cmd.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = actions.add_parser("upgrade", help="migrate to REV (default: head, the latest)")
    up.add_argument("revision", nargs="?", default="head", metavar="REV")
    up.set_defaults(handler=run_db_upgrade)
    current = actions.add_parser("current", help="print the database's schema revision")
    current.set_defaults(handler=run_db_current)
    down = actions.add_parser("downgrade", help="migrate back to REV (e.g. -1, or base)")
    down.add_argument("revision", metavar="REV")
    down.set_defaults(handler=run_db_downgrade)
    redact = actions.add_parser(
        "redact",
        help="redact secrets in what is already stored, with the configured [redaction] keys "
        "(after adding extra_keys)",
    )
    redact.set_defaults(handler=run_db_redact)


def run_db_upgrade(args: argparse.Namespace) -> int:
    from exporter import migrate
    from exporter.database import make_engine

    settings = _query_settings(args)
    url = settings.database.url
    migrate.upgrade(url, args.revision, redactor=settings.redaction.redactor)
    print(f"database at revision {migrate.current_revision(make_engine(url))}")
    return EXIT_OK


def run_db_current(args: argparse.Namespace) -> int:
    from exporter import migrate
    from exporter.database import make_engine

    current = migrate.current_revision(make_engine(_query_settings(args).database.url))
    head = migrate.head_revision()
    state = "up to date" if current == head else f"behind, latest is {head}"
    print(f"{current or 'none (run `lineage-exporter db upgrade`)'} ({state})")
    return EXIT_OK


def run_db_redact(args: argparse.Namespace) -> int:
    """`db redact`: one transaction over every stored version and payload."""
    from exporter import migrate
    from exporter.database import make_engine, transaction
    from exporter.store import scrub_secrets

    settings = _query_settings(args)
    engine = make_engine(settings.database.url)
    migrate.require_current(engine)
    with transaction(engine) as conn:
        changed = scrub_secrets(conn, settings.redaction.redactor)
    print("redacted: " + ", ".join(f"{table} {rows}" for table, rows in changed.items()))
    return EXIT_OK


def run_db_downgrade(args: argparse.Namespace) -> int:
    from exporter import migrate
    from exporter.database import make_engine

    url = _query_settings(args).database.url
    migrate.downgrade(url, args.revision)
    print(f"database at revision {migrate.current_revision(make_engine(url)) or 'base'}")
    return EXIT_OK


# -- sync / run / check -----------------------------------------------------------------------


def _add_sync(commands: Any) -> None:
    cmd = commands.add_parser(
        "sync",
        help="one sync pass of every workspace (or one), then exit",
        description="Fetch lineage and store what changed. Prints one line per workspace. Exits 0 "
        "when everything succeeded, 1 when any namespace or job failed (all that succeeded is "
        "stored).",
    )
    cmd.add_argument("--workspace", metavar="ID", help="only this workspace")
    cmd.set_defaults(handler=run_sync)


def run_sync(args: argparse.Namespace) -> int:
    """`sync`: one pass; credentials and schema are checked before any API call."""
    with imports_frozen():
        from exporter import migrate
        from exporter.api.credentials import open_source
        from exporter.database import make_engine
        from exporter.progress import FetchProgress
        from exporter.sync import sync_workspace

    settings = _settings(args)
    workspaces = (
        [settings.workspace(args.workspace)] if args.workspace else settings.require_workspaces()
    )
    credentials = {w.id: open_source(w) for w in workspaces}
    engine = make_engine(settings.database.url)
    migrate.require_current(engine)
    all_ok = True
    for workspace in workspaces:
        progress = FetchProgress(workspace.id, sys.stderr)
        summary = sync_workspace(
            engine,
            workspace,
            credentials=credentials[workspace.id],
            progress=progress,
            retention=settings.retention,
            redactor=settings.redaction.redactor,
            live_statuses=settings.lineage.live_statuses,
        )
        if summary.status != "skipped":
            with run_context(workspace.id, summary.run_id):
                progress.close()
        print(summary.line(), flush=True)
        for error in summary.errors:
            print(f"  error: {error}", file=sys.stderr)
        all_ok &= summary.ok
    return EXIT_OK if all_ok else EXIT_FAILURE


def _add_run(commands: Any) -> None:
    cmd = commands.add_parser(
        "run",
        help="the daemon: sync every workspace on the configured schedule until stopped",
        description="Runs until SIGTERM or SIGINT (Ctrl-C); an in-flight sync is rolled back or "
        "finished, never half-written. Waits (with backoff) while the database is unreachable.",
    )
    cmd.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="serve /healthz and /metrics on PORT (overrides [health] port)",
    )
    cmd.set_defaults(handler=run_daemon)


def run_daemon(args: argparse.Namespace) -> int:
    """`run`: the daemon, until a signal stops it."""
    with imports_frozen():  # a year of full collections would scan the modules' objects
        from exporter.daemon import Daemon, wait_for_database
        from exporter.database import make_engine

    settings = _settings(args)
    if args.health_port is not None:
        health = settings.health.model_copy(update={"port": args.health_port})
        settings = settings.model_copy(update={"health": health})
    engine = make_engine(settings.database.url, concurrent_syncs=len(settings.require_workspaces()))
    stop = install_stop_signals()
    if not wait_for_database(engine, stop):
        return EXIT_OK
    Daemon(settings, engine, stop).run()
    return EXIT_OK


def install_stop_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (a second signal exits at once)."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    return stop


def _add_check(commands: Any) -> None:
    cmd = commands.add_parser(
        "check",
        help="check config, credentials, database and migrations; exit 1 if anything is wrong",
    )
    cmd.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from exporter import migrate
    from exporter.api.credentials import describe_source, open_source
    from exporter.config import load_settings
    from exporter.config_file import resolve_config_path
    from exporter.database import make_engine

    path = resolve_config_path(args.config)
    settings = load_settings(path)
    results: list[tuple[str, str | None]] = [(f"config {path}", None)]
    for workspace in settings.require_workspaces():
        what = f"credentials for workspace {workspace.id}"
        try:
            results.append((f"{what}: {describe_source(open_source(workspace))}", None))
        except CredentialsError as exc:
            results.append((what, str(exc)))
    engine = make_engine(settings.database.url)
    try:
        current = migrate.current_revision(engine)
        results.append((f"database {engine.url.render_as_string(hide_password=True)}", None))
        head = migrate.head_revision()
        problem = (
            None
            if current == head
            else (f"at {current or 'none'}, latest is {head}: run `lineage-exporter db upgrade`")
        )
        results.append(("migrations", problem))
    except ExporterError as exc:
        results.append(("database", str(exc)))
    for what, problem in results:
        print(
            f"{'ok  ' if problem is None else 'FAIL'} {what}" + (f": {problem}" if problem else "")
        )
    return EXIT_OK if all(problem is None for _, problem in results) else EXIT_FAILURE


# -- fetch ----------------------------------------------------------------------------------


# -- lineage / diff ---------------------------------------------------------------------------

INSTANT_HELP = (
    "an ISO-8601 timestamp or date (UTC unless it says otherwise), `now`, or 7d, 12h, 30m"
)


def _add_lineage(commands: Any) -> None:
    cmd = commands.add_parser(
        "lineage",
        help="what feeds NAME / what NAME feeds, across jobs, as of an instant",
        description="Multi-hop lineage of a table (catalog.database.table) or a column "
        "(catalog.database.table.column) as it was at an instant, each hop with the job that "
        "carries it. Tables follow table edges, columns follow column edges; cycles are handled.",
    )
    cmd.add_argument("name", metavar="NAME")
    cmd.add_argument("--as-of", default="now", metavar="T", help=INSTANT_HELP)
    way = cmd.add_mutually_exclusive_group()
    for direction in DIRECTIONS:
        way.add_argument(
            f"--{direction}",
            dest="direction",
            action="store_const",
            const=direction,
            help=f"follow edges {direction}" + (" (default)" if direction == "upstream" else ""),
        )
    cmd.add_argument("--depth", type=int, default=10, metavar="N", help="most hops (default 10)")
    cmd.add_argument("--workspace", metavar="ID", help="only this workspace")
    cmd.add_argument("--namespace", metavar="NAME", help="only this namespace")
    cmd.add_argument("--format", default="text", choices=render.TRAVERSAL_FORMATS)
    cmd.add_argument("--live", action="store_true", help=LIVE_HELP)
    cmd.set_defaults(handler=run_lineage, direction="upstream")


def _query_engine(args: argparse.Namespace) -> Any:
    """The engine of `lineage` and `diff`, which read only the database URL of the
    configuration (its other sections are neither needed nor validated)."""
    from exporter import migrate
    from exporter.config_file import database_url, resolve_config_path
    from exporter.database import make_engine

    engine = make_engine(database_url(resolve_config_path(args.config)))
    migrate.require_current(engine)
    return engine


def run_lineage(args: argparse.Namespace) -> int:
    """`lineage`: one recursive query per direction, printed in the chosen format."""
    from exporter import query

    as_of = parse_instant(args.as_of, datetime.now(UTC))
    engine = _query_engine(args)
    with engine.connect() as conn:
        result = query.traverse(
            conn,
            args.name,
            as_of=as_of,
            direction=args.direction,
            max_depth=args.depth,
            namespace=args.namespace,
            workspace_id=args.workspace,
            live_only=args.live,
        )
    print(render.traversal(result, args.format))
    return EXIT_OK


LIVE_HELP = (
    "only edges whose carrying job was live at the instant (its status one of [lineage] "
    "live_statuses, RUNNING by default)"
)


def _add_diff(commands: Any) -> None:
    cmd = commands.add_parser(
        "diff",
        help="what appeared, disappeared or changed between two instants",
        description="Tables, columns (old -> new type and nullability), table and column edges and "
        "jobs (changed properties) that differ between the lineage at --from and at --to.",
    )
    cmd.add_argument("--from", dest="start", required=True, metavar="T1", help=INSTANT_HELP)
    cmd.add_argument("--to", dest="end", default="now", metavar="T2", help="default: now")
    cmd.add_argument("--workspace", metavar="ID", help="only this workspace")
    cmd.add_argument("--format", default="text", choices=render.DIFF_FORMATS)
    cmd.add_argument(
        "--live",
        action="store_true",
        help="compare the live lineage: an edge counts at an instant only while its job was live "
        "then (so a job that stopped running shows its edges as removed)",
    )
    cmd.set_defaults(handler=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    """`diff`: written as the database sends it (a week's 100,000s of changes are never all
    held); as JSON, encoded by the database and read without SQLAlchemy."""
    now = datetime.now(UTC)
    start, end = parse_instant(args.start, now), parse_instant(args.end, now)
    lines = (_json_diff if args.format == "json" else _text_diff)(args, start, end)
    write_lines(lines, sys.stdout)
    return EXIT_OK


# Lines per write: about 100 KB of a week's JSON. Below the C allocator's threshold for mapping
# fresh memory (128 KB), so each write's text reuses memory the last one freed: in batches of
# 5,000 lines (2 MB), `diff` at 10,000 deployments faulted in 700 MB of new pages for its 353 MB
# of output (179,000 page faults against 11,000; 3.86 -> 3.65 s).
WRITE_BATCH = 250


def write_lines(lines: Iterable[str], out: TextIO, batch: int = WRITE_BATCH) -> None:
    """Each line and a newline, `batch` lines to a write: written one by one, a week's 800,000
    lines of JSON went out 8 KB a system call, and took a fifth of `diff`'s time at 10,000
    deployments (3.9 s against 4.7 s to a file)."""
    remaining = iter(lines)
    while chunk := list(islice(remaining, batch)):
        chunk.append("")  # the last line's newline
        out.write("\n".join(chunk))


def _json_diff(args: argparse.Namespace, start: datetime, end: datetime) -> Iterator[str]:
    from exporter.changes_json import json_changes

    with _bare_connection(args) as conn:
        yield from render.json_array(json_changes(conn, start, end, args.workspace, args.live))


def _text_diff(args: argparse.Namespace, start: datetime, end: datetime) -> Iterator[str]:
    from exporter.changes import iter_diff

    header = f"changes from {start.isoformat()} to {end.isoformat()}"
    with _bare_connection(args) as conn:
        changes = iter_diff(conn, start, end, args.workspace, live_only=args.live)
        yield from render.change_lines(changes, args.format, header)


def _bare_connection(args: argparse.Namespace) -> BareConnection:
    """A driver connection (no SQLAlchemy) to the database of the configuration, its schema
    checked: `diff` starts in a fifth of a second."""
    from exporter.config_file import database_url, resolve_config_path
    from exporter.dbapi import Connection

    conn = Connection(database_url(resolve_config_path(args.config)))
    try:
        conn.require_current()
    except BaseException:
        conn.close()
        raise
    return conn


def _add_ui(commands: Any) -> None:
    cmd = commands.add_parser(
        "ui",
        help="the lineage explorer in the browser: search, graph with a time slider, runs",
        description="Serve read-only pages over the database (no workspace needed): search "
        "tables and columns, draw lineage as of any instant and slide through the sync runs, "
        "compare two instants, a table's columns and history, every run. Binds 127.0.0.1 "
        "unless told otherwise; another address needs [ui] token_env.",
    )
    cmd.add_argument("--host", help="address to bind (default: [ui] host, 127.0.0.1)")
    cmd.add_argument("--port", type=int, help="port (default: [ui] port, else 8080)")
    cmd.set_defaults(handler=run_ui)


def run_ui(args: argparse.Namespace) -> int:
    """`ui`: serve the explorer until Ctrl-C / SIGTERM."""
    from exporter import migrate
    from exporter.database import make_engine
    from exporter.web.server import Explorer

    settings = _query_settings(args)
    engine = make_engine(settings.database.url)
    migrate.require_current(engine)
    explorer = Explorer(engine, settings.ui, args.host, args.port)
    print(f"lineage explorer at {explorer.url} (Ctrl-C stops it)", flush=True)
    explorer.run()
    return EXIT_OK


def _add_fetch(commands: Any) -> None:
    cmd = commands.add_parser(
        "fetch",
        help="write the raw API responses of a workspace to JSON files (a support tool)",
        description="Call ListDeployments, ListJobs and GetLineageInfo for a workspace and write "
        "every response body as received (connector secrets redacted, as in the database) "
        "under --out.",
    )
    cmd.add_argument("--workspace", required=True, metavar="ID")
    cmd.add_argument(
        "--namespace",
        action="append",
        metavar="N",
        help="only this namespace (repeatable; default: the configured ones)",
    )
    cmd.add_argument("--out", required=True, type=Path, metavar="DIR")
    cmd.set_defaults(handler=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    """`fetch`: raw responses to files; exit 1 if any namespace or job failed."""
    from exporter.api.client import FlinkClient
    from exporter.api.credentials import open_source
    from exporter.extract import fetch_workspace

    settings = _settings(args)
    workspace = settings.workspace(args.workspace)
    credentials = open_source(workspace)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    redactor = settings.redaction.redactor
    with FlinkClient(
        workspace, credentials, recorder=_file_recorder(out), redactor=redactor
    ) as client:
        results = fetch_workspace(client, args.namespace)
    failures = 0
    for result in results:
        failed = len(result.failed) + (0 if result.listed else 1)
        failures += failed
        print(
            f"{workspace.id}/{result.namespace}: {len(result.deployments)} deployments, "
            f"{sum(d.succeeded for d in result.deployments)} lineage fetched, "
            f"{result.without_job} without a job, {failed} failed"
        )
        for error in [result.listing_error, *(d.error for d in result.failed)]:
            if error is not None:
                print(f"  error: {error}", file=sys.stderr)
    print(f"written to {out}")
    return EXIT_FAILURE if failures else EXIT_OK


def _file_recorder(out: Path) -> Callable[[str, ApiContext, dict[str, Any], Any], None]:
    def record(action: str, context: ApiContext, params: dict[str, Any], body: Any) -> None:
        folder = out / _safe(context.namespace or "_")
        if action == "ListDeployments":
            name = f"deployments.page-{params.get('pageIndex', 1)}.json"
        else:
            folder = folder / _safe(context.deployment or "_")
            name = (
                f"jobs.page-{params.get('pageIndex', 1)}.json"
                if action == "ListJobs"
                else f"lineage.{_safe(context.job or '_')}.json"
            )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(body, indent=2, ensure_ascii=False), "utf-8")

    return record


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip()) or "_"


# -- simulate -------------------------------------------------------------------------------


def _add_simulate(commands: Any) -> None:
    cmd = commands.add_parser(
        "simulate",
        help="run the built-in API simulator (for the demo, tests and benchmarks)",
        description="Serve ListDeployments, ListJobs and GetLineageInfo for a generated workspace "
        "that changes over time. Requests must be signed with the printed credentials.",
    )
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=8085)
    cmd.add_argument("--workspace", default="sim-workspace", metavar="ID")
    cmd.add_argument("--seed", type=int, default=7)
    cmd.add_argument("--size", choices=["demo", "bench"], default="demo")
    cmd.add_argument("--namespaces", type=int, help="override the number of namespaces")
    cmd.add_argument("--deployments", type=int, help="override deployments per namespace")
    cmd.add_argument(
        "--change-every",
        metavar="DURATION",
        help="apply a round of random lineage changes this often, e.g. 20s",
    )
    cmd.add_argument(
        "--latency", default="0s", metavar="DURATION", help="how long each response takes"
    )
    cmd.add_argument("--throttle-rate", type=float, default=0.0)
    cmd.add_argument("--error-rate", type=float, default=0.0)
    cmd.add_argument("--malformed-rate", type=float, default=0.0)
    cmd.add_argument("--slow-rate", type=float, default=0.0)
    cmd.add_argument(
        "--bad-rate",
        type=float,
        default=0.0,
        help="share of jobs whose lineage is an unusual body (NUL, over-long names, deep "
        "nesting, invalid UTF-8, ...; simulator/poison.py), the same job for the same body",
    )
    cmd.add_argument(
        "--sts-lifetime",
        default="1h",
        metavar="DURATION",
        help="how long the STS credentials it issues last (credentials URI, AssumeRole, "
        "AssumeRoleWithOIDC, ECS metadata), e.g. 30s to watch them rotate",
    )
    cmd.add_argument(
        "--sts-only",
        action="store_true",
        help="the API accepts only the STS credentials it issued, not the fixed AccessKey",
    )
    cmd.set_defaults(handler=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    """`simulate`: serve until SIGINT/SIGTERM."""
    from dataclasses import replace

    from exporter.config import parse_duration
    from exporter.daemon import wait_or_stop
    from exporter.simulator import Faults, Simulator, World, WorldSize

    size = WorldSize.benchmark() if args.size == "bench" else WorldSize()
    if args.namespaces:
        size = replace(size, namespaces=args.namespaces)
    if args.deployments:
        size = replace(size, deployments_per_namespace=args.deployments)
    faults = Faults(
        latency=parse_duration(args.latency).total_seconds(),
        throttle_rate=args.throttle_rate,
        server_error_rate=args.error_rate,
        malformed_rate=args.malformed_rate,
        slow_rate=args.slow_rate,
        bad_rate=args.bad_rate,
    )
    world = World(args.workspace, seed=args.seed, size=size)
    sim = Simulator(
        world,
        host=args.host,
        port=args.port,
        faults=faults,
        seed=args.seed,
        sts_lifetime=parse_duration(args.sts_lifetime).total_seconds(),
        sts_only=args.sts_only,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sim.start()
    print(
        f"simulator serving workspace {world.workspace_id} at {sim.url} "
        f"({world.deployment_count()} deployments in {len(world.namespaces)} namespaces: "
        f"{', '.join(world.namespaces)})",
        flush=True,
    )
    print(
        f"sign requests with ALIBABA_CLOUD_ACCESS_KEY_ID={sim.access_key_id} "
        f"ALIBABA_CLOUD_ACCESS_KEY_SECRET={sim.access_key_secret}"
        + (" (only to assume a role: --sts-only)" if args.sts_only else ""),
        flush=True,
    )
    print(
        f"or with STS credentials: ALIBABA_CLOUD_CREDENTIALS_URI={sim.credentials_uri}, "
        f"or sts_endpoint = {sim.url!r} for roles",
        flush=True,
    )
    interval = parse_duration(args.change_every).total_seconds() if args.change_every else None
    try:
        while not wait_or_stop(stop, interval):
            for change in world.advance():
                log.info("simulated change: %s", change)
    finally:
        sim.stop()
    return EXIT_OK
