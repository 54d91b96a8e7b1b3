"""The GraphQL vocabulary every generated type shares: scalars per column type, comparisons, sort order.

Also :func:`type_meta`, which names and describes each graphene type the schema's builders create
(:mod:`schema.table_types`, :mod:`schema.entity_types`).
"""

from __future__ import annotations

from typing import Any

import graphene

from schema.types import ColumnType


def type_meta(name: str, description: str) -> type:
    """The ``Meta`` class naming and describing a graphene type (no description when it is empty)."""
    return type("Meta", (), {"name": name, "description": description or None})


SortDirection = graphene.Enum(
    "SortDirection",
    [("ASC", "ASC"), ("DESC", "DESC")],
    description="Ascending (nulls last) or descending (nulls first). Text sorts by Unicode code point.",
)

SCALARS: dict[ColumnType, Any] = {
    ColumnType.STRING: graphene.String,
    ColumnType.INTEGER: graphene.Int,
    ColumnType.FLOAT: graphene.Float,
    ColumnType.DECIMAL: graphene.Decimal,
    ColumnType.BOOLEAN: graphene.Boolean,
    ColumnType.DATE: graphene.Date,
    ColumnType.DATETIME: graphene.DateTime,
}

COMPARISON_OPERATORS: dict[str, str] = {
    "eq": "Equal to the value.",
    "ne": "Not equal to the value (rows where the column is null never match).",
    "in": "Equal to one of the values.",
    "lt": "Less than the value.",
    "lte": "Less than or equal to the value.",
    "gt": "Greater than the value.",
    "gte": "Greater than or equal to the value.",
    "like": "Matches the SQL LIKE pattern: % any run of characters, _ one character, \\ escapes. Case-sensitive.",
    "isNull": "true: the column is null; false: it is not.",
}


def _comparison_type(column_type: ColumnType) -> type[graphene.InputObjectType]:
    scalar = SCALARS[column_type]
    name = f"{scalar._meta.name}Comparison"
    operators = ["eq", "ne", "in", "isNull"]
    if column_type.is_orderable:
        operators += ["lt", "lte", "gt", "gte"]
    if column_type is ColumnType.STRING:
        operators.append("like")
    fields: dict[str, Any] = {}
    for operator in operators:
        if operator == "in":
            fields[operator] = graphene.InputField(
                graphene.List(graphene.NonNull(scalar)), description=COMPARISON_OPERATORS[operator]
            )
        elif operator == "isNull":
            fields[operator] = graphene.InputField(graphene.Boolean, description=COMPARISON_OPERATORS[operator])
        else:
            fields[operator] = graphene.InputField(scalar, description=COMPARISON_OPERATORS[operator])
    description = f"Conditions on a {column_type.value} column; several conditions must all hold."
    return type(name, (graphene.InputObjectType,), {"Meta": type_meta(name, description), **fields})


COMPARISONS: dict[ColumnType, type[graphene.InputObjectType]] = {kind: _comparison_type(kind) for kind in ColumnType}
