"""The public surface other code and clients rely on. Changing it must be a deliberate, visible edit."""

from __future__ import annotations

import inspect

from adapters.base import SourceAdapter
from gateway.cli import app
from gateway.errors import FedgateError, error_codes


def test_error_codes_are_stable() -> None:
    assert sorted(error_codes()) == [
        "AUDIT_UNAVAILABLE",
        "AUTH_UNAVAILABLE",
        "BAD_REQUEST",
        "BAD_USER_INPUT",
        "CONFIG_INVALID",
        "FORBIDDEN_COLUMN",
        "FORBIDDEN_FIELD",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "INCOMPLETE_RESULT",
        "INSUFFICIENT_SCOPE",
        "INTERNAL_ERROR",
        "INTROSPECTION_FAILED",
        "INVALID_AUTH_REQUEST",
        "INVALID_TOKEN",
        "JUSTIFICATION_REQUIRED",
        "METHOD_NOT_ALLOWED",
        "NO_AGREEMENT",
        "OPERATION_NAME_REQUIRED",
        "OPERATION_NOT_FOUND",
        "PURPOSE_INVALID",
        "PURPOSE_NOT_PERMITTED",
        "PURPOSE_REQUIRED",
        "PURPOSE_UNKNOWN",
        "QUERY_LIMIT_EXCEEDED",
        "REQUEST_HEADERS_TOO_LARGE",
        "REQUEST_TIMEOUT",
        "REQUEST_TOO_LARGE",
        "SOURCE_AUTH_FAILED",
        "SOURCE_BAD_RESPONSE",
        "SOURCE_CANCELLED",
        "SOURCE_CIRCUIT_OPEN",
        "SOURCE_ERROR",
        "SOURCE_QUERY_FAILED",
        "SOURCE_RESOURCE_EXHAUSTED",
        "SOURCE_RESPONSE_TOO_LARGE",
        "SOURCE_TERMINATED",
        "SOURCE_TIMEOUT",
        "SOURCE_UNAVAILABLE",
        "STARTUP_FAILED",
        "UNAUTHENTICATED",
    ]


def test_every_error_class_has_a_docstring_and_one_root() -> None:
    pending = [FedgateError]
    while pending:
        cls = pending.pop()
        assert cls.__doc__, cls
        assert issubclass(cls, FedgateError)
        pending.extend(cls.__subclasses__())


def test_the_adapter_contract() -> None:
    abstract = sorted(SourceAdapter.__abstractmethods__)
    assert abstract == ["capabilities", "close", "fetch", "health", "introspect", "open", "prepare"]
    assert list(inspect.signature(SourceAdapter.fetch).parameters) == [
        "self",
        "prepared",
        "values",
        "timeout",
        "context",
    ]


def test_the_cli_commands() -> None:
    commands = sorted(command.name or command.callback.__name__ for command in app.registered_commands)  # type: ignore[union-attr]
    assert commands == ["check", "demo", "explain", "graphiql-assets", "introspect", "serve", "token", "whocan"]
    assert [group.name for group in app.registered_groups] == ["agreements", "audit", "scopes"]
