"""lineage queries: traversal indexes, the lineage_changes feed, PostgreSQL lineage functions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:30:00

- Edge endpoint indexes lead with the name, so a traversal hop is one index lookup whatever
  the namespace; job versions are indexed by job ID (the job carrying an edge).
- `lineage_changes`: one row per appearance, disappearance or attribute change of any entity,
  built from the version tables (a version whose predecessor closed at the instant it opened is
  a change; one without is an appearance; a closed version with no successor is a removal).
  `old_value`/`new_value` are JSON text. Same columns and meaning on PostgreSQL and SQLite.
- On PostgreSQL only: `lineage_upstream(...)` / `lineage_downstream(...)`, set-returning
  functions for BI tools that speak only SQL; `exporter.query` gives the same answers on both.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EDGE_INDEXES = {
    "destination": ("destination_name", "destination_owner", "namespace_id"),
    "source": ("source_name", "source_owner", "namespace_id"),
}
OLD_EDGE_INDEXES = {
    "destination": ("namespace_id", "destination_name"),
    "source": ("namespace_id", "source_name"),
}

TABLE_CHAIN = """
    JOIN databases db ON db.id = t.database_id
    JOIN catalogs c ON c.id = db.catalog_id
    JOIN namespaces n ON n.id = c.namespace_id"""


@dataclass(frozen=True)
class Kind:
    """How one entity kind appears in the change feed."""

    name: str
    versions: str
    fk: str
    joins: str  # from the version row `v` to namespaces `n`
    entity_name: str
    value: list[tuple[str, str, str]]  # (JSON key, column of a version row, text|bool|json)


KINDS = [
    Kind(
        "job",
        "job_versions",
        "deployment_fk",
        """
    JOIN deployments d ON d.id = v.deployment_fk
    JOIN namespaces n ON n.id = d.namespace_id""",
        "COALESCE(v.deployment_name, d.deployment_id)",
        [
            ("job_id", "job_id", "text"),
            ("deployment_name", "deployment_name", "text"),
            ("properties", "properties", "json"),
        ],
    ),
    Kind(
        "table",
        "table_versions",
        "table_fk",
        "\n    JOIN tables t ON t.id = v.table_fk" + TABLE_CHAIN,
        "c.name || '.' || db.name || '.' || t.name",
        [
            ("table_id", "table_uid", "text"),
            ("connector", "connector", "text"),
            ("is_temporary", "is_temporary", "bool"),
            ("with", "with_options", "json"),
            ("properties", "properties", "json"),
        ],
    ),
    Kind(
        "column",
        "column_versions",
        "column_fk",
        "\n    JOIN columns col ON col.id = v.column_fk\n    JOIN tables t ON t.id = col.table_id"
        + TABLE_CHAIN,
        "c.name || '.' || db.name || '.' || t.name || '.' || col.name",
        [
            ("column_id", "column_uid", "text"),
            ("type", "column_type", "text"),
            ("native_type", "column_native_type", "text"),
            ("nullable", "nullable", "bool"),
            ("description", "description", "text"),
        ],
    ),
    *(
        Kind(
            f"{level}_edge",
            f"{level}_edge_versions",
            "edge_fk",
            f"""
    JOIN {level}_edges e ON e.id = v.edge_fk
    JOIN namespaces n ON n.id = e.namespace_id""",
            "e.source_name || ' -> ' || e.destination_name",
            [("job_id", "e.job_id", "text")],
        )
        for level in ("table", "column")
    ),
]


def _json_value(dialect: str, alias: str, kind: Kind) -> str:
    """A version row's attributes as JSON text, NULL when the row is absent."""

    def column(expr: str) -> str:
        return expr if "." in expr else f"{alias}.{expr}"

    if dialect == "postgresql":
        pairs = ", ".join(f"'{key}', {column(expr)}" for key, expr, _ in kind.value)
        built = f"jsonb_build_object({pairs})::text"
    else:
        parts = []
        for key, expr, typ in kind.value:
            col = column(expr)
            if typ == "bool":
                col = f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') ELSE json('false') END"
            elif typ == "json":
                col = f"json({col})"
            parts.append(f"'{key}', {col}")
        built = f"json_object({', '.join(parts)})"
    return f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE {built} END"


