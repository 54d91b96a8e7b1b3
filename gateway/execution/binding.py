"""Binding: the last pass before execution, from a :class:`~gateway.planning.plan.Plan` to a :class:`BoundPlan`.

Each department's adapter prepares each of its statements once (rendering the canonical SQL in its
dialect, or the HTTP request it stands for). The result is a new object beside the plan; the plan itself
is never written to, so a cached plan is the same for every request that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters.base import PreparedQuery
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.planning.plan import Plan, ScanNode


@dataclass(frozen=True)
class BoundPlan:
    """A plan with every statement prepared by its department's adapter: what the executor runs."""

    plan: Plan
    #: The prepared statement of each scan of the plan, by the scan's ``id`` (the plan holds the scans).
    statements: Mapping[int, PreparedQuery]

    def statement(self, scan: ScanNode) -> PreparedQuery:
        """The prepared statement of ``scan``, which must be one of the plan's."""
        return self.statements[id(scan)]


def bind(plan: Plan, sources: GuardedAdapters) -> BoundPlan:
    """``plan`` with each scan's statement prepared by the adapter of its department."""
    return BoundPlan(plan, {id(scan): sources.adapter(scan.department.name).prepare(scan.query) for scan in plan.scans})
