"""What a department's source can fail with: the errors adapters raise, each with a stable code.

Adapters map every foreign error (driver, httpx, a malformed answer) to one of these at their boundary,
with ``raise ... from`` so logs keep the cause while callers never see it. They are part of fedgate's one
tree (:class:`~schema.errors.FedgateError`) and re-exported by :mod:`gateway.errors`; the gateway adds
:class:`~adapters.errors.SourceCircuitOpenError` (its breaker's refusal) under
:class:`SourceUnavailableError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from schema.errors import FedgateError

__all__ = [
    "SourceAuthError", "SourceCancelledError", "SourceError", "SourceQueryError", "SourceResourceExhaustedError",
    "SourceResponseError", "SourceResponseTooLargeError", "SourceTerminatedError", "SourceTimeoutError",
    "SourceUnavailableError",
]  # fmt: skip


class SourceError(FedgateError):
    """A department's source could not answer. The rest of the response still comes back."""

    code = "SOURCE_ERROR"
    http_status = 502
    retryable: ClassVar[bool] = False

    def __init__(self, department: str, message: str) -> None:
        super().__init__(message)
        self.department = department

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "department": self.department, "retryable": self.retryable}


class SourceUnavailableError(SourceError):
    """The source could not be reached (connection refused, pool exhausted, circuit open)."""

    code = "SOURCE_UNAVAILABLE"
    http_status = 503
    retryable = True


class SourceTerminatedError(SourceUnavailableError):
    """The source ended fedgate's session: an administrator terminated it, or the server is shutting down or
    restarting. Retryable: a new session (to the restarted server, or its replacement) may answer."""

    code = "SOURCE_TERMINATED"


class SourceResourceExhaustedError(SourceUnavailableError):
    """The source is up but lacks a resource to serve fedgate now: connections, memory or disk (for SQLite, the
    database file locked by a writer; for an HTTP API, its rate limit: 429). Retryable once it has recovered."""

    code = "SOURCE_RESOURCE_EXHAUSTED"


class SourceTimeoutError(SourceError):
    """The source did not answer within its timeout; the query was cancelled."""

    code = "SOURCE_TIMEOUT"
    http_status = 504
    retryable = True


class SourceCancelledError(SourceError):
    """Someone other than fedgate cancelled the statement on the source (an operator's ``pg_cancel_backend``,
    ``KILL QUERY``). Not retryable: it was stopped on purpose, and sending it again would undo that."""

    code = "SOURCE_CANCELLED"


class SourceQueryError(SourceError):
    """The source rejected the query (a schema drift between catalog and database, a type error).

    The driver's message is logged, never shown: it can contain values and table internals.
    """

    code = "SOURCE_QUERY_FAILED"


class SourceResponseError(SourceError):
    """The source answered with something fedgate cannot use: malformed JSON, the wrong shape, a value
    of the wrong type. The response itself is logged, never shown."""

    code = "SOURCE_BAD_RESPONSE"


class SourceResponseTooLargeError(SourceResponseError):
    """The source's answer exceeds a configured cap (bytes, rows or pages); it is refused, not truncated."""

    code = "SOURCE_RESPONSE_TOO_LARGE"


class SourceAuthError(SourceError):
    """fedgate could not authenticate to the source: its credential was refused or a token exchange failed."""

    code = "SOURCE_AUTH_FAILED"
