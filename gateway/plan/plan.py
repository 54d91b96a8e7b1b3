"""The plan of one operation: its root fields, each a :class:`RootNode`, and the bound plan the executor runs.

A :class:`Plan` is built once per (caller's rights, document, operation, structural variable values),
passed through the pipeline's passes (:mod:`gateway.pipeline`), each returning a new plan, and bound to
the departments' adapters (:class:`BoundPlan`); the bound plan is what is cached. Nothing in a plan is
ever written after it is made.

Every kind of root field implements :class:`RootNode`: a department's namespace and the fields inside it
(:mod:`gateway.roots.namespace`), an entity field (:mod:`gateway.roots.entity`), ``__typename`` and
introspection (:mod:`gateway.roots.fields`). The passes, the executor and explain use only this
protocol; none of them asks which kind a root is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, Self

from adapters.base import Capabilities, PreparedQuery
from gateway.plan.nodes import ScanChange, ScanNode
from gateway.plan.run import Path, Run


class RootNode(Protocol):
    """A field at the root of the answer (or inside a department's namespace), of any kind."""

    @property
    def response_key(self) -> str:
        """The field's key in the response."""
        ...

    def statements(self) -> list[ScanNode]:
        """Every statement the field may run, in the order it runs them (explain lists them so)."""
        ...

    def cost(self, variables: Mapping[str, Any]) -> int:
        """Most rows the field's answer can hold."""
        ...

    def roles(self) -> dict[int, str]:
        """What its statements are for (by ``id`` of their nodes), in words, for explain; may be empty."""
        ...

    def map_scans(self, change: ScanChange) -> Self:
        """This field with every statement it runs changed by ``change`` (a pass over single statements)."""
        ...

    def fused(self, capabilities: Mapping[str, Capabilities]) -> Self:
        """This field with the statements it can combine into one round trip combined, where the sources'
        ``capabilities`` allow (the fuse pass); itself when there are none."""
        ...

    async def execute(self, run: Run, path: Path) -> Any:
        """The field's value in the answer at ``path``; failures are recorded with ``run``, not raised."""
        ...


@dataclass(frozen=True)
class Plan:
    """Everything needed to answer one operation, minus the values."""

    operation_type: str
    roots: tuple[RootNode, ...]
    #: Variables whose values shaped the plan (part of the cache key).
    structural_variables: frozenset[str] = frozenset()

    def ordered_scans(self) -> list[ScanNode]:
        """Every statement, root fields in query order, each in the order it runs them."""
        return [node for root in self.roots for node in root.statements()]

    @cached_property
    def scans(self) -> tuple[ScanNode, ...]:
        """Every statement the plan may run, each once."""
        return tuple({id(node): node for node in self.ordered_scans()}.values())

    def cost(self, variables: Mapping[str, Any]) -> int:
        """Most rows the whole plan can return."""
        return sum(root.cost(variables) for root in self.roots)

    def map_roots(self, change: Callable[[RootNode], RootNode]) -> Plan:
        """A new plan with each root field changed by ``change``."""
        return Plan(self.operation_type, tuple(change(root) for root in self.roots), self.structural_variables)

    def map_scans(self, change: ScanChange) -> Plan:
        """A new plan with every statement changed by ``change`` (each statement once, however reached)."""
        changed: dict[int, tuple[ScanNode, ScanNode]] = {}

        def once(node: ScanNode) -> ScanNode:
            known = changed.get(id(node))
            if known is None:
                known = changed[id(node)] = (node, change(node))  # the node is kept, so its id stays unique
            return known[1]

        return self.map_roots(lambda root: root.map_scans(once))


@dataclass(frozen=True)
class BoundPlan:
    """A plan with every statement prepared by its department's adapter: what the executor runs and what
    the plan cache holds."""

    plan: Plan
    #: The prepared statement of each scan of the plan, by the scan's ``id`` (the plan holds the scans).
    statements: Mapping[int, PreparedQuery]

    def statement(self, scan: ScanNode) -> PreparedQuery:
        """The prepared statement of ``scan``, which must be one of the plan's."""
        return self.statements[id(scan)]
