"""The GraphQL errors of the failures recorded while a plan ran.

A failure carries where it made the answer ``null`` (:class:`~gateway.plan.run.Failure`): one path, or a
field of a level's objects, whose paths the level derives. Each becomes an error per affected path, at
most :data:`MAX_PATHS_PER_FAILURE` of them plus one summary naming how many were left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.error_format import graphql_error
from gateway.plan.run import Failure

#: At most this many errors are reported for one failed child field (one per affected path).
MAX_PATHS_PER_FAILURE = 50


def failure_errors(failures: Sequence[Failure]) -> list[dict[str, Any]]:
    """The ``errors`` of an answer: each failure at each path it nulled, in failure order."""
    errors: list[dict[str, Any]] = []
    for failure in failures:
        affected = list(failure.paths())
        for path in affected[:MAX_PATHS_PER_FAILURE]:
            errors.append(graphql_error(failure.error, path=path))
        if len(affected) > MAX_PATHS_PER_FAILURE:
            summary = graphql_error(failure.error, path=affected[MAX_PATHS_PER_FAILURE])
            summary["extensions"]["omittedPaths"] = len(affected) - MAX_PATHS_PER_FAILURE
            errors.append(summary)
    return errors
