"""Loopback only: refuse every connection, and every name lookup, beyond this machine.

The tests install it in their own process (conftest) and, through `sitecustomize` on the
PYTHONPATH they give their subprocesses, in every Python process they start. A refused attempt
raises OSError where it was made and is recorded, so a test fails even if the code under test
swallowed the error (a credentials provider that probes the ECS metadata address, say).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

ENV = "LINEAGE_EXPORTER_LOOPBACK_ONLY"
PASSIVE = {None, "", "0.0.0.0", "::", "localhost"}
violations: list[str] = []
_installed: dict[str, Any] = {}


def is_address(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


def is_loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> OSError:
    violations.append(what)
    print(f"loopback guard: refused {what}", file=sys.stderr, flush=True)
    return ConnectionRefusedError(f"loopback guard: {what} is not loopback")


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and not is_loopback(address[0]):
        raise _refuse(f"a connection to {address[0]}:{address[1]}")


def install() -> None:
    """Patch socket.connect, connect_ex and getaddrinfo (once per process)."""
    if _installed:
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check_address(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        # An address needs no lookup (its connection is checked); a name would ask DNS.
        if name not in PASSIVE and not is_address(name):
            raise socket.gaierror(socket.EAI_NONAME, str(_refuse(f"a lookup of {name}")))
        return getaddrinfo(host, *args, **kwargs)

    _installed.update(connect=connect, connect_ex=connect_ex, getaddrinfo=getaddrinfo)
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo


def install_from_env() -> None:
    if os.environ.get(ENV):
        install()
