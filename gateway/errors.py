"""fedgate's exception tree: the one place the gateway, its CLI and its callers import errors from.

Every error fedgate raises derives from :class:`FedgateError` and carries a stable, documented ``code``
(the contract clients and dashboards rely on) and a message written for the caller: it says what to
change without echoing data, SQL text, key material or internals. Foreign exceptions (drivers, httpx,
pydantic, graphql-core) are mapped to these classes at the boundary where they occur, with
``raise ... from`` so logs keep the cause while responses never show it.

Each class is defined in the lowest layer that raises it (``schema.errors``: the root and configuration;
``adapters.errors``: the sources' failures; here: the rest) and re-exported here. The tree::

    FedgateError                    (schema.errors)
    ├── ConfigError                 bad catalog / settings / policy at start-up (schema.errors)
    ├── StartupError                the environment stops start-up (a port is taken)
    ├── RequestError                the caller's request is malformed or over a limit
    │   ├── BadRequestError
    │   ├── RequestTooLargeError
    │   ├── RequestTimeoutError
    │   ├── RequestHeadersTooLargeError
    │   ├── QueryLimitError
    │   └── BadUserInputError
    ├── AuthError                   authentication / authorisation (RFC 6750 challenges)
    │   ├── MissingTokenError
    │   ├── InvalidAuthRequestError
    │   ├── InvalidTokenError
    │   ├── InsufficientScopeError
    │   └── AuthUnavailableError
    ├── ForbiddenFieldError         a field outside the caller's grants: the query is refused
    ├── ForbiddenColumnError        ...or answered with null at that path
    ├── SourceError                 a department's source failed; carries department + retryable (adapters.errors)
    │   ├── SourceUnavailableError
    │   │   └── SourceCircuitOpenError
    │   ├── SourceTimeoutError
    │   ├── SourceQueryError
    │   ├── SourceResponseError
    │   │   └── SourceResponseTooLargeError
    │   └── SourceAuthError
    ├── IncompleteResultError       a field combining departments could not be computed whole
    └── InternalError               a bug: logged in full, reported to the caller as an opaque id
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar

from adapters.errors import (
    SourceAuthError,
    SourceError,
    SourceQueryError,
    SourceResponseError,
    SourceResponseTooLargeError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from schema.errors import ConfigError, ConfigIssue, FedgateError

__all__ = [
    "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "OPERATION_NAME_REQUIRED", "OPERATION_NOT_FOUND",
    "REQUEST_CODES", "AuthError", "AuthUnavailableError", "BadRequestError", "BadUserInputError", "ConfigError",
    "ConfigIssue", "FedgateError", "ForbiddenColumnError", "ForbiddenFieldError", "IncompleteResultError",
    "InsufficientScopeError", "InternalError", "InvalidAuthRequestError", "InvalidTokenError", "MissingTokenError",
    "QueryLimit", "QueryLimitError", "RequestError", "RequestHeadersTooLargeError", "RequestTimeoutError",
    "RequestTooLargeError", "SourceAuthError", "SourceCircuitOpenError", "SourceError", "SourceQueryError",
    "SourceResponseError", "SourceResponseTooLargeError", "SourceTimeoutError", "SourceUnavailableError",
    "StartupError", "error_codes",
]  # fmt: skip


class StartupError(FedgateError):
    """fedgate cannot start although its configuration is valid: a port is taken, an address is not local."""

    code = "STARTUP_FAILED"


# --- the caller's request --------------------------------------------------------------------------


class RequestError(FedgateError):
    """The request cannot be served as sent; the caller should change it."""

    code = "BAD_REQUEST"
    http_status = 400


class BadRequestError(RequestError):
    """The HTTP request is not a valid GraphQL-over-HTTP request (body, method, content type)."""

    code = "BAD_REQUEST"


class RequestTooLargeError(RequestError):
    """The request body exceeds the configured size limit."""

    code = "REQUEST_TOO_LARGE"
    http_status = 413


class RequestTimeoutError(RequestError):
    """The request's body did not arrive within ``server.body_timeout_seconds`` of its headers."""

    code = "REQUEST_TIMEOUT"
    http_status = 408


class RequestHeadersTooLargeError(RequestError):
    """The request line and headers exceed ``server.max_header_bytes``."""

    code = "REQUEST_HEADERS_TOO_LARGE"
    http_status = 431


class QueryLimit(StrEnum):
    """Each limit a request can exceed, as ``extensions.limit`` names it (docs/security.md lists them all)."""

    DEPTH = "depth"
    ALIASES = "aliases"
    ROOT_FIELDS = "root_fields"
    COST = "cost"
    PAGE_SIZE = "page_size"
    OFFSET = "offset"
    IN_LIST = "in_list"
    BATCH_SIZE = "batch_size"
    DOCUMENT_SIZE = "document_size"
    TOKENS = "tokens"


class QueryLimitError(RequestError):
    """The query exceeds a configured limit (page size, list length, depth, cost...)."""

    code = "QUERY_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, limit: QueryLimit) -> None:
        super().__init__(message)
        self.limit = limit

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "limit": self.limit.value}


class BadUserInputError(RequestError):
    """An argument or variable value is well-typed but not acceptable (e.g. an empty order item)."""

    code = "BAD_USER_INPUT"


