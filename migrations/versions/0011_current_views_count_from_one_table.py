"""current views count from one table: a count of what is current reads one index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 01:00:00

The `_current` views (jobs, deployments, tables, columns, table and column edges) were the
history views filtered on `valid_to IS NULL`: a version joined to its entity, table, database,
catalog and namespace. A count of current columns then joined 800,000 versions to their
columns and tables at 10,000 deployments (about a second) to learn how many versions are
current, which one index already says.

Each current view now reads its version table's current rows and LEFT JOINs what names them,
each on that row's primary key. Every version has its entity and every entity its table,
database, catalog and namespace (foreign keys, NOT NULL), so the rows and their values are the
ones the inner joins gave (tests compare every row before and after, on both databases). What
changes is what a database may skip: a LEFT JOIN to a unique key whose columns a query does not
use can be left out (PostgreSQL's join removal, SQLite's omission of a no-op LEFT JOIN), so
`SELECT count(*)` reads the partial index of current versions alone (PostgreSQL at 1,000
deployments: 42-65 ms -> 6 ms). A query that filters on a joined column (a name) is planned
as before: its filter makes the join an inner one.

PostgreSQL only: the views are replaced in place (`CREATE OR REPLACE VIEW`: the same columns,
so grants and views built on them stay). SQLite omits a LEFT JOIN only from a query that does
not aggregate, so a count would gain nothing there; its views stay as they were (a count of
1,000 deployments' current columns takes it 31-46 ms, each join a lookup by rowid).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTORY_BASES = ("lineage_jobs", "lineage_deployments", "lineage_tables", "lineage_columns")
EDGE_LEVELS = ("table", "column")


def _load(filename: str) -> ModuleType:
    """An earlier revision's module, to reuse what it built as it was written (not a copy)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"lineage_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _left_joined(query: str) -> str:
    """`query` with each join of its outer FROM (a line that starts with `    JOIN `) a LEFT
    JOIN; joins inside its subqueries are indented further and stay as they are."""
    joined = query.replace("\n    JOIN ", "\n    LEFT JOIN ")
    assert joined != query, "no join to turn"
    return joined


def current_views() -> dict[str, str]:
    """Each current view as this revision defines it: 0008's history view (or current edge
    view), left joined, with its current rows only."""
    m0008 = _load("0008_live_lineage.py")
    views = {
        f"{base}_current": _left_joined(m0008.HISTORY_VIEWS[f"{base}_history"])
        + "\nWHERE v.valid_to IS NULL"
        for base in HISTORY_BASES
    }
    for level in EDGE_LEVELS:
        views[f"lineage_{level}_edges_current"] = _left_joined(m0008._edge_current(level))
    return views


def previous_views() -> dict[str, str]:
    """The current views as 0008 made them."""
    m0008 = _load("0008_live_lineage.py")
    views = {
        f"{base}_current": f"SELECT * FROM {base}_history WHERE valid_to IS NULL"
        for base in HISTORY_BASES
    }
    for level in EDGE_LEVELS:
        views[f"lineage_{level}_edges_current"] = m0008._edge_current(level)
    return views


def upgrade() -> None:
    _replace(current_views())


def downgrade() -> None:
    _replace(previous_views())


def _replace(views: dict[str, str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, query in views.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
