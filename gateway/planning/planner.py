"""The planner: a validated GraphQL operation → a :class:`~gateway.planning.plan.Plan`. Pure: no I/O.

It walks the operation with graphql-core's own field collection (fragments, ``@skip``/``@include``
and aliases handled exactly as the executor would), and for every list, look-up and relationship field
builds one :class:`~gateway.planning.plan.ScanNode`: the columns the selection needs (plus the join keys
its children need), the caller's filter, ordering and page, and the statement for the department's
source. Namespace fields are planned here, entity fields by :mod:`gateway.planning.entities`; both build
their scans with the operation's :class:`~gateway.planning.context.PlanningContext`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLField, OperationDefinitionNode, OperationType
from graphql.execution.collect_fields import collect_fields, collect_sub_fields

from adapters.base import Capabilities
from gateway.errors import BadRequestError, ForbiddenFieldError
from gateway.planning.context import PlannerLimits, PlanningContext, PlanPolicy
from gateway.planning.entities import EntityPlanner
from gateway.planning.estimates import Statistics
from gateway.planning.plan import ForbiddenRoot, Introspection, Namespace, Plan, RootField, RootScan, Typename
from schema.catalog import Department
from schema.graphql_types import GatewaySchema

#: ``PlannerLimits`` and ``PlanPolicy`` are defined with the planning context, which reads them; they are
#: part of the planner's interface (``Planner(schema, capabilities, limits, policy=...)``).
__all__ = ["INTROSPECTION_FIELDS", "PlanPolicy", "Planner", "PlannerLimits"]

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


class Planner:
    """Builds plans for one generated schema, the sources' capabilities and one caller's policy."""

    def __init__(
        self,
        schema: GatewaySchema,
        capabilities: Mapping[str, Capabilities],
        limits: PlannerLimits | None = None,
        *,
        policy: PlanPolicy | None = None,
        statistics: Statistics | None = None,
    ) -> None:
        self.schema = schema
        self.capabilities = capabilities
        self.limits = limits or PlannerLimits()
        self.policy = policy
        self.statistics: Statistics = statistics or {}

    def plan(self, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> Plan:
        if operation.operation is not OperationType.QUERY:
            raise BadRequestError(f"{operation.operation.value} operations are not supported: fedgate is read-only")
        context = PlanningContext(
            self.schema, self.capabilities, self.limits, self.policy, self.statistics, document, variables
        )
        plan = _operation(context, operation)
        if context.guard.refused:
            fields = ", ".join(sorted(context.guard.refused))
            raise ForbiddenFieldError(f"the query asks for fields outside your grants: {fields}")
        return plan


def _operation(context: PlanningContext, operation: OperationDefinitionNode) -> Plan:
    """The plan of one operation: one root per response key of its selection."""
    query_type = context.graphql.query_type
    assert query_type is not None
    roots: list[RootField] = []
    fields = collect_fields(context.graphql, context.fragments, context.variables, query_type, operation.selection_set)
    for key, nodes in fields.items():
        name = nodes[0].name.value
        if name == "__typename":
            roots.append(Typename(key, query_type.name))
        elif name in INTROSPECTION_FIELDS:
            roots.append(Introspection(key))
        else:
            binding = context.schema.binding(query_type.name, name)
            assert binding is not None
            if binding.entity is not None:
                planner = EntityPlanner(context, binding.entity)
                roots.append(planner.root(key, binding.kind, query_type.fields[name], nodes))
            else:
                roots.append(_namespace(context, key, binding.department, query_type.fields[name], nodes))
    return Plan(
        operation_type=operation.operation.value,
        roots=tuple(roots),
        structural_variables=frozenset(context.provenance.structural),
        has_introspection=any(isinstance(root, Introspection) for root in roots),
        scans=context.scans,
    )


def _namespace(
    context: PlanningContext, key: str, department: Department, field_def: GraphQLField, nodes: list[FieldNode]
) -> Namespace:
    """A department's namespace field: one root scan per list or look-up field selected in it."""
    namespace_type = context.object_type(field_def)
    entries: list[RootScan | Typename | ForbiddenRoot] = []
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
            context.scans.remove(node)
            forbidden = tuple(field.type_name for field in node.fields if field.kind == "forbidden")
            entries.append(ForbiddenRoot(sub_key, forbidden))
            continue
        node = context.fuse(node)
        entries.append(RootScan(sub_key, node, single=single))
    return Namespace(key, department, tuple(entries))
