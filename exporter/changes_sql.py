"""The SQL of `diff`, as text: what each entity kind is, and the queries that find what changed
between two instants (no driver, no SQLAlchemy: both `exporter.changes`, over a SQLAlchemy
connection, and `exporter.changes_json`, over a bare driver connection, ask them).

A diff reads only the versions that opened or closed between the two instants (through the time
indexes of migration 0009), not two whole snapshots: an entity whose versions neither begin nor
end in the window is the same at both ends, and one that has a version boundary in it has its
version at each end among those versions (versions of one entity do not overlap, so the one
valid at the start ends inside the window and the one valid at the end begins inside it).

Each kind's query is a body (one row per entity that differs, with the namespace's rank and the
key as columns) wrapped twice: as rows (`change_rows_sql`) and as JSON lines encoded by the
database (`change_json_sql`), both in the same order. Parameters are named (`:lo`, `:hi`, `:t1`,
`:t2`, `:ws`); only constants of this module are spliced into the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

# SQLite's planner has no histograms: it takes `valid_from <= T` (an as-of question, true of half
# a year's rows) for a selective range and would walk lineage through the time index instead of
# the endpoint index. On SQLite the time indexes cover only queries that say this (always true)
# term, as lineage_changes and `diff` do; PostgreSQL's planner needs no such help.
TIME_INDEX_GUARD = "run_id IS NOT NULL"

# SQLite compares JSON as text: this function (registered on every SQLite connection) tells
# whether two texts hold the same JSON, as Python's comparison of the values would.
SQLITE_JSON_EQUAL = "lineage_json_equal"


def same_json(first: str | None, second: str | None) -> bool:
    """Whether two JSON texts (or NULLs) hold equal values: SQLITE_JSON_EQUAL's body."""
    if first is None or second is None:
        return first is second
    return bool(json.loads(first) == json.loads(second))


# How PostgreSQL plans diff's queries (a bare reader's session, or SET LOCAL in a caller's
# transaction). They read ranges of the time indexes and take tenths of a second: compiling each
# one (the JIT, about 35 ms a query) costs more than it saves; and with the default
# random_page_cost (4, for spinning disks) the planner read a year of 10,000 deployments'
# column versions whole (15 GB, in parallel) rather than a week's 330 MB through the index:
# 11.1 -> 6.5 s for the week's column changes.
READER_SETTINGS = {"jit": "off", "random_page_cost": "1.1"}

# kind -> (view, key columns, display-name SQL, {attribute: (column, type)})
SNAPSHOT: dict[str, tuple[str, str, str, dict[str, tuple[str, str]]]] = {
    "job": (
        "lineage_jobs_history",
        "deployment_id",
        "COALESCE(deployment_name, deployment_id)",
        {
            "job_id": ("job_id", "text"),
            "deployment_name": ("deployment_name", "text"),
            "properties": ("properties", "json"),
            # As lineage_changes shows them (times are in the views, not in change values).
            "status": ("job_status", "text"),
            "engine_version": ("engine_version", "text"),
            "execution_mode": ("execution_mode", "text"),
            "creator": ("job_creator", "text"),
            "deployment_description": ("deployment_description", "text"),
            "deployment_labels": ("deployment_labels", "json"),
            "deployment_target": ("deployment_target", "text"),
            "deployment_creator": ("deployment_creator", "text"),
            "deployment_modifier": ("deployment_modifier", "text"),
        },
    ),
    "table": (
        "lineage_tables_history",
        "qualified_name, owner_deployment_id",
        "qualified_name",
        {
            "table_id": ("table_id", "text"),
            "connector": ("connector", "text"),
            "is_temporary": ("is_temporary", "bool"),
            "with": ("with_options", "json"),
            "properties": ("properties", "json"),
            "node_id": ("node_id", "text"),
        },
    ),
    "column": (
        "lineage_columns_history",
        "qualified_name, owner_deployment_id",
        "qualified_name",
        {
            "column_id": ("column_id", "text"),
            "type": ("column_type", "text"),
            "native_type": ("column_native_type", "text"),
            "nullable": ("nullable", "bool"),
            "description": ("description", "text"),
            "creator": ("column_creator", "text"),
            "modifier": ("column_modifier", "text"),
        },
    ),
    **{
        f"{level}_edge": (
            f"lineage_{level}_edges_history",
            "source_name, source_owner, destination_name, destination_owner, job_id",
            "source_name || ' -> ' || destination_name",
            {"job_id": ("job_id", "text")},
        )
        for level in ("table", "column")
    },
}
ENTITY_KINDS = tuple(SNAPSHOT)

