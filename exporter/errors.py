"""Typed exceptions. Each message says what failed, where, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass


class ExporterError(Exception):
    """Base class of every error the exporter raises on purpose."""


class ConfigError(ExporterError):
    """The configuration file or environment is invalid; nothing has been contacted yet."""


class CredentialsError(ExporterError):
    """A workspace's credentials are missing or unreadable."""


@dataclass(frozen=True)
class ApiContext:
    """Where in the pipeline a request or payload belongs; carried by API and payload errors."""

    workspace: str
    namespace: str | None = None
    deployment: str | None = None
    job: str | None = None
    deployment_name: str | None = None

    def describe(self) -> str:
        parts = [f"workspace {shorten(self.workspace)}"]
        if self.namespace:
            parts.append(f"namespace {shorten(self.namespace)}")
        if self.deployment:
            named = f" ({shorten(self.deployment_name)})" if self.deployment_name else ""
            parts.append(f"deployment {shorten(self.deployment)}{named}")
        if self.job:
            parts.append(f"job {shorten(self.job)}")
        return ", ".join(parts)


def shorten(text: str, limit: int = 100) -> str:
    """An identifier as a message shows it: an over-long one (itself an error) is cut."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class ApiError(ExporterError):
    """A call to the Flink OpenAPI failed (after retries, when the failure was transient)."""

    def __init__(
        self,
        context: ApiContext,
        action: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        attempts: int = 1,
    ) -> None:
        self.context = context
        self.action = action
        self.status = status
        self.code = code
        self.api_message = message
        self.request_id = request_id
        self.retryable = retryable
        self.attempts = attempts
        super().__init__(self._render())

    def after_attempts(self, attempts: int) -> ApiError:
        """The same error, marked as the last of `attempts` tries of a transient failure."""
        self.attempts = attempts
        self.retryable = True
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        detail = f"HTTP {self.status}" if self.status is not None else "no HTTP response"
        if self.code:
            detail += f", code {self.code}"
        if self.api_message:
            detail += f": {self.api_message}"
        if self.request_id:
            detail += f" (requestId {self.request_id})"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.action} failed for {self.context.describe()}{tries}: {detail}"


class AuthError(ApiError):
    """The gateway rejected the signature or the credentials: fix the credentials, don't retry."""


class PayloadError(ExporterError):
    """A response body does not have the expected shape; names the job and the field."""

    def __init__(self, context: ApiContext, action: str, field: str, problem: str) -> None:
        self.context = context
        self.action = action
        self.field = field
        self.problem = problem
        super().__init__(
            f"{action} returned an unexpected body for {context.describe()}: "
            f"field {field!r}: {problem}"
        )


class StoreError(ExporterError):
    """The database could not be read or written, or its schema is not current."""


class DataRefused(StoreError):
    """The database refused a run's rows for what they hold (not for being unreachable)."""


class RowsRefused(ExporterError):
    """The database refused the rows of one job's payload; the run stored everything else."""

    def __init__(self, context: ApiContext, reason: str) -> None:
        self.context = context
        self.reason = reason
        super().__init__(f"the database refused the rows of {context.describe()}: {reason}")


class FetchCancelled(ExporterError):
    """The fetch was stopped (the daemon is shutting down) before this request was made."""


class QueryError(ExporterError):
    """A lineage question cannot be asked as given (bad instant, unknown format, ...)."""
