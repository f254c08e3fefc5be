"""Serving the explorer with uvicorn: in the foreground (`ui`) or on a thread (the daemon)."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

import uvicorn
from sqlalchemy import Engine

from exporter.config import UiSettings
from exporter.errors import ConfigError
from exporter.web.app import create_app

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Explorer:
    """The explorer on `host:port` (127.0.0.1 unless told otherwise; any other address needs
    a token, so that lineage is never readable by the whole network by accident)."""

    def __init__(self, engine: Engine, ui: UiSettings, host: str | None = None,
                 port: int | None = None) -> None:  # fmt: skip
        self.host = host or ui.host
        self.port = port if port is not None else (ui.port or 8080)
        token = ui.token()
        if token is None and not is_loopback(self.host):
            raise ConfigError(
                f"the explorer binds {self.host}, beyond this machine: set [ui] token_env to "
                "the environment variable holding a bearer token (or bind 127.0.0.1)"
            )
        app = create_app(engine, token)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where it listens (the port the OS chose, once started with port 0)."""
        port = self.port
        if self._server.started and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}/"

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (uvicorn's own handlers)."""
        log.info("lineage explorer at %s", self.url)
        self._server.run()

    def start(self) -> Explorer:
        """Serve on a thread (beside the daemon); returns once it accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="explorer", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise ConfigError(f"the explorer could not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        log.info("lineage explorer at %s", self.url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
