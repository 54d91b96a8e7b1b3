"""The bind stage, the last before execution: a :class:`~gateway.plan.plan.Plan` → a
:class:`~gateway.plan.plan.BoundPlan`.

Each department's adapter prepares each of its statements once (rendering the canonical SQL in its
dialect, or the HTTP request it stands for). The result is a new object beside the plan; the plan itself
is never written to, so a cached plan is the same for every request that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import SourceAdapter
from gateway.plan.plan import BoundPlan, Plan


def bind(plan: Plan, adapters: Mapping[str, SourceAdapter]) -> BoundPlan:
    """``plan`` with each statement prepared by the adapter of its department."""
    return BoundPlan(plan, {id(scan): adapters[scan.department.name].prepare(scan.query) for scan in plan.scans})
