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
    │   ├── MethodNotAllowedError
    │   ├── RequestTooLargeError
    │   ├── RequestTimeoutError
    │   ├── RequestHeadersTooLargeError
    │   ├── QueryLimitError
    │   ├── BadUserInputError
    │   ├── OperationNotFoundError
    │   ├── OperationNameRequiredError
    │   └── DocumentError           graphql-core's parse / validation / coercion errors, each its own
    ├── AuthError                   authentication / authorisation (RFC 6750 challenges)
    │   ├── MissingTokenError
    │   ├── InvalidAuthRequestError
    │   ├── InvalidTokenError
    │   ├── InsufficientScopeError
    │   └── AuthUnavailableError
    ├── PurposeError                the purpose of use is missing or not acceptable (403)
    │   ├── PurposeRequiredError
    │   ├── PurposeUnknownError
    │   ├── PurposeNotPermittedError
    │   └── JustificationRequiredError
    ├── NoAgreementError            no active sharing agreement covers the purpose and a table asked for
    ├── ForbiddenFieldError         a field outside the caller's grants: the query is refused
    ├── ForbiddenColumnError        ...or answered with null at that path
    ├── SourceError                 a department's source failed; carries department + retryable (adapters.errors)
    │   ├── SourceUnavailableError
    │   │   ├── SourceCircuitOpenError
    │   │   ├── SourceTerminatedError
    │   │   └── SourceResourceExhaustedError
    │   ├── SourceTimeoutError
    │   ├── SourceCancelledError
    │   ├── SourceQueryError
    │   ├── SourceResponseError
    │   │   └── SourceResponseTooLargeError
    │   └── SourceAuthError
    ├── IncompleteResultError       a field combining departments could not be computed whole
    ├── AuditUnavailableError       the audit store could not record the request: nothing is disclosed
    ├── IntrospectionFailedError    graphql-core could not answer __schema / __type
    └── InternalError               a bug: logged in full, reported to the caller as an opaque id
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar

