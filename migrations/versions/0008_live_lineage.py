"""live lineage: job status and the whole job, deployment and column record, versioned

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00

- job_versions gains what ListJobs and ListDeployments say of a job and its deployment (status,
  times, engine, mode, people, description, labels, target); column_versions the API's column
  times and people; table_versions the node ID. NULL in versions written before: the first
  run after the upgrade (a new rules version) opens one new version where they differ.
- deployment_versions: every listed deployment, with or without a job.
- live_job_statuses: the job statuses that count as live (RUNNING unless configured).
- Views: the new columns; lineage_deployments_history/_current; edges carry the carrying job's
  status at the same instant (a history row is split where that status changed);
  lineage_live_table_edges / lineage_live_column_edges; lineage_changes shows job status and
  record changes. On PostgreSQL the traversal functions take `live_only boolean DEFAULT false`.

Views are dropped and created again with the grants they had; functions keep theirs too.
Stored payloads lose what earlier releases kept of each job's configuration (`flinkConf`,
`artifact`, ...), which can hold credentials.
"""

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from exporter.redact import Redactor
from exporter.store import scrub_secrets

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NEW_COLUMNS: dict[str, list[sa.Column]] = {
    "table_versions": [sa.Column("node_id", sa.Text())],
    "column_versions": [
        sa.Column("column_created_at", TIME),
        sa.Column("column_modified_at", TIME),
        sa.Column("column_creator", sa.Text()),
        sa.Column("column_modifier", sa.Text()),
    ],
    "job_versions": [
        sa.Column("job_status", sa.Text()),
        sa.Column("job_started_at", TIME),
        sa.Column("job_ended_at", TIME),
        sa.Column("job_created_at", TIME),
        sa.Column("engine_version", sa.Text()),
        sa.Column("execution_mode", sa.Text()),
        sa.Column("job_creator", sa.Text()),
        sa.Column("deployment_description", sa.Text()),
        sa.Column("deployment_labels", JSON),
        sa.Column("deployment_creator", sa.Text()),
        sa.Column("deployment_modifier", sa.Text()),
        sa.Column("deployment_created_at", TIME),
        sa.Column("deployment_modified_at", TIME),
        sa.Column("deployment_target", sa.Text()),
    ],
}
DEPLOYMENT_ATTRS = """v.deployment_name, v.description AS deployment_description,
       v.labels AS deployment_labels, v.engine_version, v.execution_mode,
       v.creator AS deployment_creator, v.modifier AS deployment_modifier,
       v.created_at AS deployment_created_at, v.modified_at AS deployment_modified_at,
       v.deployment_target, v.has_job"""
JOB_RECORD = """v.job_status, v.job_started_at, v.job_ended_at, v.job_created_at, v.engine_version,
       v.execution_mode, v.job_creator, v.deployment_description, v.deployment_labels,
       v.deployment_creator, v.deployment_modifier, v.deployment_created_at,
       v.deployment_modified_at, v.deployment_target"""


def _load(filename: str) -> ModuleType:
    """An earlier revision's module, to reuse what it built as it was written (not a copy)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"lineage_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# From a row holding a table ID ({fk}) to its database, catalog and namespace, as 0002 joins.
TABLE_CHAIN: str = _load("0002_create_lineage_views.py").TABLE_CHAIN

HISTORY_VIEWS: dict[str, str] = {
    "lineage_jobs_history": f"""
SELECT n.workspace_id, n.name AS namespace, v.job_id, d.deployment_id, v.deployment_name,
       v.properties, v.valid_from, v.valid_to, v.run_id,
       {JOB_RECORD}
FROM job_versions v
    JOIN deployments d ON d.id = v.deployment_fk
    JOIN namespaces n ON n.id = d.namespace_id""",
    "lineage_deployments_history": f"""
SELECT n.workspace_id, n.name AS namespace, d.deployment_id,
       {DEPLOYMENT_ATTRS},
       v.valid_from, v.valid_to, v.run_id
FROM deployment_versions v
    JOIN deployments d ON d.id = v.deployment_fk
    JOIN namespaces n ON n.id = d.namespace_id""",
    "lineage_tables_history": """
