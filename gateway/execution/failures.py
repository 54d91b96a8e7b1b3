"""Failures recorded while a plan runs, and the GraphQL errors they become.

A failure nulls either one path (a root field) or one child field on a set of parent objects; the
parents' paths are only known once the whole answer is built, so each becomes an error per affected
path then, at most :data:`MAX_PATHS_PER_FAILURE` of them plus one summary naming how many were left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.error_format import graphql_error
from gateway.errors import FedgateError

#: At most this many errors are reported for one failed child field (one per affected path).
MAX_PATHS_PER_FAILURE = 50


@dataclass
class Failure:
    """One error and where it made the answer ``null``."""

    error: FedgateError
    #: Path of a root scan, or the parent objects whose child field failed.
    path: list[str | int] | None = None
    parents: list[dict[str, Any]] = field(default_factory=list)
    response_key: str = ""


def failure_errors(failures: Sequence[Failure], data: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``errors`` of an answer: each failure at each path it nulled in ``data``, in failure order."""
    if not failures:
        return []
    paths = _object_paths(data) if any(f.path is None for f in failures) else {}
    errors: list[dict[str, Any]] = []
    for failure in failures:
        if failure.path is not None:
            errors.append(graphql_error(failure.error, path=failure.path))
            continue
        affected = [[*path, failure.response_key] for parent in failure.parents for path in paths.get(id(parent), [])]
        for path in affected[:MAX_PATHS_PER_FAILURE]:
            errors.append(graphql_error(failure.error, path=path))
        if len(affected) > MAX_PATHS_PER_FAILURE:
            summary = graphql_error(failure.error, path=affected[MAX_PATHS_PER_FAILURE])
            summary["extensions"]["omittedPaths"] = len(affected) - MAX_PATHS_PER_FAILURE
            errors.append(summary)
    return errors


def _object_paths(data: Any) -> dict[int, list[list[str | int]]]:
    """Every response object's paths (an object reached through two parents has two)."""
    found: dict[int, list[list[str | int]]] = {}
    pending: list[tuple[Any, list[str | int]]] = [(data, [])]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict):
            found.setdefault(id(value), []).append(path)
            pending.extend((item, [*path, key]) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, [*path, index]) for index, item in enumerate(value))
    return found
