"""Redaction: connector options and properties whose key names a secret never reach the database.

A table's `with` options are its connector's configuration, and Flink SQL puts credentials there
(`'password' = '...'`, an OSS `accessKeySecret`, a Kafka `sasl.jaas.config`). The lineage API
returns them as written, so the client redacts every GetLineageInfo body as it arrives: the
stored payload, the normalized rows, the content hash and `fetch` recordings all see only
`<redacted>` in their place. A value that is a variable reference such as
`${secret_values.mysql_pw}` names a secret without holding it, and is kept.

Pure functions; `store.scrub_secrets` applies the same rules to rows written before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "<redacted>"
# Matched against the key lower-cased with everything but letters and digits removed, so
# `password`, `ssl.keystore.password`, `accessKeySecret` and `SASL_JAAS_CONFIG` all match.
BUILT_IN_KEY_PARTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "accesskey",
    "privatekey",
    "apikey",
    "jaasconfig",
)
_VARIABLE_REFERENCE = re.compile(r"\$\{[^{}]+\}")


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


@dataclass(frozen=True)
class Redactor:
    """Which keys name a secret, and how to redact the maps and bodies that hold them."""

    key_parts: tuple[str, ...] = BUILT_IN_KEY_PARTS

    @classmethod
    def with_extra_keys(cls, extra: Iterable[str]) -> Redactor:
        """The built-in key parts plus the user's (e.g. `[redaction] extra_keys`)."""
        parts = [*BUILT_IN_KEY_PARTS, *(_squash(key) for key in extra)]
        return cls(tuple(dict.fromkeys(part for part in parts if part)))

    def is_secret(self, key: str) -> bool:
        """Whether the option or property `key` names a secret."""
        squashed = _squash(key)
        return any(part in squashed for part in self.key_parts)

    def options(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """`mapping` with the value of every secret key redacted (the same dict if none is)."""
        secret = [key for key, value in mapping.items() if self.is_secret(key) and _holds(value)]
        if not secret:
            return mapping
        return {key: REDACTED if key in secret else value for key, value in mapping.items()}

    def deployments_body(self, body: Any) -> Any:
        """A decoded ListDeployments body with its deployments' labels redacted in place."""
        items = body.get("data") if isinstance(body, dict) else None
        for deployment in _dicts(items):
            self._redact_maps(deployment, ("labels",))
        return body

    def lineage_body(self, body: Any) -> Any:
        """A decoded GetLineageInfo body, redacted in place (see `redact_lineage`)."""
        self.redact_lineage(body)
        return body

    def redact_lineage(self, body: Any) -> bool:
        """Redact a decoded GetLineageInfo body's tables' `with` and `properties` and its
        jobInfos' `properties` in place (it is the caller's freshly decoded JSON); returns
        whether anything was redacted.

        Parts of an unexpected shape are left alone for validation to report.
        """
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return False
        changed = False
        for node in _dicts(data.get("nodes")):
            for table in _dicts(node.get("tables")):
                changed |= self._redact_maps(table, ("with", "properties"))
        for info in _dicts(data.get("jobInfos")):
            changed |= self._redact_maps(info, ("properties",))
        return changed

    def _redact_maps(self, holder: dict[str, Any], names: tuple[str, ...]) -> bool:
        changed = False
        for name in names:
            value = holder.get(name)
            if isinstance(value, dict):
                holder[name] = self.options(value)
                changed |= holder[name] is not value
        return changed


def _holds(value: Any) -> bool:
    """Whether a secret key's value holds something to hide (not empty, not a reference)."""
    if value is None or value == "" or value == REDACTED:
        return False
    return not (isinstance(value, str) and _VARIABLE_REFERENCE.fullmatch(value.strip()))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