# (JSON key, SQL expression, its type: text, bool, or json for JSON already encoded)
_Member = tuple[str, str, str]
_Encoder = Callable[[list[_Member]], str]  # members -> the SQL of a JSON object


def key_width(kind: str) -> int:
    """How many columns a row of `kind` starts with to key its entity (workspace, namespace and
    the kind's key columns)."""
    return 2 + len(SNAPSHOT[kind][1].split(","))


def attributes(kind: str) -> dict[str, tuple[str, str]]:
    """A kind's attributes: name -> (its column in the history view, its type)."""
    return SNAPSHOT[kind][3]


def change_rows_sql(
    kind: str, scoped: bool, live_only: bool, dialect: str, namespaces: int, parallel: bool = False
) -> str:
    """Rows (workspace, namespace, key..., name, the attributes at each end, present at each
    end) of the entities of `kind` that differ between the two instants, in key order. An
    entity kind's ends are `lo` and `hi` (the earlier and the later instant); an edge kind's
    are `t1` and `t2` (as asked). `namespaces`: how many namespaces `diff_params` ranks.
    `parallel`: read as a plain query, which PostgreSQL may run in parallel (not through a
    server-side cursor, which it never runs in parallel)."""
    body, keys, width = _body(kind, scoped, live_only, dialect, namespaces, parallel)
    columns = ", ".join(f"q.c{i}" for i in range(width))
    return f"{body.ctes}SELECT {columns}\nFROM (\n{body.select}\n) q\n{_key_order(keys)}"


def change_json_sql(
    kind: str,
    scoped: bool,
    live_only: bool,
    backwards: bool,
    dialect: str,
    namespaces: int,
    parallel: bool = False,
) -> str:
    """The changes of `kind` as the JSON objects `Change.to_dict` gives, one text per row, in
    the order of `change_rows_sql`, encoded by the database (compact; a JSON attribute as the
    database writes it). `backwards`: the diff goes from the later instant to the earlier."""
    body, keys, _ = _body(kind, scoped, live_only, dialect, namespaces, parallel)
    names = list(attributes(kind))
    first = key_width(kind) + 1  # the first attribute's column
    if kind.endswith("_edge"):
        old, new = f"q.c{first + 2}", f"q.c{first + 3}"  # present at t1, at t2
        old_at, new_at = [first], [first + 1]  # the job ID, twice
        types = ["text"]
    else:
        count = len(names)
        old, new = f"q.c{first + 2 * count}", f"q.c{first + 2 * count + 1}"  # at lo, at hi
        old_at = list(range(first, first + count))
        new_at = list(range(first + count, first + 2 * count))
        types = [typ for _, typ in attributes(kind).values()]
        if backwards:
            old, new, old_at, new_at = new, old, new_at, old_at
    # As JSON already: what is the same for many rows is not encoded for each of them.
    change = (
        "CASE WHEN {} = 0 THEN '\"added\"' WHEN {} = 0 THEN '\"removed\"' ELSE '\"changed\"' END"
    )

    def line(encode: _Encoder) -> str:
        return encode(
            [
                ("kind", _quoted(json.dumps(kind)), "json"),
                ("workspace_id", "q.ws_json", "json"),
                ("namespace", "q.ns_json", "json"),
                ("name", f"q.c{first - 1}", "text"),
                ("change", change.format(old, new), "json"),
                ("old", _object(encode, names, old_at, types, old), "json"),
                ("new", _object(encode, names, new_at, types, new), "json"),
            ]
        )

    if dialect == "sqlite":
        encoded = line(_json_sqlite)
    else:
        texts = [f"q.c{first - 1}"] + [
            f"q.c{i}"
            for i, typ in zip(old_at + new_at, types + types, strict=True)
            if typ == "text"
        ]
        encoded = (
            f"CASE WHEN {_plain(texts)} THEN {line(partial(_json_postgresql, plain=True))}\n"
            f"    ELSE {line(_json_postgresql)} END"
        )
    where = ""
    if dialect == "sqlite" and not kind.endswith("_edge"):
        # SQLite compares JSON as text: skip what differs as text only.
        same = " AND ".join(
            f"{SQLITE_JSON_EQUAL}(q.c{a}, q.c{b})" if typ == "json" else f"q.c{a} IS q.c{b}"
            for a, b, typ in zip(old_at, new_at, types, strict=True)
        )
        where = f"WHERE NOT ({old} = 1 AND {new} = 1 AND {same})\n"
    return f"{body.ctes}SELECT {encoded}\nFROM (\n{body.select}\n) q\n{where}{_key_order(keys)}"


