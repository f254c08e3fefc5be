"""The schema as Core tables: what the migrations create (test_migrate compares the two), and no
command pays for SQLAlchemy's ORM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from exporter import schema


def test_no_command_loads_the_orm(tmp_path: Path) -> None:
    """Every module of the package, a migrated database and a run written through the store,
    without `sqlalchemy.orm` (58 ms to import, and 39 ms more to map 20 classes, at every
    command's start when the tables were ORM classes)."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    program = (
        "import importlib, pkgutil, sys\n"
        "from datetime import UTC, datetime\n"
        "import exporter\n"
        "for module in pkgutil.walk_packages(exporter.__path__, 'exporter.'):\n"
        "    if module.name != 'exporter.__main__':\n"
        "        importlib.import_module(module.name)\n"
        "from exporter import database, migrate, store\n"
        f"migrate.upgrade({url!r})\n"
        f"engine = database.make_engine({url!r})\n"
        "store.start_run(engine, 'ws', datetime.now(UTC))\n"
        "with engine.connect() as conn:\n"
        "    assert store.live_contributions(conn, 'ws') == {}\n"
        "assert 'sqlalchemy.orm' not in sys.modules, 'the ORM was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_version_table_has_a_period_an_entity_and_its_run() -> None:
    """What the history views, the feed and retention rely on, for each `*_versions` table."""
    versions = [t for name, t in schema.metadata.tables.items() if name.endswith("_versions")]
    assert len(versions) == 6
    for table in versions:
        assert not table.c.valid_from.nullable and table.c.valid_to.nullable, table.name
        assert not table.c.run_id.nullable, table.name
        entity = [c for c in table.c if c.name.endswith("_fk")]
        assert len(entity) == 1 and not entity[0].nullable, table.name
        indexed = {tuple(c.name for c in index.columns) for index in table.indexes}
        assert ("valid_from", entity[0].name) in indexed, table.name
        assert ("valid_to", entity[0].name) in indexed, table.name
