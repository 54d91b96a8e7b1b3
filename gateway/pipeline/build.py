"""The build stage: a validated GraphQL operation → a :class:`~gateway.plan.plan.Plan`. Pure: no I/O.

It walks the operation with graphql-core's own field collection (fragments, ``@skip``/``@include``
and aliases handled exactly as graphql-core's executor would) and hands each root field to the builder
of its kind (:data:`ROOT_BUILDERS`, chosen by the schema's binding of the field): a department's
namespace, an entity field, ``__typename`` or introspection. Every builder makes its scans with the
operation's :class:`~gateway.planning.context.PlanningContext`: the columns each selection needs (plus
the join keys its children need), the caller's filter, ordering and page, as canonical SQL. The policy
is not in them yet: enforcing it is the next pass (:mod:`gateway.pipeline.protect`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLField, OperationDefinitionNode, OperationType
from graphql.execution.collect_fields import collect_fields

from gateway.errors import BadRequestError, ForbiddenFieldError
from gateway.pipeline.target import Target
from gateway.plan.plan import Plan, RootNode
from gateway.planning.context import PlanningContext
from gateway.roots.entity.build import EntityPlanner
from gateway.roots.fields import Typename, introspection
from gateway.roots.namespace import plan_namespace
from schema.gateway_schema import FieldBinding, GatewaySchema

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})

#: A root field's builder: (context, response key, binding, field definition, its nodes) → the field.
RootBuilder = Callable[[PlanningContext, str, FieldBinding, GraphQLField, list[FieldNode]], RootNode]


def _namespace(
    context: PlanningContext, key: str, binding: FieldBinding, field_def: GraphQLField, nodes: list[FieldNode]
) -> RootNode:
    return plan_namespace(context, key, binding.department, field_def, nodes)


def _entity(
    context: PlanningContext, key: str, binding: FieldBinding, field_def: GraphQLField, nodes: list[FieldNode]
) -> RootNode:
    assert binding.entity is not None
    return EntityPlanner(context, binding.entity).root(key, binding.kind, field_def, nodes)


#: The builder of each kind of root field, by the binding kind of the schema's root fields.
ROOT_BUILDERS: Mapping[str, RootBuilder] = {
    "namespace": _namespace,
    "entity_lookup": _entity,
    "entity_list": _entity,
    "entity_count": _entity,
}


def build(
    schema: GatewaySchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    target: Target,
) -> Plan:
    """The plan of ``operation`` (its coerced ``variables``) in the caller's ``schema``, for ``target``."""
    if operation.operation is not OperationType.QUERY:
        raise BadRequestError(f"{operation.operation.value} operations are not supported: fedgate is read-only")
    context = PlanningContext(
        schema, target.capabilities, target.limits, target.policy, target.statistics, document, variables,
        capture_subjects=target.capture_subjects,
    )  # fmt: skip
    query_type = context.graphql.query_type
    assert query_type is not None
    roots: list[RootNode] = []
    fields = collect_fields(context.graphql, context.fragments, context.variables, query_type, operation.selection_set)
    for key, nodes in fields.items():
        name = nodes[0].name.value
        if name == "__typename":
            roots.append(Typename(key, query_type.name))
        elif name in INTROSPECTION_FIELDS:
            roots.append(introspection(key, context.graphql, operation, nodes, context.fragments))
        else:
            binding = schema.binding(query_type.name, name)
            assert binding is not None
            roots.append(ROOT_BUILDERS[binding.kind](context, key, binding, query_type.fields[name], nodes))
    if context.guard.refused:
        fields_refused = ", ".join(sorted(context.guard.refused))
        raise ForbiddenFieldError(f"the query asks for fields outside your grants: {fields_refused}")
    return Plan(operation.operation.value, tuple(roots), frozenset(context.provenance.structural))