def _object(
    encode: _Encoder, names: list[str], at: list[int], types: list[str], present: str
) -> str:
    """A JSON object of the attributes in columns `at` where `present` is 1, else JSON null."""
    members = [(name, f"q.c{i}", typ) for name, i, typ in zip(names, at, types, strict=True)]
    return f"CASE WHEN {present} = 1 THEN {encode(members)} END"


def _json_postgresql(members: list[_Member], plain: bool = False) -> str:
    """A compact JSON object spelled as one `||` chain in which each value carries the text that
    follows it (`","native_type":` is one constant, not three pieces): each `||` is a function
    call for every row, and a week at 10,000 deployments is 800,000 rows (the expression alone,
    in one process: 1.67 -> 1.47 s). json_build_object puts spaces around each colon; concat()
    looks up each argument's output function for every row. NULL values, and a NULL object,
    become JSON null. `plain`: text values are quoted as they are, for rows that `_plain` says
    hold nothing JSON escapes."""
    keys = [json.dumps(key) for key, _, _ in members]
    follows = [f",{key}:" for key in keys[1:]] + ["}"]
    pieces = [_quoted("{" + keys[0] + ":")]
    for (_, expression, typ), after in zip(members, follows, strict=True):
        null = _quoted("null" + after)
        if typ == "json":  # as text (`jsonb || text` would join two JSON values)
            value = f"COALESCE(({expression})::text || {_quoted(after)}, {null})"
        elif typ == "bool":  # to_json's lookup of the type, for one of two answers
            true, false = _quoted("true" + after), _quoted("false" + after)
            value = f"CASE WHEN {expression} THEN {true} WHEN NOT {expression} THEN {false} "
            value += f"ELSE {null} END"
        elif plain:
            value = f"""COALESCE('"' || {expression} || {_quoted('"' + after)}, {null})"""
        else:
            value = f"COALESCE(to_json({expression})::text || {_quoted(after)}, {null})"
        pieces.append(value)
    return "(" + " || ".join(pieces) + ")"


# What JSON escapes in a string (to_json: control characters, quote, backslash); PostgreSQL's
# text holds no NUL.
_ESCAPED = '[\\x01-\\x1f"\\\\]'


def _plain(texts: list[str]) -> str:
    """Whether none of the text values `texts` holds a character JSON escapes: such a row's
    strings are quoted as they are (a week at 10,000 deployments is 800,000 rows of 13 strings;
    to_json of each took a third of the query), others go through to_json."""
    joined = " || ".join(f"COALESCE({text}, '')" for text in texts)
    return f"({joined}) !~ {_quoted(_ESCAPED)}"


def _json_sqlite(members: list[_Member]) -> str:
    """json_object, compact; JSON held as text and 0/1 booleans go through json() (a NULL stays
    NULL: JSON null)."""
    values = []
    for key, expression, typ in members:
        if typ == "bool":
            expression = f"json(CASE {expression} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
        elif typ == "json":
            expression = f"json({expression})"
        values.append(f"{_quoted(key)}, {expression}")
    return "json_object(" + ", ".join(values) + ")"


