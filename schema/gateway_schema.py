"""The generated schema as the gateway uses it: the graphql-core schema plus what each field means.

:class:`GatewaySchema` pairs the graphql-core schema with :class:`FieldBinding` records telling the
planner what each field stands for in the catalog, and :class:`TableInputs` telling it how a table's
``where`` and ``orderBy`` inputs map back to columns. :mod:`schema.graphql_types` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import DocumentNode, FieldNode, GraphQLSchema, TypeInfo, TypeInfoVisitor, Visitor, visit

from schema.catalog_model import Catalog
from schema.departments import Column, Department, Relationship, Table
from schema.entities import MergedField, ResolvedEntity, ResolvedMember

FieldKind = Literal[
    "namespace",
    "list",
    "lookup",
    "column",
    "relationship",
    "entity_lookup",
    "entity_list",
    "entity_count",
    "entity_key",
    "merged",
    "member",
    "links",
    "possible_matches",
    "match_link",
]


@dataclass(frozen=True, slots=True)
class FieldBinding:
    """What a field of the generated schema stands for in the catalog."""

    kind: FieldKind
    department: Department
    table: Table | None = None
    column: Column | None = None
    relationship: Relationship | None = None
    entity: ResolvedEntity | None = None
    member: ResolvedMember | None = None
    merged: MergedField | None = None


@dataclass(frozen=True, slots=True)
class TableInputs:
    """How a table's ``where`` and ``orderBy`` input fields map back to its columns."""

    filter_columns: Mapping[str, Column]
    order_columns: Mapping[str, Column]


@dataclass(frozen=True)
class PageSizes:
    """Default and maximum page size of every list field, and its largest offset."""

    default: int = 100
    maximum: int = 1000
    max_offset: int = 10_000


@dataclass
class GatewaySchema:
    """The generated graphql-core schema plus what each of its fields means."""

    catalog: Catalog
    graphql: GraphQLSchema
    #: Identifies what this schema exposes, stably across rebuilds (cache keys use it, never ``id()``).
    key: str = "all"
    bindings: dict[tuple[str, str], FieldBinding] = field(default_factory=dict)
    inputs: dict[tuple[str, str], TableInputs] = field(default_factory=dict)
    page_sizes: PageSizes = field(default_factory=PageSizes)

    def binding(self, type_name: str, field_name: str) -> FieldBinding | None:
        return self.bindings.get((type_name, field_name))

    def table_inputs(self, department: str, table: str) -> TableInputs:
        return self.inputs[(department, table)]

    def tables_asked(self, document: DocumentNode) -> set[tuple[str, str]]:
        """The (department, table) pairs whose fields ``document`` selects, in this schema."""
        type_info = TypeInfo(self.graphql)
        found: set[tuple[str, str]] = set()
        schema = self

        class _Fields(Visitor):
            def enter_field(self, node: FieldNode, *_: Any) -> None:
                parent = type_info.get_parent_type()
                binding = schema.binding(parent.name, node.name.value) if parent is not None else None
                if binding is None:
                    return
                if binding.table is not None:
                    found.add((binding.department.name, binding.table.name))
                if binding.member is not None:
                    found.add((binding.member.department.name, binding.member.table.name))
                elif binding.entity is not None:
                    found.add((binding.entity.link_department.name, binding.entity.link_table.name))

        visit(document, TypeInfoVisitor(type_info, _Fields()))
        return found
