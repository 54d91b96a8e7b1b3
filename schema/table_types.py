"""GraphQL types for the catalog's tables: one object type, filter and sort input per visible table.

Also each department's namespace type (``HealthQuery``) with its list and look-up fields. What a
schema exposes is decided here, by a :class:`Visibility`: tables with no readable column, relationships
whose join columns are not readable at both ends, and look-ups by unreadable keys are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import graphene
from graphql import GraphQLSchema

from schema.catalog_model import Catalog
from schema.departments import Column, Department, Relationship, Table
from schema.gateway_schema import FieldBinding, GatewaySchema, PageSizes, TableInputs
from schema.graphql_scalars import COMPARISONS, SCALARS, SortDirection, type_meta


@dataclass(frozen=True)
class Visibility:
    """What a schema exposes: readable columns per (department, table), and the tables reachable only
    through certain relationships (``department.table.relationship``), which get no root fields."""

    columns: Mapping[tuple[str, str], frozenset[str]]
    via_only: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    #: Readable columns shown unmasked on every row; only these can link records (``None``: all readable).
    plain: Mapping[tuple[str, str], frozenset[str]] | None = None


class TableTypes:
    """Builds the table types of one schema, filling its :class:`GatewaySchema` with their bindings.

    :mod:`schema.entity_types` builds the entities' types on top of these (their members are table types).
    """

    def __init__(self, catalog: Catalog, page_sizes: PageSizes, visible: Visibility | None, key: str) -> None:
        self.catalog = catalog
        self.page_sizes = page_sizes
        self.visible = visible
        self.schema = GatewaySchema(catalog=catalog, graphql=GraphQLSchema(), key=key, page_sizes=page_sizes)
        self.object_types: dict[tuple[str, str], type[graphene.ObjectType]] = {}
        self.filter_types: dict[tuple[str, str], type[graphene.InputObjectType]] = {}
        self.order_types: dict[tuple[str, str], type[graphene.InputObjectType]] = {}

    def columns(self, department: Department, table: Table) -> list[Column]:
        """The table's columns this schema exposes (all of them when there is no visibility filter)."""
        if self.visible is None:
            return list(table.columns)
        readable = self.visible.columns.get((department.name, table.name), frozenset())
        return [column for column in table.columns if column.name in readable]

    def plain(self, department: Department, table: Table, column: str) -> bool:
        """The caller reads ``column`` unmasked on every row (so it can join records across departments)."""
        readable = any(c.name == column for c in self.columns(department, table))
        if self.visible is None or self.visible.plain is None:
            return readable
        return readable and column in self.visible.plain.get((department.name, table.name), frozenset())

    def root_readable(self, department: Department, table: Table) -> bool:
        """The table may be queried directly (not only through certain relationships)."""
        return table in self.root_tables(department)

    def tables(self, department: Department) -> list[Table]:
        return [table for table in department.tables if self.columns(department, table)]

    def root_tables(self, department: Department) -> list[Table]:
        via_only = self.visible.via_only if self.visible is not None else {}
        return [table for table in self.tables(department) if (department.name, table.name) not in via_only]

    def relationships(self, department: Department, table: Table) -> list[Relationship]:
        """Relationships whose target is visible and whose join columns are readable at both ends.

        Joining on a column the caller cannot read would let them learn its values through the join.
        """
        readable = {column.name for column in self.columns(department, table)}
        kept = []
        for relationship in table.relationships:
            target_department, target = self.catalog.table(relationship.target)
            target_readable = {column.name for column in self.columns(target_department, target)}
            ((local, remote),) = relationship.on.items()
            via = self.visible.via_only.get((target_department.name, target.name)) if self.visible else None
            reachable = via is None or f"{department.name}.{table.name}.{relationship.name}" in via
            if local in readable and remote in target_readable and reachable:
                kept.append(relationship)
        return kept

    def build(self, root: dict[str, Any]) -> None:
        """Create every visible table's types, and add one namespace field per department to ``root``."""
        departments = [department for department in self.catalog.departments if self.tables(department)]
        namespaces = [department for department in departments if self.root_tables(department)]
        for department in departments:
            for table in self.tables(department):
                self._inputs(department, table)
        for department in departments:
            for table in self.tables(department):
                self._object_type(department, table)
        for department in namespaces:
            namespace = self._namespace(department)
            description = f"{department.title}. {department.description}".strip()
            root[department.graphql_field] = graphene.Field(namespace, description=description)
            self.schema.bindings[("Query", department.graphql_field)] = FieldBinding("namespace", department)

    def _inputs(self, department: Department, table: Table) -> None:
        type_name = department.type_name(table)
        key = (department.name, table.name)
        filter_name, order_name = f"{type_name}Filter", f"{type_name}OrderBy"
        columns = self.columns(department, table)
        filter_fields: dict[str, Any] = {
            column.graphql_name: graphene.InputField(COMPARISONS[column.type], description=column.description or None)
            for column in columns
        }
        self_ref: Callable[[], Any] = lambda: self.filter_types[key]  # noqa: E731 - a lazy self-reference
        filter_fields["and"] = graphene.InputField(
            graphene.List(graphene.NonNull(self_ref)), description="All must hold."
        )
        filter_fields["or"] = graphene.InputField(
            graphene.List(graphene.NonNull(self_ref)), description="At least one must hold."
        )
        filter_fields["not"] = graphene.InputField(self_ref, description="Must not hold.")
        self.filter_types[key] = type(
            filter_name,
            (graphene.InputObjectType,),
            {
                "Meta": type_meta(filter_name, f"Conditions on {type_name} rows; all given conditions must hold."),
                **filter_fields,
            },
        )
        orderable = [column for column in columns if column.type.is_orderable]
        if orderable:  # a type with no fields is not valid GraphQL: then there is no orderBy argument
            self.order_types[key] = type(
                order_name,
                (graphene.InputObjectType,),
                {
                    "Meta": type_meta(order_name, f"One sort key of {type_name}: set exactly one field per item."),
                    **{column.graphql_name: graphene.InputField(SortDirection) for column in orderable},
                },
            )
        self.schema.inputs[key] = TableInputs(
            filter_columns={column.graphql_name: column for column in columns},
            order_columns={column.graphql_name: column for column in orderable},
        )

    def list_arguments(self, department: Department, table: Table) -> dict[str, graphene.Argument]:
        """The ``where``, ``orderBy``, ``limit`` and ``offset`` arguments of a list of ``table``'s rows."""
        key = (department.name, table.name)
        sizes = self.page_sizes
        arguments = {
            "where": graphene.Argument(self.filter_types[key], description="Only rows meeting these conditions."),
            "limit": graphene.Argument(
                graphene.Int, default_value=sizes.default, description=f"Page size, at most {sizes.maximum}."
            ),
            "offset": graphene.Argument(
                graphene.Int, default_value=0, description=f"Rows to skip, at most {sizes.max_offset}."
            ),
        }
        if key in self.order_types:
            arguments["orderBy"] = graphene.Argument(
                graphene.List(graphene.NonNull(self.order_types[key])),
                description="Sort keys, most significant first; ties are broken by primary key.",
            )
        return dict(sorted(arguments.items(), key=lambda item: ["where", "orderBy", "limit", "offset"].index(item[0])))

    def _object_type(self, department: Department, table: Table) -> None:
        type_name = department.type_name(table)
        fields: dict[str, Any] = {}
        for column in self.columns(department, table):
            fields[column.graphql_name] = graphene.Field(SCALARS[column.type], description=column.description or None)
            self.schema.bindings[(type_name, column.graphql_name)] = FieldBinding("column", department, table, column)
        for relationship in self.relationships(department, table):
            target_department, target = self.catalog.table(relationship.target)
            target_type = self._lazy_type(target_department.name, target.name)
            description = relationship.description or None
            if relationship.kind == "many":
                fields[relationship.graphql_name] = graphene.Field(
                    graphene.List(graphene.NonNull(target_type)),
                    args=self.list_arguments(target_department, target),
                    description=description,
                )
            else:
                fields[relationship.graphql_name] = graphene.Field(target_type, description=description)
            self.schema.bindings[(type_name, relationship.graphql_name)] = FieldBinding(
                "relationship", department, table, relationship=relationship
            )
        description = table.description or f"A row of {department.name}.{table.name}."
        self.object_types[(department.name, table.name)] = type(
            type_name, (graphene.ObjectType,), {"Meta": type_meta(type_name, description), **fields}
        )

    def _lazy_type(self, department: str, table: str) -> Callable[[], type[graphene.ObjectType]]:
        return lambda: self.object_types[(department, table)]

    def _namespace(self, department: Department) -> type[graphene.ObjectType]:
        name = f"{department.type_prefix}Query"
        fields: dict[str, Any] = {}
        for table in self.root_tables(department):
            object_type = self.object_types[(department.name, table.name)]
            summary = table.description or table.name
            fields[table.list_field] = graphene.Field(
                graphene.List(graphene.NonNull(object_type)),
                args=self.list_arguments(department, table),
                description=f"{summary} Returns a page of rows.",
            )
            self.schema.bindings[(name, table.list_field)] = FieldBinding("list", department, table)
            readable = {column.name for column in self.columns(department, table)}
            if not set(table.primary_key) <= readable:
                continue  # a look-up by a column the caller cannot read would reveal which values exist
            fields[table.lookup_field_name] = graphene.Field(
                object_type,
                args={
                    column.graphql_name: graphene.Argument(
                        graphene.NonNull(SCALARS[column.type]), description=column.description or None
                    )
                    for column in (table.column(pk) for pk in table.primary_key)
                },
                description=f"{summary} Looks up one row by primary key (null when there is none).",
            )
            self.schema.bindings[(name, table.lookup_field_name)] = FieldBinding("lookup", department, table)
        description = f"{department.title}: {department.description}".strip(": ")
        return type(name, (graphene.ObjectType,), {"Meta": type_meta(name, description), **fields})