def _quoted(value: str) -> str:
    """A SQL string literal of a constant of this module."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Body:
    ctes: str  # `WITH ...` ahead of the whole statement, or ""
    select: str  # columns c0..c{n-1} (the row), then `rank`, k0..k{m-1} (the order)


def _body(
    kind: str, scoped: bool, live_only: bool, dialect: str, namespaces: int, parallel: bool
) -> tuple[_Body, int, int]:
    """A kind's body, how many key columns order it, and how many columns a row has."""
    if kind.endswith("_edge"):
        return _edge_body(kind.removesuffix("_edge"), live_only, scoped, dialect, namespaces)
    return _entity_body(kind, scoped, dialect, namespaces, parallel)


def _collate(dialect: str) -> str:
    """The collation that compares text as Python does: byte order (SQLite's default)."""
    return ' COLLATE "C"' if dialect == "postgresql" else ""


def _key_order(keys: int) -> str:
    """ORDER BY the namespace's rank (`_ranked_namespaces`), then the key columns after
    workspace and namespace (`_keyed`: collated as Python orders their strings)."""
    return "ORDER BY q.rank, " + ", ".join(f"q.k{i}" for i in range(keys))


def diff_params(
    start: datetime, end: datetime, workspace_id: str | None, namespace_ids: list[int]
) -> dict[str, Any]:
    """The parameters of a diff's queries: its window (`lo`, `hi`), its ends as asked (`t1`,
    `t2`), the workspace (`ws`) and the namespaces' ranks (`namespace_ids` in the order of
    `namespace_order_sql`)."""
    window = {"lo": min(start, end), "hi": max(start, end), "t1": start, "t2": end}
    return {**window, "ws": workspace_id, **_ranks(namespace_ids)}


def namespace_order_sql(dialect: str) -> str:
    """The namespaces' IDs in the order Python gives (workspace ID, name), for `diff_params`."""
    collate = _collate(dialect)
    return f"SELECT id FROM namespaces ORDER BY workspace_id{collate}, name{collate}"  # noqa: S608


def _ranks(namespace_ids: list[int]) -> dict[str, int]:
    """The parameters that give each namespace its rank (`:ns0`, `:ns1`, ... in order)."""
    return {f"ns{rank}": namespace_id for rank, namespace_id in enumerate(namespace_ids)}


def _ranked_namespaces(dialect: str, namespaces: int) -> str:
    """A join giving each namespace `n` its rank `nr.rank` in the order Python gives (workspace
    ID, name; bound by `diff_params`), and its workspace ID and name as JSON: a diff then sorts
    by one integer, not by two strings that are equal in nearly every comparison (on PostgreSQL a
    week's column query: 0.6 -> 0.5 s). Plain expressions, not a window function: PostgreSQL
    may then run the whole query in parallel. A namespace made since the ranks were asked
    comes after the others."""
    quote = "json_quote({})" if dialect == "sqlite" else "to_json({})::text"
    whens = " ".join(f"WHEN :ns{rank} THEN {rank}" for rank in range(namespaces))
    rank = f"CASE id {whens} ELSE {namespaces} END" if namespaces else "0"
    return f"""JOIN (SELECT id, {rank} AS rank,
        {quote.format("workspace_id")} AS ws_json, {quote.format("name")} AS ns_json
        FROM namespaces) nr ON nr.id = n.id"""  # noqa: S608 - constants only


def _numbered(expressions: list[str]) -> str:
    """`expr AS c0, expr AS c1, ...`: a row's columns by position."""
    return ",\n       ".join(f"{e} AS c{i}" for i, e in enumerate(expressions))


def _ordered_by(keys: list[str], dialect: str) -> str:
    """The body's columns after the row's: the namespace's rank and encoded names, and the
    key columns that order the rows."""
    return f"nr.rank AS rank, nr.ws_json, nr.ns_json, {_keyed(keys, dialect)}"


