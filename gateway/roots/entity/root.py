"""An entity root field as a :class:`~gateway.plan.plan.RootNode`: its plan (:class:`EntityQuery`), and
how it runs (:class:`~gateway.roots.entity.run.EntityRun`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Capabilities
from gateway.plan.nodes import ScanChange, ScanNode
from gateway.plan.run import Path, Run
from gateway.roots.entity.plan import EntityQuery
from gateway.roots.entity.run import EntityRun


@dataclass(frozen=True)
class EntityRoot:
    """``person``, ``people`` or ``peopleCount``."""

    query: EntityQuery

    @property
    def response_key(self) -> str:
        return self.query.response_key

    def statements(self) -> list[ScanNode]:
        return self.query.statements()

    def cost(self, variables: Mapping[str, Any]) -> int:
        return self.query.cost(variables)

    def roles(self) -> dict[int, str]:
        return self.query.roles()

    def map_scans(self, change: ScanChange) -> EntityRoot:
        return EntityRoot(self.query.map_scans(change))

    def fused(self, capabilities: Mapping[str, Capabilities]) -> EntityRoot:
        return EntityRoot(self.query.fused())

    async def execute(self, run: Run, path: Path) -> Any:
        run.may_leave_out()  # people are paged and matched, their records picked: the audit walks the answer
        return await EntityRun(run, self.query).execute(path)
