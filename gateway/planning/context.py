"""The context of planning one operation, shared by every kind of root field.

A :class:`PlanningContext` holds what the build stage knows while it walks one operation (the schema,
the sources' capabilities, the caller's policy, fragments, variables and their provenance, the field
guard) and builds the scans every kind of root field is made of: :meth:`select` turns a selection into
response fields and child edges, :meth:`statement` turns a table, its arguments and the :class:`Columns`
a selection uses into one :class:`~gateway.plan.nodes.ScanNode`. Statements are built as the caller
asked for them; the policy is enforced inside them by the protect pass (:mod:`gateway.pipeline.protect`),
which only needs a hidden ordering key to exist where the caller cannot sort by the primary key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    VariableNode,
    visit,
)
from graphql.execution.collect_fields import collect_sub_fields
from graphql.language import Visitor
from sqlglot import exp

from adapters.base import Capabilities, Capability, ParameterSpec
from gateway.plan.nodes import SUBJECT_PREFIX, ChildEdge, Const, OutputField, Page, ScanNode, SubjectColumn
from gateway.planning.arguments import Provenance
from gateway.planning.estimates import Statistics
from gateway.planning.filters import FilterCompiler, Parameters, comparable, ordering, page_slots, value_slot
from gateway.planning.guard import FieldGuard, ForbiddenMode
from gateway.planning.statements import ScanRequest, build_statement
from gateway.policy.access import Access
from gateway.policy.rewrite import ROW_KEY, TablePolicy
from schema.catalog import Column, Department, Table
from schema.graphql_types import GatewaySchema

#: The response fields of a selection and the child edges among them.
Selection: TypeAlias = tuple[list[OutputField], list[ChildEdge]]


@dataclass(frozen=True)
class PlannerLimits:
    """Limits the planner enforces while building a plan."""

    max_in_list: int = 1000


@dataclass(frozen=True)
class PlanPolicy:
    """What the planner enforces for one caller."""

    access: Access
    #: Key for the hidden ordering key of tables whose primary key the caller cannot read plainly.
    row_key_secret: bytes = b""
    #: Check field by field (the caller's schema shows more than their grants).
    check_fields: bool = False
    forbidden_fields: ForbiddenMode = "reject"


class PlanningContext:
    """The state of planning one operation, and the scans built within it."""

    def __init__(
        self,
        schema: GatewaySchema,
        capabilities: Mapping[str, Capabilities],
        limits: PlannerLimits,
        policy: PlanPolicy | None,
        statistics: Statistics,
        document: DocumentNode,
        variables: Mapping[str, Any],
        *,
        capture_subjects: bool = False,
    ) -> None:
        self.schema = schema
        #: Every statement whose rows reach the caller also reads its table's identifiers (for the audit).
        self.capture_subjects = capture_subjects
        self.graphql = schema.graphql
        self.capabilities = capabilities
        self.limits = limits
        self.policy = policy
        self.statistics = statistics
        self.variables = dict(variables)
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.provenance = Provenance(self.variables)
        self.provenance.structural.update(directive_variables(document))
        checked = self.policy is not None and self.policy.check_fields
        mode = self.policy.forbidden_fields if self.policy is not None else "reject"
        self.guard = FieldGuard(self.policy.access if checked and self.policy else None, mode)

    def object_type(self, field_def: GraphQLField) -> GraphQLObjectType:
        """The object type a field returns, through lists and non-nulls."""
        type_ = field_def.type
        while hasattr(type_, "of_type"):
            type_ = type_.of_type
        assert isinstance(type_, GraphQLObjectType)
        return type_

    def scan(
        self,
        department: Department,
        table: Table,
        field_def: GraphQLField,
        nodes: list[FieldNode],
        *,
        lookup: bool = False,
        key_column: Column | None = None,
        single_child: bool = False,
    ) -> ScanNode:
        """The scan of a list, look-up or relationship field (``key_column``: the child side of the join)."""
        object_type = self.object_type(field_def)
        columns = Columns()
        key_index = columns.use(key_column) if key_column is not None else None
        fields, children = self.select(department, table, object_type, nodes, columns)
        if not columns.list and not any(output.kind == "forbidden" for output in fields):
            for name in table.primary_key:  # only __typename: the rows are counted by their key
                columns.use(table.column(name))
        return self.statement(
            department, table, object_type.name, self.provenance.argument_values(field_def, nodes[0]), columns.list,
            fields, children, key_column, key_index, lookup=lookup, single_child=single_child,
        )  # fmt: skip

    def select(
        self,
        department: Department,
        table: Table,
        object_type: GraphQLObjectType,
        nodes: list[FieldNode],
        columns: Columns,
    ) -> Selection:
        """The response fields of ``nodes``' selection over ``table``'s rows, using ``columns``."""
        fields: list[OutputField] = []
        children: list[ChildEdge] = []
        for sub_key, sub_nodes in collect_sub_fields(
            self.graphql, self.fragments, self.variables, object_type, nodes
        ).items():
            name = sub_nodes[0].name.value
            coordinate = f"{object_type.name}.{name}"
            binding = self.schema.binding(object_type.name, name)
            if name == "__typename":
                fields.append(OutputField(sub_key, "typename", type_name=object_type.name))
            elif binding is not None and binding.column is not None:
                if self.guard.output(department, table, [binding.column], coordinate):
                    fields.append(OutputField(sub_key, "column", columns.use(binding.column)))
                else:
                    fields.append(OutputField(sub_key, "forbidden", type_name=coordinate))
            else:
                assert binding is not None
                assert binding.relationship is not None
                relationship = binding.relationship
                ((local, remote),) = relationship.on.items()
                target_department, target = self.schema.catalog.table(relationship.target)
                allowed = (
                    self.guard.output(department, table, [table.column(local)], coordinate)
                    and self.guard.output(target_department, target, [target.column(remote)], coordinate)
                    and self.guard.through(department, table, relationship, coordinate)
                )
                if not allowed:
                    fields.append(OutputField(sub_key, "forbidden", type_name=coordinate))
                    continue
                child = self.scan(
                    target_department,
                    target,
                    object_type.fields[name],
                    sub_nodes,
                    key_column=target.column(remote),
                    single_child=relationship.kind == "one",
                )
                fields.append(OutputField(sub_key, "child", len(children)))
                children.append(
                    ChildEdge(sub_key, columns.use(table.column(local)), relationship.kind == "many", child)
                )
        return fields, children

    def statement(
        self,
        department: Department,
        table: Table,
        type_name: str,
        arguments: Mapping[str, Any],
        columns: list[Column],
        fields: list[OutputField],
        children: list[ChildEdge],
        key_column: Column | None,
        key_index: int | None,
        *,
        lookup: bool = False,
        single_child: bool = False,
        paged: bool = True,
    ) -> ScanNode:
        """The scan reading ``columns`` of ``table`` as the field's ``arguments`` ask (``paged=False``: every
        row of each key, for internal scans such as an entity's link rows)."""
        parameters = Parameters()
        alias = table.name
        inputs = self.schema.table_inputs(department.name, table.name)
        policy = self.table_policy(department, table)
        condition: exp.Expr | None
        order: list[exp.Ordered] = []
        page: Page | None = None
        if lookup:
            keys = [table.column(name) for name in table.primary_key]
            for column in keys:
                self.guard.condition(department, table, column, f"{type_name}.{column.graphql_name}")
            condition = exp.and_(
                *(
                    exp.EQ(
                        this=comparable(column, alias),
                        expression=parameters.placeholder(
                            ParameterSpec(column.type),
                            value_slot(arguments[column.graphql_name], self.provenance, column.type),
                        ),
                    )
                    for column in keys
                )
            )
        else:
            filters = FilterCompiler(table, inputs, alias, parameters, self.provenance, self.limits.max_in_list)
            condition = filters.condition(arguments.get("where"))
            tie_breakers: list[exp.Expr] | None = None
            if policy is not None and not all(policy.shows_plainly(name) for name in table.primary_key):
                tie_breakers = [exp.column(ROW_KEY, table=alias, quoted=True)]
            order = ordering(
                arguments.get("orderBy"),
                table,
                inputs,
                alias,
                self.provenance,
                used=filters.used,
                tie_breakers=tie_breakers,
            )
            for column in filters.used.values():
                self.guard.condition(department, table, column, f"{type_name}.{column.graphql_name}")
            if single_child and key_column is not None and list(table.primary_key) == [key_column.name]:
                order, page = [], None  # joined on the whole primary key: at most one row per parent already
            elif single_child:
                page = Page(limit=Const(1), offset=Const(0))
            elif paged:
                page = page_slots(arguments, self.provenance, self.schema.page_sizes)
        subjects: list[SubjectColumn] = []
        if self.capture_subjects:
            people = self.schema.catalog.person_identifiers
            selected = {column.name: position for position, column in enumerate(columns)}
            extra: list[Column] = []
            for column in table.columns:
                if column.identifier is None or column.identifier not in people:
                    continue
                if column.name in selected and (policy is None or policy.shows_plainly(column.name)):
                    # the caller is shown the stored value itself: the column already read says whom
                    subjects.append(SubjectColumn(selected[column.name], column.identifier, column.name))
                else:
                    subjects.append(SubjectColumn(len(columns) + len(extra), column.identifier, column.name))
                    extra.append(subject_column(column))
            columns = [*columns, *extra]
        request = ScanRequest(department, table, columns, condition, order, page, parameters, key_column)
        windows = self.capabilities[department.name].supports(Capability.WINDOW_FUNCTIONS)
        statement = build_statement(request, window_functions=windows)
        return ScanNode(
            department=department,
            table=table,
            type_name=type_name,
            query=statement.query,
            parameters=dict(parameters.items),
            fields=tuple(fields),
            children=tuple(children),
            key_index=key_index,
            keys_parameter=statement.keys_parameter,
            residual_page=statement.residual_page,
            page=page,
            subjects=tuple(subjects),
        )

    def table_policy(self, department: Department, table: Table) -> TablePolicy | None:
        """The caller's policy for ``table``, where it needs enforcing in SQL (``None`` without a policy)."""
        if self.policy is None:
            return None
        return TablePolicy.for_table(self.policy.access, department.name, table, self.policy.row_key_secret)


def subject_column(column: Column) -> Column:
    """The pseudo-column a statement reads ``column``'s stored value under, for the audit (the protect pass
    and the subjects pass make it read the stored value, never the caller's masked one)."""
    return column.model_copy(update={"name": f"{SUBJECT_PREFIX}{column.name}"})


class Columns:
    """The columns a scan reads, each once, in first-use order."""

    def __init__(self) -> None:
        self.list: list[Column] = []
        self._positions: dict[str, int] = {}

    def use(self, column: Column) -> int:
        if column.name not in self._positions:
            self._positions[column.name] = len(self.list)
            self.list.append(column)
        return self._positions[column.name]


def directive_variables(document: DocumentNode) -> set[str]:
    """Variables used by directives anywhere in the document (``@include(if: $x)`` shapes the plan)."""
    found: set[str] = set()

    class _Collector(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            for argument in node.arguments or ():
                visit(argument, _VariableNames(found))

    visit(document, _Collector())
    return found


class _VariableNames(Visitor):
    def __init__(self, found: set[str]) -> None:
        super().__init__()
        self.found = found

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.found.add(node.name.value)