def _keyed(keys: list[str], dialect: str) -> str:
    """`key AS k0, ...`: the key columns that order a kind's rows, compared as Python compares
    their strings (by code point: the bytes of UTF-8 sort the same, PostgreSQL's "C" collation
    and SQLite's default compare bytes)."""
    return ", ".join(f"({key.strip()}){_collate(dialect)} AS k{i}" for i, key in enumerate(keys))


def in_window(v: str, dialect: str) -> str:
    """A version that began or ended in the window (lo, hi]; on SQLite with the term that lets
    it use its time indexes (TIME_INDEX_GUARD)."""
    began, ended = _window_branches(v, dialect)
    return f"(({began}) OR ({ended}))"


def _window_branches(v: str, dialect: str) -> tuple[str, str]:
    """(began in the window, ended in it): asked as two queries, each one index range (SQLite
    would scan the whole table for their OR)."""
    guard = f" AND {v}{TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    return (
        f"{v}valid_from > :lo AND {v}valid_from <= :hi{guard}",
        f"{v}valid_to > :lo AND {v}valid_to <= :hi{guard}",
    )


_VALID_AT = "({v}valid_from <= :{t} AND ({v}valid_to IS NULL OR {v}valid_to > :{t}))"


def _present(valid: str) -> str:
    return f"CASE WHEN {valid} THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class _Versioned:
    """Where a kind's versions are and how an entity (`x`, its ID) gets its key and name: what
    the kind's history view joins, for a diff that pairs versions by entity ID before naming."""

    versions: str
    fk: str
    joins: str  # from the entity ID (`{x}`) to namespaces `n`
    key: str  # after workspace and namespace, as in SNAPSHOT
    name: str  # `{v}` prefixes the shown version's columns (at the later end, else the earlier)
    renamed: dict[str, str]  # a view's column -> the version table's, where they differ


# From a row holding a table ID ({table}) to its table, database, catalog and namespace.
TABLE_CHAIN = """JOIN tables t ON t.id = {table}
    JOIN databases db ON db.id = t.database_id
    JOIN catalogs c ON c.id = db.catalog_id
    JOIN namespaces n ON n.id = c.namespace_id"""
_TABLE_NAME = "c.name || '.' || db.name || '.' || t.name"
_VERSIONED = {
    "job": _Versioned(
        "job_versions",
        "deployment_fk",
        "JOIN deployments d ON d.id = {x}\n    JOIN namespaces n ON n.id = d.namespace_id",
        "d.deployment_id",
        "COALESCE({v}deployment_name, d.deployment_id)",
        {},
    ),
    "table": _Versioned(
        "table_versions",
        "table_fk",
        TABLE_CHAIN.format(table="{x}"),
        f"{_TABLE_NAME}, t.owner_deployment_id",
        _TABLE_NAME,
        {"table_id": "table_uid"},
    ),
    "column": _Versioned(
        "column_versions",
        "column_fk",
        "JOIN columns col ON col.id = {x}\n    " + TABLE_CHAIN.format(table="col.table_id"),
        f"{_TABLE_NAME} || '.' || col.name, t.owner_deployment_id",
        f"{_TABLE_NAME} || '.' || col.name",
        {"column_id": "column_uid"},
    ),
}


def namespace_joins(kind: str, entity: str) -> str:
    """The joins from the ID of an entity of `kind` (`entity`, an SQL expression) to its
    namespace `n`."""
    if kind.endswith("_edge"):
        return f"JOIN {kind}s e ON e.id = {entity}\n    JOIN namespaces n ON n.id = e.namespace_id"
    return _VERSIONED[kind].joins.format(x=entity)