SELECT n.workspace_id, n.name AS namespace, c.name AS catalog_name, db.name AS database_name,
       t.name AS table_name, c.name || '.' || db.name || '.' || t.name AS qualified_name,
       v.table_uid AS table_id, v.connector, v.is_temporary, v.with_options, v.properties,
       t.owner_deployment_id, v.valid_from, v.valid_to, v.run_id, v.node_id
FROM table_versions v"""
    + TABLE_CHAIN.format(fk="v.table_fk"),
    "lineage_columns_history": """
SELECT n.workspace_id, n.name AS namespace, c.name AS catalog_name, db.name AS database_name,
       t.name AS table_name, col.name AS column_name, v.column_uid AS column_id, v.column_type,
       v.column_native_type, v.nullable, v.description,
       c.name || '.' || db.name || '.' || t.name || '.' || col.name AS qualified_name,
       t.owner_deployment_id, v.valid_from, v.valid_to, v.run_id,
       v.column_created_at, v.column_modified_at, v.column_creator, v.column_modifier
FROM column_versions v
    JOIN columns col ON col.id = v.column_fk"""
    + TABLE_CHAIN.format(fk="col.table_id"),
}


def _edge_history(level: str) -> str:
    """An edge's versions, each split where the carrying job's status changed during it: the
    row valid at T carries the status the job had at T (NULL when no job row has that ID)."""
    later_start = "CASE WHEN j.valid_from > v.valid_from THEN j.valid_from ELSE v.valid_from END"
    earlier_end = (
        "CASE WHEN j.id IS NULL OR j.valid_to IS NULL THEN v.valid_to "
        "WHEN v.valid_to IS NULL OR j.valid_to < v.valid_to THEN j.valid_to ELSE v.valid_to END"
    )
    return f"""
SELECT n.workspace_id, n.name AS namespace, e.source_name, e.destination_name, e.job_id,
       e.source_owner, e.destination_owner,
       CASE WHEN j.id IS NULL THEN v.valid_from ELSE {later_start} END AS valid_from,
       {earlier_end} AS valid_to,
       CASE WHEN j.id IS NULL OR j.valid_from <= v.valid_from THEN v.run_id ELSE j.run_id END
           AS run_id,
       j.job_status
FROM {level}_edge_versions v
    JOIN {level}_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id
    LEFT JOIN (
        SELECT jv.id, jv.job_id, jv.job_status, jv.valid_from, jv.valid_to, jv.run_id,
               jd.namespace_id
        FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
    ) j ON j.job_id = e.job_id AND j.namespace_id = e.namespace_id
       AND (j.valid_to IS NULL OR j.valid_to > v.valid_from)
       AND (v.valid_to IS NULL OR j.valid_from < v.valid_to)"""


def _edge_current(level: str) -> str:
    """Current edges with their job's current status (indexed: no interval arithmetic)."""
    return f"""
SELECT n.workspace_id, n.name AS namespace, e.source_name, e.destination_name, e.job_id,
       e.source_owner, e.destination_owner, v.valid_from, v.valid_to, v.run_id,
       (SELECT jv.job_status FROM job_versions jv
            JOIN deployments jd ON jd.id = jv.deployment_fk
        WHERE jv.job_id = e.job_id AND jd.namespace_id = e.namespace_id
          AND jv.valid_to IS NULL) AS job_status
FROM {level}_edge_versions v
    JOIN {level}_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id
WHERE v.valid_to IS NULL"""


def _live_edges(level: str) -> str:
    return f"""
SELECT * FROM lineage_{level}_edges_current
WHERE job_status IN (SELECT status FROM live_job_statuses)"""


def _load_0003() -> ModuleType:
    return _load("0003_lineage_queries.py")


# What lineage_changes shows of each kind beyond 0003's attributes, as (key, column, type).
RECORD_ATTRIBUTES: dict[str, list[tuple[str, str, str]]] = {
    "job": [
        ("status", "job_status", "text"),
        ("engine_version", "engine_version", "text"),
        ("execution_mode", "execution_mode", "text"),
        ("creator", "job_creator", "text"),
        ("deployment_description", "deployment_description", "text"),
        ("deployment_labels", "deployment_labels", "json"),
        ("deployment_target", "deployment_target", "text"),
        ("deployment_creator", "deployment_creator", "text"),
        ("deployment_modifier", "deployment_modifier", "text"),
    ],
    "table": [("node_id", "node_id", "text")],
    "column": [("creator", "column_creator", "text"), ("modifier", "column_modifier", "text")],
}


