"""Argument values with their provenance: which parts came from variables.

graphql-core's ``get_argument_values`` resolves variables and forgets where each value came from. The
planner needs to know: a variable used where a *value* goes (``eq: $nhs``, ``limit: $n``) becomes a
bound parameter read at execution, so one cached plan serves every value; a variable used where
*structure* goes (``where: $filter``, ``isNull: $flag``, ``orderBy: $order``, ``@include(if: $x)``)
changes the SQL, so its value becomes part of the plan's cache key. :func:`argument_values` keeps each
variable reference as a :class:`Var`; consumers call :meth:`Provenance.plain` for structure (recording
the variables it consumed) or use the :class:`Var` as a parameter source.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    value_from_ast,
)


@dataclass(frozen=True, slots=True)
class Var:
    """A value supplied by the variable ``name`` (``value`` is its coerced value in this request)."""

    name: str
    value: Any


@dataclass
class Provenance:
    """Collects the variables whose values shaped the plan."""

    variables: Mapping[str, Any]
    structural: set[str] = field(default_factory=set)

    def plain(self, value: Any) -> Any:
        """``value`` with every :class:`Var` replaced by its value, recording those variables as structural."""
        if isinstance(value, Var):
            self.structural.add(value.name)
            return value.value
        if isinstance(value, dict):
            return {key: self.plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.plain(item) for item in value]
        return value

    def argument_values(self, field_def: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The field's arguments (defaults applied), variables kept as :class:`Var`."""
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        values: dict[str, Any] = {}
        for name, definition in field_def.args.items():
            if name in given:
                values[name] = self._evaluate(given[name], definition.type)
            elif _has_default(definition):
                values[name] = definition.default_value
        return values

    def _evaluate(self, node: ValueNode, type_: GraphQLInputType) -> Any:
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(node, VariableNode):
            name = node.name.value
            return Var(name, canonical(self.variables.get(name)))
        if isinstance(node, NullValueNode):
            return None
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            if isinstance(node, ListValueNode):
                return [self._evaluate(item, item_type) for item in node.values]
            return [self._evaluate(node, item_type)]
        if isinstance(type_, GraphQLInputObjectType) and isinstance(node, ObjectValueNode):
            return {
                item.name.value: self._evaluate(item.value, type_.fields[item.name.value].type) for item in node.fields
            }
        return canonical(value_from_ast(node, type_))


def canonical(value: Any) -> Any:
    """Plain Python data: enum members become their values, graphene input containers plain dicts."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def _has_default(definition: GraphQLArgument) -> bool:
    return definition.default_value is not Undefined