from adapters.errors import (
    SourceAuthError,
    SourceCancelledError,
    SourceError,
    SourceQueryError,
    SourceResourceExhaustedError,
    SourceResponseError,
    SourceResponseTooLargeError,
    SourceTerminatedError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from schema.errors import ConfigError, ConfigIssue, FedgateError

__all__ = [
    "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "REQUEST_CODES", "AuditUnavailableError", "AuthError",
    "AuthUnavailableError", "BadRequestError", "BadUserInputError", "ConfigError", "ConfigIssue", "DocumentError",
    "FedgateError", "ForbiddenColumnError", "ForbiddenFieldError", "IncompleteResultError",
    "InsufficientScopeError", "InternalError", "IntrospectionFailedError", "InvalidAuthRequestError",
    "InvalidTokenError", "JustificationRequiredError", "MethodNotAllowedError", "MissingTokenError",
    "NoAgreementError", "OperationNameRequiredError", "OperationNotFoundError", "PurposeError",
    "PurposeNotPermittedError", "PurposeRequiredError", "PurposeUnknownError", "QueryLimit", "QueryLimitError",
    "RequestError", "RequestHeadersTooLargeError", "RequestTimeoutError", "RequestTooLargeError",
    "SourceAuthError", "SourceCancelledError", "SourceCircuitOpenError", "SourceError", "SourceQueryError",
    "SourceResourceExhaustedError", "SourceResponseError", "SourceResponseTooLargeError", "SourceTerminatedError",
    "SourceTimeoutError", "SourceUnavailableError",
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


class MethodNotAllowedError(RequestError):
    """A mutation sent with GET: HTTP 405 with ``Allow: POST``, as the GraphQL-over-HTTP specification requires."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405


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
    FIELDS = "fields"
    REPEATED_FIELDS = "repeated_fields"
    FRAGMENTS = "fragments"
    SELECTIONS = "selections"
    FIELD_COMPARISONS = "field_comparisons"
    VARIABLES = "variables"
    DIRECTIVES = "directives"


class QueryLimitError(RequestError):
    """The query exceeds a configured limit (page size, list length, depth, cost...)."""

    code = "QUERY_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, limit: QueryLimit) -> None:
        super().__init__(message)
        self.limit = limit

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "limit": self.limit.value}


class BadUserInputError(RequestError):
    """An argument or variable value is not acceptable (e.g. an empty order item, a value of the wrong type)."""

    code = "BAD_USER_INPUT"


class OperationNotFoundError(RequestError):
    """The named operation is not in the document."""

    code = "OPERATION_NOT_FOUND"


class OperationNameRequiredError(RequestError):
    """The document has several operations and the request names none."""

    code = "OPERATION_NAME_REQUIRED"


class DocumentError(RequestError):
    """The document does not parse or validate, or its variables do not coerce: the request is refused with
    each problem as a GraphQL error of its own (graphql-core's message, its locations and its code), in
    ``errors``, made by :mod:`gateway.error_format` like every other."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(str(errors[0].get("message", "")) if errors else "the document cannot run")
        self.errors = tuple(errors)


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
    #: ``Retry-After`` when nothing better is known.
    DEFAULT_RETRY_AFTER: ClassVar[int] = 5

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds before a retry can help (an open breaker's cool-down left), when known.
        self.retry_after = retry_after

    @property
    def retry_after_seconds(self) -> int:
        """The ``Retry-After`` header's whole seconds."""
        if self.retry_after is None:
            return self.DEFAULT_RETRY_AFTER
        return max(1, math.ceil(self.retry_after))


class PurposeError(FedgateError):
    """The request's purpose of use is missing or not acceptable: refused before any source is asked."""

    code = "PURPOSE_INVALID"
    http_status = 403


class PurposeRequiredError(PurposeError):
    """The request states no purpose of use, and every request must."""

    code = "PURPOSE_REQUIRED"


class PurposeUnknownError(PurposeError):
    """The request's purpose of use is not in the configured vocabulary."""

    code = "PURPOSE_UNKNOWN"


class PurposeNotPermittedError(PurposeError):
    """None of the caller's scopes permits the request's purpose of use."""

    code = "PURPOSE_NOT_PERMITTED"


class JustificationRequiredError(PurposeError):
    """The request's purpose of use needs a justification and the request gives none."""

    code = "JUSTIFICATION_REQUIRED"


class NoAgreementError(FedgateError):
    """No active information sharing agreement covers the request: its purpose, the caller's organisation
    and a table it asks for. The message names the purpose and the tables, never other agreements."""

    code = "NO_AGREEMENT"
    http_status = 403

    def __init__(self, message: str, *, purpose: str | None, tables: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.purpose = purpose
        self.tables = tuple(tables)

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "purpose": self.purpose, "tables": list(self.tables)}


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


class AuditUnavailableError(FedgateError):
    """The audit store could not make the request's record durable (down, full, too slow): nothing is
    disclosed without its record, so the request fails closed; a retry may succeed."""

    code = "AUDIT_UNAVAILABLE"
    http_status = 503
    #: ``Retry-After`` seconds.
    retry_after: ClassVar[int] = 5

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryable": True, "retryAfter": self.retry_after}


class IntrospectionFailedError(FedgateError):
    """graphql-core could not answer an introspection field (``__schema``, ``__type``) from the caller's schema."""

    code = "INTROSPECTION_FAILED"
    http_status = 500


# --- bugs --------------------------------------------------------------------------------------------


class InternalError(FedgateError):
    """An unexpected failure inside fedgate. The caller sees only an incident id to quote."""

    code = "INTERNAL_ERROR"

    def __init__(self, incident_id: str) -> None:
        super().__init__(f"internal error; quote incident {incident_id} to the operators")
        self.incident_id = incident_id

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "incident": self.incident_id}


#: Codes of the problems a :class:`DocumentError` reports that are not exceptions of their own: graphql-core's
#: parser and validator errors, each with graphql-core's message (which names the offending part).
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
REQUEST_CODES: Mapping[str, str] = {
    GRAPHQL_PARSE_FAILED: "The document is not valid GraphQL syntax (or has too many tokens).",
    GRAPHQL_VALIDATION_FAILED: "The document does not validate against the schema the caller sees.",
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