def record_kinds() -> list[object]:
    """0003's kinds of lineage_changes, with the attributes this revision adds."""
    m0003 = _load_0003()
    return [replace(k, value=k.value + RECORD_ATTRIBUTES.get(k.name, [])) for k in m0003.KINDS]


def _changes_view(dialect: str, with_records: bool) -> str:
    """lineage_changes as 0003 built it, with the new attributes in its values."""
    m0003 = _load_0003()
    if not with_records:
        return m0003.changes_view(dialect)
    original, m0003.KINDS = m0003.KINDS, record_kinds()
    try:
        return m0003.changes_view(dialect)
    finally:
        m0003.KINDS = original


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            op.add_column(table, column)
    op.create_table(
        "deployment_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("valid_from", TIME, nullable=False),
        sa.Column("valid_to", TIME, nullable=True),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("deployment_fk", ID, nullable=False),
        sa.Column("deployment_name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("labels", JSON, nullable=True),
        sa.Column("engine_version", sa.Text(), nullable=True),
        sa.Column("execution_mode", sa.Text(), nullable=True),
        sa.Column("creator", sa.Text(), nullable=True),
        sa.Column("modifier", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("modified_at", TIME, nullable=True),
        sa.Column("deployment_target", sa.Text(), nullable=True),
        sa.Column("has_job", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_fk"],
            ["deployments.id"],
            name="fk_deployment_versions_deployment_fk_deployments",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name="fk_deployment_versions_run_id_sync_runs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_versions"),
    )
    op.create_index(
        "ix_deployment_versions_deployment_fk_from",
        "deployment_versions",
        ["deployment_fk", "valid_from"],
    )
    op.create_index(
        "ix_deployment_versions_current",
        "deployment_versions",
        ["deployment_fk"],
        postgresql_where=sa.text("valid_to IS NULL"),
        sqlite_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "live_job_statuses",
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("status", name="pk_live_job_statuses"),
    )
    op.execute("INSERT INTO live_job_statuses (status) VALUES ('RUNNING')")
    _replace_views(dialect, with_records=True)
    if dialect == "postgresql":
        _replace_functions(live=True)
    context = op.get_context()
    if not context.as_sql:  # earlier releases stored each job whole: configuration included
        scrub_secrets(op.get_bind(), context.config.attributes.get("redactor") or Redactor())


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _replace_functions(live=False)
    _replace_views(dialect, with_records=False)
    op.drop_table("live_job_statuses")
    op.drop_index("ix_deployment_versions_current", table_name="deployment_versions")
    op.drop_index("ix_deployment_versions_deployment_fk_from", table_name="deployment_versions")
    op.drop_table("deployment_versions")
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            # Plain ALTER TABLE on both databases (SQLite >= 3.35), as in 0005.
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")


CHANGED = [
    "lineage_jobs",
    "lineage_tables",
    "lineage_columns",
    "lineage_table_edges",
    "lineage_column_edges",
]


def _replace_views(dialect: str, with_records: bool) -> None:
    """Drop the views this revision changes and create them as `with_records` says, keeping
    the grants they had (the grants of lineage_sync_runs for the ones that are new)."""
    grants = _grants() if dialect == "postgresql" else {}
    names = ["lineage_changes", "lineage_live_table_edges", "lineage_live_column_edges"]
    names += [f"{base}_current" for base in CHANGED] + [f"{base}_history" for base in CHANGED]
    names += ["lineage_deployments_current", "lineage_deployments_history"]
    for name in names:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    if with_records:
        views = dict(HISTORY_VIEWS)
        for level in ("table", "column"):
            views[f"lineage_{level}_edges_history"] = _edge_history(level)
            views[f"lineage_{level}_edges_current"] = _edge_current(level)
        for base in ("lineage_jobs", "lineage_tables", "lineage_columns", "lineage_deployments"):
            views[f"{base}_current"] = f"SELECT * FROM {base}_history WHERE valid_to IS NULL"
        views["lineage_live_table_edges"] = _live_edges("table")
        views["lineage_live_column_edges"] = _live_edges("column")
    else:
        m0002 = _load("0002_create_lineage_views.py")
        views = {f"{base}_history": m0002.VIEWS[f"{base}_history"] for base in CHANGED}
        for base in CHANGED:
            views[f"{base}_current"] = f"SELECT * FROM {base}_history WHERE valid_to IS NULL"
    views["lineage_changes"] = _changes_view(dialect, with_records)
    for name, query in views.items():
        op.execute(f"CREATE VIEW {name} AS {query}")
    if dialect == "postgresql":
        runs = grants.get("lineage_sync_runs", [])
        for name in views:
            for grantee, privilege in grants.get(name, runs):
                _grant(privilege, name, grantee)


def _grants() -> dict[str, list[tuple[str, str]]]:
    """view -> (grantee, privilege) on the lineage views (revision 0007's own helper)."""
    grants: dict[str, list[tuple[str, str]]] = _load_0007()._grants()
    return grants


def _grant(privilege: str, view: str, grantee: str) -> None:
    _load_0007()._grant(privilege, view, grantee)


def _quoted(name: str) -> str:
    quoted: str = _load_0007()._quoted(name)
    return quoted


@cache
def _load_0007() -> ModuleType:
    return _load("0007_job_failures_and_unbounded_names.py")


def _replace_functions(live: bool) -> None:
    """The traversal functions with (or without) `live_only`, keeping who may execute them and
    how they run (SECURITY DEFINER and search_path, as docs/readonly-role.sql sets them)."""
    bind = op.get_bind()
    public = ("lineage_upstream", "lineage_downstream")
    kept = bind.execute(
        sa.text(
            "SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p "
            "WHERE p.proname IN ('lineage_upstream', 'lineage_downstream')"
        )
    ).all()
    executors = bind.execute(
        sa.text(
            "SELECT DISTINCT routine_name, grantee FROM information_schema.routine_privileges "
            "WHERE routine_name IN ('lineage_upstream', 'lineage_downstream') "
            "AND privilege_type = 'EXECUTE' AND grantee <> current_user"
        )
    ).all()
    m0003 = _load_0003()
    op.execute(m0003.PG_DROP_FUNCTIONS)
    op.execute(LIVE_DROP_FUNCTIONS)
    op.execute(LIVE_FUNCTIONS if live else m0003.PG_FUNCTIONS)
    signature = LIVE_SIGNATURE if live else OLD_SIGNATURE
    revoked = False
    for name, definer, config in kept:
        if definer:
            settings = " ".join(
                f"SET {c.split('=', 1)[0]} = {c.split('=', 1)[1]}" for c in config or []
            )
            op.execute(f"ALTER FUNCTION {name}{signature} SECURITY DEFINER {settings}")
    for name, grantee in executors:
        if name in public and grantee != "PUBLIC":
            if not revoked:
                for fn in public:
                    op.execute(f"REVOKE EXECUTE ON FUNCTION {fn}{signature} FROM PUBLIC")
                revoked = True
            op.execute(f"GRANT EXECUTE ON FUNCTION {name}{signature} TO {_quoted(grantee)}")


OLD_SIGNATURE = "(text, timestamptz, int, text, text)"
LIVE_SIGNATURE = "(text, timestamptz, int, text, text, boolean)"
LIVE_DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS lineage_downstream(text, timestamptz, int, text, text, boolean);
DROP FUNCTION IF EXISTS lineage_upstream(text, timestamptz, int, text, text, boolean);
DROP FUNCTION IF EXISTS lineage__walk(text, boolean, text, timestamptz, int, text, text, boolean);
DROP FUNCTION IF EXISTS lineage__is_table(text);
"""

# As 0003's, with `live_only`: an edge counts only while its carrying job's status at `as_of`
# is one of live_job_statuses. Dynamic SQL only ever interpolates the constants of its CASEs.
LIVE_FUNCTIONS = r"""
CREATE FUNCTION lineage__is_table(name text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM table_edges e WHERE e.destination_name = $1)
        OR EXISTS (SELECT 1 FROM table_edges e WHERE e.source_name = $1)
        OR EXISTS (
            SELECT 1 FROM tables t
                JOIN databases db ON db.id = t.database_id
                JOIN catalogs c ON c.id = db.catalog_id
            WHERE c.name || '.' || db.name || '.' || t.name = $1)
$fn$;

CREATE FUNCTION lineage__walk(
    level text, upstream boolean, start_name text, as_of timestamptz, max_depth int,
    namespace_name text, workspace text, live_only boolean)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    edges text := CASE level WHEN 'table' THEN 'table_edges' ELSE 'column_edges' END;
    versions text := CASE level WHEN 'table' THEN 'table_edge_versions'
                                ELSE 'column_edge_versions' END;
    near text := CASE WHEN upstream THEN 'destination' ELSE 'source' END;
    far text := CASE WHEN upstream THEN 'source' ELSE 'destination' END;
    -- Only a live walk pays for the check (a constant: nothing from the caller is spliced in).
    live text := CASE WHEN live_only THEN $live$AND EXISTS (
                  SELECT 1 FROM job_versions jv JOIN deployments jd ON jd.id = jv.deployment_fk
                  WHERE jv.job_id = e.job_id AND jd.namespace_id = e.namespace_id
                    AND jv.valid_from <= $2 AND (jv.valid_to IS NULL OR jv.valid_to > $2)
                    AND jv.job_status IN (SELECT status FROM live_job_statuses))$live$
                 ELSE '' END;
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH RECURSIVE walk(depth, namespace_id, next_name, next_owner,
                            source_name, destination_name, job_id) AS (
            SELECT 1, e.namespace_id, e.%3$s_name, e.%3$s_owner,
                   e.source_name, e.destination_name, e.job_id
            FROM %1$I e
                JOIN %2$I v ON v.edge_fk = e.id
            WHERE e.%4$s_name = $1
              AND v.valid_from <= $2 AND (v.valid_to IS NULL OR v.valid_to > $2)
              AND e.namespace_id IN (
                  SELECT ns.id FROM namespaces ns
                  WHERE ($4::text IS NULL OR ns.name = $4)
                    AND ($5::text IS NULL OR ns.workspace_id = $5))
              %5$s
          UNION
            SELECT w.depth + 1, e.namespace_id, e.%3$s_name, e.%3$s_owner,
                   e.source_name, e.destination_name, e.job_id
            FROM walk w
                JOIN %1$I e ON e.%4$s_name = w.next_name AND e.%4$s_owner = w.next_owner
                           AND e.namespace_id = w.namespace_id
                JOIN %2$I v ON v.edge_fk = e.id
            WHERE w.depth < $3
              AND v.valid_from <= $2 AND (v.valid_to IS NULL OR v.valid_to > $2)
              %5$s
        )
        SELECT MIN(w.depth)::int, w.source_name::text, w.destination_name::text, w.job_id::text
        FROM walk w
        GROUP BY w.source_name, w.destination_name, w.job_id
        ORDER BY 1, 2, 3, 4
    $q$, edges, versions, far, near, live)
    USING start_name, as_of, max_depth, namespace_name, workspace;
END
$fn$;

CREATE FUNCTION lineage_upstream(
    name text, as_of timestamptz DEFAULT now(), max_depth int DEFAULT 10,
    namespace text DEFAULT NULL, workspace_id text DEFAULT NULL, live_only boolean DEFAULT false)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE sql STABLE AS $fn$
    SELECT * FROM lineage__walk(
        CASE WHEN lineage__is_table($1) THEN 'table' ELSE 'column' END, true, $1, $2, $3, $4, $5,
        $6)
$fn$;

CREATE FUNCTION lineage_downstream(
    name text, as_of timestamptz DEFAULT now(), max_depth int DEFAULT 10,
    namespace text DEFAULT NULL, workspace_id text DEFAULT NULL, live_only boolean DEFAULT false)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE sql STABLE AS $fn$
    SELECT * FROM lineage__walk(
        CASE WHEN lineage__is_table($1) THEN 'table' ELSE 'column' END, false, $1, $2, $3, $4, $5,
        $6)
$fn$;
"""