def _entity_body(
    kind: str, scoped: bool, dialect: str, namespaces: int, parallel: bool
) -> tuple[_Body, int, int]:
    """Rows (key, name, attributes at the earlier end `lo`, at the later end `hi`, present at
    `lo`, at `hi`) of the entities of `kind` whose version at one end differs from the other's.

    The version at `lo` of an entity that changed ends inside the window, and the one at `hi`
    begins inside it (versions of one entity do not overlap): each end is one range of a time
    index. The two are paired by entity ID (narrow keys: a hash join), and only the entities
    that differ are named.
    """
    spec = _VERSIONED[kind]
    columns = [spec.renamed.get(column, column) for column, _ in attributes(kind).values()]
    json_columns = {spec.renamed.get(c, c) for c, typ in attributes(kind).values() if typ == "json"}

    def differs(c: str) -> str:
        if dialect == "postgresql":  # jsonb compares values
            return f"a.{c} IS DISTINCT FROM b.{c}"
        a, b = (f"CAST({v}.{c} AS TEXT)" if c in json_columns else f"{v}.{c}" for v in "ab")
        return f"{a} IS NOT {b}"

    def listed(v: str) -> str:
        return ", ".join(f"{v}.{c} AS {v}_{c}" for c in columns)

    guard = f" AND {TIME_INDEX_GUARD}" if dialect == "sqlite" else ""
    # Table and column names are the constants above; values are bound parameters.
    at_lo, at_hi = (
        f"SELECT {spec.fk} AS x, {', '.join(columns)} FROM {spec.versions}\n"  # noqa: S608
        f"        WHERE {where}{guard}"
        for where in (
            "valid_to > :lo AND valid_to <= :hi AND valid_from <= :lo",
            "valid_from > :lo AND valid_from <= :hi AND (valid_to IS NULL OR valid_to > :hi)",
        )
    )
    at_hi_name, at_lo_name = spec.name.format(v="p.b_"), spec.name.format(v="p.a_")
    shown = at_hi_name  # a table's or column's name is its entity's, the same at both ends
    if at_hi_name != at_lo_name:  # a job's is its deployment's name at the time
        shown = f"CASE WHEN p.at_hi = 1 THEN {at_hi_name} ELSE {at_lo_name} END"
    keys = spec.key.split(",")
    row = [
        "n.workspace_id",
        "n.name",
        *keys,
        shown,
        *(f"p.{side}_{c}" for side in "ab" for c in columns),
        "p.at_lo",
        "p.at_hi",
    ]
    # Paired by a LEFT JOIN each way, each end is read twice (`_paired`). SQLite would flatten
    # them into the join and read the earlier one without its index; PostgreSQL would make each
    # a table of its own, which no parallel worker can read.
    full_join = dialect == "postgresql" and not parallel
    materialized = {"sqlite": " MATERIALIZED", "postgresql": " NOT MATERIALIZED"}[dialect]
    if full_join:
        materialized = ""  # read once each: PostgreSQL inlines them
    ctes = f"""WITH a AS{materialized} (
    {at_lo}
), b AS{materialized} (
    {at_hi}
)
"""
    select = f"""SELECT {_numbered(row)}, {_ordered_by(keys, dialect)}
FROM (
    {_paired(listed("a"), listed("b"), " OR ".join(differs(c) for c in columns), full_join)}
) p
    {spec.joins.format(x="p.x")}
    {_ranked_namespaces(dialect, namespaces)}
{"WHERE n.workspace_id = :ws" if scoped else ""}"""  # noqa: S608
    return _Body(ctes, select), len(keys), len(row)


def _paired(at_lo: str, at_hi: str, differ: str, full_join: bool) -> str:
    """The versions at `lo` (`a`) and at `hi` (`b`) paired by entity ID, where they differ: a
    full join, or the same spelled as a LEFT JOIN each way. SQLite indexes a materialized side
    for a LEFT JOIN but never for a FULL one (a scan of one side per row of the other).
    PostgreSQL 15 runs no full join in parallel but runs the two LEFT JOINs so (a week at
    10,000 deployments: 6.5 -> 4.5 s in the database); read serially, through a cursor, the full
    join is the faster (0.60 against 0.77 s at 1,000)."""
    pair = f"""SELECT COALESCE(a.x, b.x) AS x, {at_lo}, {at_hi},
           CASE WHEN a.x IS NULL THEN 0 ELSE 1 END AS at_lo,
           CASE WHEN b.x IS NULL THEN 0 ELSE 1 END AS at_hi"""
    if full_join:
        return f"""{pair}
    FROM a FULL JOIN b ON b.x = a.x
    WHERE a.x IS NULL OR b.x IS NULL OR {differ}"""
    return f"""{pair}
    FROM a LEFT JOIN b ON b.x = a.x
    WHERE b.x IS NULL OR {differ}
    UNION ALL
    {pair}
    FROM b LEFT JOIN a ON a.x = b.x
    WHERE a.x IS NULL"""


