"""Imported by every Python process the tests start (tests/guard is on their PYTHONPATH)."""

import loopback_guard

loopback_guard.install_from_env()
