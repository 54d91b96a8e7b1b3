"""What a plan is compiled for, as every pass receives it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from adapters.base import Capabilities
from gateway.plan.plan import Plan
from gateway.planning.context import PlannerLimits, PlanPolicy
from gateway.planning.estimates import Statistics


@dataclass(frozen=True)
class Target:
    """The caller's policy and the departments' sources a plan is compiled for."""

    capabilities: Mapping[str, Capabilities]
    #: ``None`` without a policy (authentication switched off): every caller sees everything.
    policy: PlanPolicy | None = None
    limits: PlannerLimits = field(default_factory=PlannerLimits)
    #: Row counts per department and table, for ordering an entity's semi-join steps.
    statistics: Statistics = field(default_factory=dict)
    #: Statements whose rows reach the caller also read their tables' identifiers, for the audit.
    capture_subjects: bool = False


#: A pass: a plan in, a new plan out, for one target (pure: the plan it is given is not changed).
Pass = Callable[[Plan, Target], Plan]
