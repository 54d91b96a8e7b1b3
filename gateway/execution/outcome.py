"""What each department contributed to one answer: the ``extensions.sources`` summary and strict mode.

Every response whose plan queried departments says, per department asked (by catalog name, as in
errors' ``extensions.department``)::

    "sources": {
      "clinic":  {"status": "complete", "statements": 2},
      "council": {"status": "failed", "code": "SOURCE_CIRCUIT_OPEN", "retryable": true, "statements": 0}
    }

``failed`` means at least one of the department's paths is ``null`` because of it; ``code`` is its first
failure's code, ``retryable`` whether every one of its failures may pass on a retry, ``statements`` how
many statements were sent to it (0 when its breaker refused them all). A department the plan names but
that was never asked (no parent rows needed it) is not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.error_format import graphql_error
from gateway.errors import SourceError

COMPLETE = "complete"
FAILED = "failed"
#: HTTP status of a strict failure whose departments failed in different ways.
MIXED_FAILURE_STATUS = 502


@dataclass(frozen=True, slots=True)
class DepartmentOutcome:
    """One department in one request: the statements sent to it and the errors that nulled its paths."""

    department: str
    statements: int = 0
    errors: tuple[SourceError, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def retryable(self) -> bool:
        return all(error.retryable for error in self.errors)

    def summary(self) -> dict[str, Any]:
        if not self.errors:
            return {"status": COMPLETE, "statements": self.statements}
        code = self.errors[0].code
        return {"status": FAILED, "code": code, "retryable": self.retryable, "statements": self.statements}

    def strict_error(self) -> dict[str, Any]:
        """The request-level error for this department when the operation is ``@strict``."""
        first = self.errors[0]
        formatted = graphql_error(first, message=f"{first.message}; the operation is @strict, so nothing is returned")
        formatted["extensions"].update(department=self.department, retryable=self.retryable)
        return formatted


def department_outcomes(
    asked: Iterable[str], statements: Mapping[str, int], errors: Iterable[tuple[str, SourceError]]
) -> dict[str, DepartmentOutcome]:
    """Outcomes of the departments ``asked``, in name order; ``errors`` are (department asked, its error),
    in the order they happened."""
    by_department: dict[str, list[SourceError]] = {}
    for department, error in errors:
        by_department.setdefault(department, []).append(error)
    names = sorted(set(asked) | set(by_department))
    return {
        name: DepartmentOutcome(name, statements.get(name, 0), tuple(by_department.get(name, ()))) for name in names
    }


def sources_summary(outcomes: Mapping[str, DepartmentOutcome]) -> dict[str, dict[str, Any]]:
    """The ``extensions.sources`` object."""
    return {name: outcome.summary() for name, outcome in outcomes.items()}


def strict_status(outcomes: Iterable[DepartmentOutcome]) -> int:
    """HTTP status of a strict failure (with ``application/graphql-response+json``): the failed departments'
    common status (503 unavailable or circuit open, 504 timeout, 502 otherwise), 502 when they differ."""
    statuses = {error.http_status for outcome in outcomes for error in outcome.errors[:1]}
    return statuses.pop() if len(statuses) == 1 else MIXED_FAILURE_STATUS