_LIVE_AT = """EXISTS (SELECT 1 FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE jv.job_id = e.job_id AND jd.namespace_id = e.namespace_id
      AND {valid} AND jv.job_status IN (SELECT status FROM live_job_statuses))"""
# An edge's key after its workspace and namespace.
_EDGE_NAMES = "e.source_name, e.source_owner, e.destination_name, e.destination_owner, e.job_id"
# Jobs whose status (or anything else) changed in the window: their edges' liveness may have.
_CHANGED_JOBS = """SELECT DISTINCT jd.namespace_id, jv.job_id
    FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    WHERE {window}"""


def _edge_body(
    level: str, live_only: bool, scoped: bool, dialect: str, namespaces: int
) -> tuple[_Body, int, int]:
    """Rows (key, name, job ID twice, present at the start, at the end) of the edges present at
    one end only. Read from the version table itself (the history view's instants are
    computed, so its rows cannot be found by index); with `live_only` also the edges of jobs
    that changed in the window, each present at an instant only while its job was live then."""

    def present(t: str) -> str:
        valid = _VALID_AT.format(v="v.", t=t)
        if live_only:
            valid += " AND " + _LIVE_AT.format(valid=_VALID_AT.format(v="jv.", t=t))
        return _present(valid)

    scope = f" AND ({_VALID_AT.format(v='v.', t='t1')} OR {_VALID_AT.format(v='v.', t='t2')})"
    if scoped:
        scope += " AND n.workspace_id = :ws"
    rows = f"e.id, {present('t1')} AS at_start, {present('t2')} AS at_end"
    # Only constants (the level, the fragments above) are spliced; values are parameters.
    versions = "\n    UNION ALL\n".join(
        f"""SELECT {rows}
    FROM {level}_edge_versions v
        JOIN {level}_edges e ON e.id = v.edge_fk
        JOIN namespaces n ON n.id = e.namespace_id
    WHERE {branch}{scope}"""  # noqa: S608
        for branch in _window_branches("v.", dialect)
    )
    if live_only:
        versions += f"""
    UNION ALL
    SELECT {rows}
    FROM ({_CHANGED_JOBS.format(window=in_window("jv.", dialect))}) cj
        JOIN {level}_edges e ON e.namespace_id = cj.namespace_id AND e.job_id = cj.job_id
        JOIN {level}_edge_versions v ON v.edge_fk = e.id
        JOIN namespaces n ON n.id = e.namespace_id
    WHERE v.valid_from <= :hi AND (v.valid_to IS NULL OR v.valid_to > :lo){scope}"""  # noqa: S608
    keys = _EDGE_NAMES.split(",")
    row = [
        "n.workspace_id",
        "n.name",
        *keys,
        "e.source_name || ' -> ' || e.destination_name",
        "e.job_id",
        "e.job_id",
        "p.at_start",
        "p.at_end",
    ]
    # An edge's versions do not overlap, but in live mode one may be listed twice.
    select = f"""SELECT {_numbered(row)}, {_ordered_by(keys, dialect)}
FROM (SELECT id, MAX(at_start) AS at_start, MAX(at_end) AS at_end
      FROM ({versions}) u GROUP BY id) p
    JOIN {level}_edges e ON e.id = p.id
    JOIN namespaces n ON n.id = e.namespace_id
    {_ranked_namespaces(dialect, namespaces)}
WHERE p.at_start <> p.at_end"""  # noqa: S608
    return _Body("", select), len(keys), len(row)
