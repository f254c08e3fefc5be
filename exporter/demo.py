"""`make demo`: the simulator and the daemon on a SQLite file, so history visibly accumulates.

Starts a small simulated workspace that changes every few seconds, migrates demo-lineage.db,
and runs the daemon with a short interval and the lineage explorer; each run logs what changed,
and the explorer's time slider gains a stop. Ctrl-C stops both.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from exporter import migrate
from exporter.cli import install_stop_signals
from exporter.config import Settings
from exporter.daemon import Daemon
from exporter.database import make_engine
from exporter.logs import setup_logging
from exporter.simulator import Faults, Simulator, World, WorldSize

log = logging.getLogger("exporter.demo")

DEMO_DB = Path("demo-lineage.db")
SYNC_EVERY_SECONDS = 10
EXPLORER_PORT = int(os.environ.get("DEMO_EXPLORER_PORT", "8080"))
CHANGE_EVERY_SECONDS = 7
# Some jobs' lineage is an unusual body (simulator.poison): those jobs fail alone, named in
# the log and in lineage_job_failures, and the rest of the workspace syncs on.
BAD_RATE = 0.1


def demo_world() -> World:
    """The small workspace the demo serves (the README's example queries name its tables)."""
    return World(
        "demo-workspace", seed=42, size=WorldSize(namespaces=2, deployments_per_namespace=6)
    )


def main() -> int:
    setup_logging("info")
    stop = install_stop_signals()
    world = demo_world()
    with Simulator(world, faults=Faults(bad_rate=BAD_RATE)) as sim:
        os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
        url = f"sqlite:///{DEMO_DB.resolve()}"
        settings = Settings.model_validate(
            {
                "database": {"url": url},
                "schedule": {"interval": f"{SYNC_EVERY_SECONDS}s", "jitter": "0s"},
                "ui": {"port": EXPLORER_PORT},
                "workspaces": [
                    {
                        "id": world.workspace_id,
                        "endpoint": sim.url,
                        "namespaces": sorted(world.namespaces),
                    }
                ],
            }
        )
        migrate.upgrade(url)
        log.info("simulator at %s; lineage history goes to %s; Ctrl-C to stop", sim.url, DEMO_DB)
        print(
            f"\nWatch the workspace change: the lineage explorer is at "
            f"http://127.0.0.1:{EXPLORER_PORT}/ (DEMO_EXPLORER_PORT changes the port)\n",
            flush=True,
        )
        changer = threading.Thread(target=_change_world, args=(world, stop), daemon=True)
        changer.start()
        Daemon(settings, make_engine(url, len(settings.workspaces)), stop).run()
    print(f"\nQuery the history: sqlite3 {DEMO_DB} 'SELECT * FROM lineage_sync_runs'")  # noqa: S608
    print(f"What failed, and why: sqlite3 {DEMO_DB} 'SELECT * FROM lineage_job_failures'")  # noqa: S608
    return 0


def _change_world(world: World, stop: threading.Event) -> None:
    while not stop.wait(CHANGE_EVERY_SECONDS):
        for change in world.advance(2):
            log.info("simulated change: %s", change)


if __name__ == "__main__":
    raise SystemExit(main())
