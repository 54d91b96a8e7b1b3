"""A department's namespace field (``health { ... }``) and the list and look-up fields inside it.

Each field inside a namespace is a :class:`~gateway.plan.plan.RootNode` of its own, answered at the
namespace's path plus its key: a :class:`RootScan` (one statement, then its child levels), a
:class:`ForbiddenRoot` (null, without asking the source) or a
:class:`~gateway.roots.fields.Typename`. The namespace answers them concurrently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLField
from graphql.execution.collect_fields import collect_sub_fields

from adapters.base import Capabilities
from gateway.errors import ForbiddenColumnError, SourceError
from gateway.plan.nodes import ScanChange, ScanNode
from gateway.plan.plan import RootNode
from gateway.plan.run import At, Failure, Level, Listed, Path, Run, concurrently
from gateway.planning.context import PlanningContext
from gateway.roots.fields import NoStatements, Typename
from gateway.roots.fusion import fuse_root
from schema.catalog import Department


@dataclass(frozen=True)
class RootScan:
    """A list or look-up field of a department's namespace: one statement, then its child levels."""

    response_key: str
    node: ScanNode
    single: bool

    def statements(self) -> list[ScanNode]:
        return self.node.walk()

    def cost(self, variables: Mapping[str, Any]) -> int:
        return self.node.cost(variables)

    def roles(self) -> dict[int, str]:
        return {}

    def map_scans(self, change: ScanChange) -> RootScan:
        return dataclasses.replace(self, node=self.node.map(change))

    def fused(self, capabilities: Mapping[str, Capabilities]) -> RootScan:
        return dataclasses.replace(self, node=fuse_root(self.node, capabilities))

    async def execute(self, run: Run, path: Path) -> Any:
        node = self.node
        try:
            rows = await run.fetch(node, {})
        except SourceError as error:
            run.fail(Failure(error, path=path))
            return None
        fused_rows: Sequence[Sequence[Any]] = ()
        if node.fused is not None:
            rows, fused_rows = node.fused.split(rows)
        objects = run.objects(node, rows)
        if self.single:
            value: Any = run.one(objects)
            level: Level = At(path)
        else:
            value, level = objects, Listed(path, objects)
        await run.fill(node, rows, objects, level, fused_rows)
        return value


@dataclass(frozen=True)
class ForbiddenRoot(NoStatements):
    """A list or look-up field answered null without asking its source (``forbidden_fields: null``): its
    table is outside the caller's grants, or every field selected in it is. ``coordinates`` name them."""

    response_key: str
    coordinates: tuple[str, ...]

    async def execute(self, run: Run, path: Path) -> Any:
        for coordinate in self.coordinates:
            run.fail(Failure(ForbiddenColumnError(coordinate), path=path))
        return None


@dataclass(frozen=True)
class Namespace:
    """A department's namespace field and the fields selected inside it."""

    response_key: str
    department: Department
    entries: tuple[RootNode, ...]

    def statements(self) -> list[ScanNode]:
        """Each field's statements in query order."""
        return [node for entry in self.entries for node in entry.statements()]

    def cost(self, variables: Mapping[str, Any]) -> int:
        return sum(entry.cost(variables) for entry in self.entries)

    def roles(self) -> dict[int, str]:
        return {}

    def map_scans(self, change: ScanChange) -> Namespace:
        return dataclasses.replace(self, entries=tuple(entry.map_scans(change) for entry in self.entries))

    def fused(self, capabilities: Mapping[str, Capabilities]) -> Namespace:
        return dataclasses.replace(self, entries=tuple(entry.fused(capabilities) for entry in self.entries))

    async def execute(self, run: Run, path: Path) -> Any:
        entries = self.entries
        values = await concurrently([entry.execute(run, (*path, entry.response_key)) for entry in entries])
        return {entry.response_key: value for entry, value in zip(entries, values, strict=True)}


def plan_namespace(
    context: PlanningContext, key: str, department: Department, field_def: GraphQLField, nodes: list[FieldNode]
) -> Namespace:
    """A department's namespace field: one root scan per list or look-up field selected in it."""
    namespace_type = context.object_type(field_def)
    entries: list[RootNode] = []
    for sub_key, sub_nodes in collect_sub_fields(
        context.graphql, context.fragments, context.variables, namespace_type, nodes
    ).items():
        name = sub_nodes[0].name.value
        if name == "__typename":
            entries.append(Typename(sub_key, namespace_type.name))
            continue
        binding = context.schema.binding(namespace_type.name, name)
        assert binding is not None
        assert binding.table is not None
        coordinate = f"{namespace_type.name}.{name}"
        if not context.guard.root(department, binding.table, coordinate):
            entries.append(ForbiddenRoot(sub_key, (coordinate,)))
            continue
        single = binding.kind == "lookup"
        node = context.scan(department, binding.table, namespace_type.fields[name], sub_nodes, lookup=single)
        if not node.reads_columns:
            forbidden = tuple(field.type_name for field in node.fields if field.kind == "forbidden")
            entries.append(ForbiddenRoot(sub_key, forbidden))
            continue
        entries.append(RootScan(sub_key, node, single=single))
    return Namespace(key, department, tuple(entries))