def changes_view(dialect: str) -> str:
    """The lineage_changes view's query for the dialect (kinds and columns are constants)."""
    selects = []
    for kind in KINDS:
        name = kind.entity_name
        selects.append(f"""
SELECT n.workspace_id, v.run_id, v.valid_from AS changed_at, '{kind.name}' AS entity_kind,
       {name} AS entity_name,
       CASE WHEN p.id IS NULL THEN 'added' ELSE 'changed' END AS change,
       {_json_value(dialect, "p", kind)} AS old_value, {_json_value(dialect, "v", kind)} AS new_value,
       n.name AS namespace
FROM {kind.versions} v
    LEFT JOIN {kind.versions} p ON p.{kind.fk} = v.{kind.fk} AND p.valid_to = v.valid_from{kind.joins}""")
        selects.append(f"""
SELECT n.workspace_id,
       (SELECT MIN(r.id) FROM sync_runs r
        WHERE r.workspace_id = n.workspace_id AND r.started_at = v.valid_to) AS run_id,
       v.valid_to AS changed_at, '{kind.name}' AS entity_kind, {name} AS entity_name,
       'removed' AS change, {_json_value(dialect, "v", kind)} AS old_value, NULL AS new_value,
       n.name AS namespace
FROM {kind.versions} v{kind.joins}
WHERE v.valid_to IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {kind.versions} x
                  WHERE x.{kind.fk} = v.{kind.fk} AND x.valid_from = v.valid_to)""")
    return "\nUNION ALL".join(selects)


# Dynamic SQL in lineage__walk only ever interpolates the constants chosen by its CASEs.
PG_FUNCTIONS = r"""
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
    namespace_name text, workspace text)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    edges text := CASE level WHEN 'table' THEN 'table_edges' ELSE 'column_edges' END;
    versions text := CASE level WHEN 'table' THEN 'table_edge_versions'
                                ELSE 'column_edge_versions' END;
    near text := CASE WHEN upstream THEN 'destination' ELSE 'source' END;
    far text := CASE WHEN upstream THEN 'source' ELSE 'destination' END;
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
          UNION
            SELECT w.depth + 1, e.namespace_id, e.%3$s_name, e.%3$s_owner,
                   e.source_name, e.destination_name, e.job_id
            FROM walk w
                JOIN %1$I e ON e.%4$s_name = w.next_name AND e.%4$s_owner = w.next_owner
                           AND e.namespace_id = w.namespace_id
                JOIN %2$I v ON v.edge_fk = e.id
            WHERE w.depth < $3
              AND v.valid_from <= $2 AND (v.valid_to IS NULL OR v.valid_to > $2)
        )
        SELECT MIN(w.depth)::int, w.source_name::text, w.destination_name::text, w.job_id::text
        FROM walk w
        GROUP BY w.source_name, w.destination_name, w.job_id
        ORDER BY 1, 2, 3, 4
    $q$, edges, versions, far, near)
    USING start_name, as_of, max_depth, namespace_name, workspace;
END
$fn$;

CREATE FUNCTION lineage_upstream(
    name text, as_of timestamptz DEFAULT now(), max_depth int DEFAULT 10,
    namespace text DEFAULT NULL, workspace_id text DEFAULT NULL)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE sql STABLE AS $fn$
    SELECT * FROM lineage__walk(
        CASE WHEN lineage__is_table($1) THEN 'table' ELSE 'column' END, true, $1, $2, $3, $4, $5)
$fn$;

CREATE FUNCTION lineage_downstream(
    name text, as_of timestamptz DEFAULT now(), max_depth int DEFAULT 10,
    namespace text DEFAULT NULL, workspace_id text DEFAULT NULL)
RETURNS TABLE(depth int, source_name text, destination_name text, job_id text)
LANGUAGE sql STABLE AS $fn$
    SELECT * FROM lineage__walk(
        CASE WHEN lineage__is_table($1) THEN 'table' ELSE 'column' END, false, $1, $2, $3, $4, $5)
$fn$;
"""

PG_DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS lineage_downstream(text, timestamptz, int, text, text);
DROP FUNCTION IF EXISTS lineage_upstream(text, timestamptz, int, text, text);
DROP FUNCTION IF EXISTS lineage__walk(text, boolean, text, timestamptz, int, text, text);
DROP FUNCTION IF EXISTS lineage__is_table(text);
"""


def _rebuild_edge_indexes(columns_by_end: dict[str, tuple[str, ...]]) -> None:
    for level in ("table", "column"):
        for end, columns in columns_by_end.items():
            name = f"ix_{level}_edges_{end}"
            op.drop_index(name, table_name=f"{level}_edges")
            op.create_index(name, f"{level}_edges", list(columns))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rebuild_edge_indexes(EDGE_INDEXES)
    op.create_index("ix_job_versions_job_id", "job_versions", ["job_id"])
    op.execute(f"CREATE VIEW lineage_changes AS {changes_view(dialect)}")
    if dialect == "postgresql":
        op.execute(PG_FUNCTIONS)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_DROP_FUNCTIONS)
    op.execute("DROP VIEW IF EXISTS lineage_changes")
    op.drop_index("ix_job_versions_job_id", table_name="job_versions")
    _rebuild_edge_indexes(OLD_EDGE_INDEXES)