# --- authentication and authorisation ----------------------------------------------------------------


class AuthError(FedgateError):
    """Authentication or authorisation failed. Carries the ``WWW-Authenticate`` challenge to send.

    Descriptions are fixed phrases: they never echo claim values, key ids or key material.
    """

    code = "UNAUTHENTICATED"
    http_status = 401
    #: RFC 6750 error code, or ``None`` for a bare challenge.
    oauth_error: ClassVar[str | None] = "invalid_token"

    def challenge(self, realm: str) -> str:
        """The ``WWW-Authenticate`` header value."""
        if self.oauth_error is None:
            return f'Bearer realm="{realm}"'
        return f'Bearer realm="{realm}", error="{self.oauth_error}", error_description="{self.message}"'


class MissingTokenError(AuthError):
    """The request carries no bearer token: a bare challenge, as RFC 6750 §3.1 asks."""

    code = "UNAUTHENTICATED"
    oauth_error = None


class InvalidAuthRequestError(AuthError):
    """The request's credentials are malformed (not ``Bearer <token>``, several tokens, a token in the URL)."""

    code = "INVALID_AUTH_REQUEST"
    http_status = 400
    oauth_error = "invalid_request"


class InvalidTokenError(AuthError):
    """The token is expired, revoked, malformed, wrongly signed or not meant for fedgate."""

    code = "INVALID_TOKEN"


class InsufficientScopeError(AuthError):
    """The token is valid but its scopes grant nothing here; the challenge names the scopes that would."""

    code = "INSUFFICIENT_SCOPE"
    http_status = 403
    oauth_error = "insufficient_scope"

    def __init__(self, message: str, scopes: list[str]) -> None:
        super().__init__(message)
        self.scopes = scopes

    def challenge(self, realm: str) -> str:
        return f'{super().challenge(realm)}, scope="{" ".join(self.scopes)}"'


class AuthUnavailableError(AuthError):
    """The identity provider's keys or introspection endpoint cannot be reached: fail closed, never pass."""

    code = "AUTH_UNAVAILABLE"
    http_status = 503


class ForbiddenFieldError(FedgateError):
    """The query asks for a table or column outside the caller's grants (with a schema that shows them)."""

    code = "FORBIDDEN_FIELD"
    http_status = 403


class ForbiddenColumnError(FedgateError):
    """A field outside the caller's grants, answered with null (``policy.forbidden_fields: null``)."""

    code = "FORBIDDEN_COLUMN"
    http_status = 403

    def __init__(self, coordinate: str) -> None:
        super().__init__(f"you may not read {coordinate}")
        self.coordinate = coordinate

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.coordinate}


# --- departments' sources ----------------------------------------------------------------------------


class SourceCircuitOpenError(SourceUnavailableError):
    """The source failed repeatedly; fedgate fails fast without calling it until a probe succeeds."""

    code = "SOURCE_CIRCUIT_OPEN"

    def __init__(self, department: str, retry_after: float) -> None:
        super().__init__(
            department, f"department '{department}' is failing; not queried for the next {retry_after:.0f} s"
        )
        self.retry_after = retry_after

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "retryAfter": max(1, round(self.retry_after))}


class IncompleteResultError(FedgateError):
    """A field that combines several departments (a cross-department filter or count) could not be computed
    because a department failed; it is null rather than partial."""

    code = "INCOMPLETE_RESULT"
    http_status = 502

    def __init__(self, message: str, *, departments: Sequence[str], retryable: bool) -> None:
        super().__init__(message)
        self.departments = tuple(departments)
        self.retryable = retryable

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "departments": list(self.departments), "retryable": self.retryable}


# --- bugs --------------------------------------------------------------------------------------------


class InternalError(FedgateError):
    """An unexpected failure inside fedgate. The caller sees only an incident id to quote."""

    code = "INTERNAL_ERROR"

    def __init__(self, incident_id: str) -> None:
        super().__init__(f"internal error; quote incident {incident_id} to the operators")
        self.incident_id = incident_id

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "incident": self.incident_id}


#: Codes of request errors that are not exceptions: reported by the GraphQL parser and validator, or by
#: operation selection, each with graphql-core's own message (which names the offending part).
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
OPERATION_NOT_FOUND = "OPERATION_NOT_FOUND"
OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
REQUEST_CODES: Mapping[str, str] = {
    GRAPHQL_PARSE_FAILED: "The document is not valid GraphQL syntax (or has too many tokens).",
    GRAPHQL_VALIDATION_FAILED: "The document does not validate against the schema the caller sees.",
    OPERATION_NOT_FOUND: "The named operation is not in the document.",
    OPERATION_NAME_REQUIRED: "The document has several operations and the request names none.",
}


def error_codes() -> Mapping[str, str]:
    """Every stable error code with a one-line meaning (used by the docs and their tests)."""
    codes: dict[str, str] = dict(REQUEST_CODES)
    pending: list[type[FedgateError]] = [FedgateError]
    while pending:
        cls = pending.pop()
        if cls is not FedgateError and "code" in cls.__dict__:
            codes.setdefault(cls.code, (cls.__doc__ or "").strip().splitlines()[0])
        pending.extend(cls.__subclasses__())
    return codes
