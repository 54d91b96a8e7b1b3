"""The one place a GraphQL error object is made: ``{"message", "locations"?, "path"?, "extensions"}``.

Every error a caller sees goes through :func:`graphql_error` (from a :class:`~gateway.errors.FedgateError`)
or :func:`coded_error` (a problem graphql-core found: a parse or validation error, a variable that does not
coerce; a :class:`~gateway.errors.DocumentError` carries them), and :func:`graphql_errors` gives the errors
of a request that ends before execution. ``extensions.code`` is always present; locations and paths only when
known. The order of the keys is the GraphQL specification's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphql import SourceLocation

from gateway.errors import DocumentError, FedgateError

#: A response path: field names and list indices from the root.
Path = Sequence[str | int]


def coded_error(
    message: str,
    code: str,
    *,
    path: Path | None = None,
    locations: Iterable[SourceLocation] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A GraphQL error with ``code`` (unless ``extensions`` has its own) and whatever else is known."""
    formatted: dict[str, Any] = {"message": message}
    shown = [{"line": location.line, "column": location.column} for location in locations or ()]
    if shown:
        formatted["locations"] = shown
    if path is not None:
        formatted["path"] = list(path)
    formatted["extensions"] = {"code": code, **(extensions or {})}
    return formatted


def graphql_error(error: FedgateError, *, path: Path | None = None, message: str | None = None) -> dict[str, Any]:
    """``error`` as a GraphQL error: its message (or ``message``), its path if any, its extensions."""
    return coded_error(message or error.message, error.code, path=path, extensions=error.extensions())


def graphql_errors(error: FedgateError) -> list[dict[str, Any]]:
    """The GraphQL errors of an error that ends a request: one, or each problem of a :class:`DocumentError`."""
    if isinstance(error, DocumentError):
        return [dict(problem) for problem in error.errors]
    return [graphql_error(error)]
