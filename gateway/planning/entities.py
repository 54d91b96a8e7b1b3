"""Planning entity root fields: ``person(nhsNumber:)``, ``people(where:, limit:, offset:)``, ``peopleCount``.

See :mod:`gateway.planning.entity_plan` for the phases. Every statement planned here goes through the
same policy rewrite as any other, so a step, a translation or a page only ever sees rows and values the
caller may see; and members are joined only on columns the caller reads unmasked (see
:mod:`schema.entity_types`), so a join can never reveal a masked or hidden value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, GraphQLField, GraphQLObjectType
from graphql.execution.collect_fields import collect_sub_fields
from sqlglot import exp

from adapters.base import OutputColumn, ParameterSpec, SourceQuery
from adapters.canonical import key_set
from gateway.errors import BadUserInputError
from gateway.planning.arguments import Var
from gateway.planning.entity_plan import (
    EntityField,
    EntityRoot,
    EntityShape,
    KeyAll,
    KeyAny,
    KeyCondition,
    KeyStep,
    KeyValues,
    MemberScan,
    MergedValue,
    PossibleShape,
    Translation,
)
from gateway.planning.estimates import selectivity, table_rows
from gateway.planning.filters import FilterCompiler, Parameters, column_ref, comparable, page_slots, value_slot
from gateway.planning.page_links import page_with_links
from gateway.planning.plan import Const, Page, ParentKeys, ScanNode
from gateway.planning.statements import table_ref
from schema.catalog import Column, Department, Table
from schema.entities import ResolvedEntity, ResolvedMember
from schema.types import ColumnType

if TYPE_CHECKING:
    from gateway.planning.plan import ChildEdge, OutputField
    from gateway.planning.planner import Columns, _Planning

    Selection = tuple[list[OutputField], list[ChildEdge]]

_INTEGER = ParameterSpec(ColumnType.INTEGER)


def _view(spine: ScanNode, selection: Selection) -> ScanNode:
    """The spine's rows shaped by a selection: no statement of its own, it shares the spine's rows."""
    return dataclasses.replace(spine, fields=tuple(selection[0]), children=tuple(selection[1]))


class EntityPlanner:
    """Plans one entity root field within an operation being planned."""

    def __init__(self, planning: _Planning, entity: ResolvedEntity) -> None:
        self.planning = planning
        self.entity = entity
        self.translations: dict[str, Translation] = {}

    # --- root fields -----------------------------------------------------------------------------

    def root(self, response_key: str, kind: str, field_def: GraphQLField, nodes: list[FieldNode]) -> EntityRoot:
        planning = self.planning
        arguments = planning.provenance.argument_values(field_def, nodes[0])
        entity = self.entity
        key_column = entity.key_column
        if kind == "entity_lookup":
            slot = value_slot(
                arguments[key_column.graphql_name], planning.provenance, key_column.type, self._key_check(False)
            )
            shape = self._shape(planning.object_type(field_def), nodes)
            return self._root(EntityRoot(response_key, entity, "lookup", key=slot, shape=shape))
        condition = self._condition(arguments.get("where"), pushed=False)
        root = EntityRoot(response_key, entity, "count" if kind == "entity_count" else "list", condition=condition)
        root.chunk_size = planning.limits.max_in_list
        link_department, link_table = entity.link_department, entity.link_table
        if kind == "entity_count":
            if condition is None:
                root.count_scan = self._count_scan()
            else:
                root.present_scan = self._key_scan(link_department, link_table, [key_column], keys=key_column)
            return self._root(root)
        root.page = page_slots(arguments, planning.provenance, planning.schema.page_sizes)
        if condition is not None:
            root.keyed_page_scan = self._key_scan(
                link_department, link_table, [key_column], keys=key_column, page=root.page
            )
            root.present_scan = self._key_scan(link_department, link_table, [key_column], keys=key_column)
        root.shape = self._shape(planning.object_type(field_def), nodes)
        if condition is None:
            page = self._key_scan(link_department, link_table, [key_column], page=root.page, register=False)
            root.page_scan = planning.add_scan(page_with_links(page, root.shape.spine))
        return self._root(root)

    def _root(self, root: EntityRoot) -> EntityRoot:
        root.translations = dict(self.translations)
        return root

    def _key_check(self, is_list: bool) -> Callable[[Any], Any]:
        """Refuse keys that cannot be identifiers of the key's kind (a clearer answer than 'no such person')."""
        kinds = {kind.name: kind for kind in self.planning.schema.catalog.identifiers}
        pattern = kinds[self.entity.entity.key].pattern
        name = self.entity.key_column.graphql_name
        limit = self.planning.limits.max_in_list

        def check(value: Any) -> Any:
            values = value if is_list else [value]
            if is_list and values is not None and len(values) > limit:
                raise BadUserInputError(f"at most {limit} values of {name} may be given")
            for item in values or ():
                if pattern is not None and isinstance(item, str) and not re.fullmatch(pattern, item):
                    raise BadUserInputError(f"'{name}' values must match {pattern}")
            return value

        return check

    # --- the shape of entity objects ---------------------------------------------------------------

    def _shape(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> EntityShape:
        planning, entity = self.planning, self.entity
        from gateway.planning.planner import Columns

        spine_columns = Columns()
        key_index = spine_columns.use(entity.key_column)
        score_index = spine_columns.use(entity.score_column) if entity.score_column is not None else None
        identifiers = {
            member.link_column.name: spine_columns.use(member.link_column)
            for member in entity.members.values()
            if member.link_column is not None and self._member_allowed(member)
        }
        selection = collect_sub_fields(planning.graphql, planning.fragments, planning.variables, object_type, nodes)
        needs = self._merged_needs(object_type, selection)
        fields: list[EntityField] = []
        members: list[MemberScan] = []
        merged_fields: list[tuple[str, list[tuple[str, str]]]] = []
        links: Selection | None = None
        possible: tuple[str, GraphQLObjectType, list[FieldNode]] | None = None
        for response_key, sub_nodes in selection.items():
            name = sub_nodes[0].name.value
            binding = planning.schema.binding(object_type.name, name)
            if name == "__typename":
                fields.append(EntityField(response_key, "typename", type_name=object_type.name))
            elif binding is None:
                raise AssertionError(f"{object_type.name}.{name} has no binding")
            elif binding.kind == "entity_key":
                fields.append(EntityField(response_key, "key"))
            elif binding.kind == "merged":
                assert binding.merged is not None
                sources = [s for s in binding.merged.parsed_sources() if self._source_allowed(*s)]
                if not self._allowed(bool(sources), f"{object_type.name}.{name}", fields, response_key):
                    continue
                fields.append(EntityField(response_key, "merged", len(merged_fields)))
                merged_fields.append((response_key, sources))
            elif binding.kind == "member":
                assert binding.member is not None
                member = binding.member
                coordinate = f"{object_type.name}.{name}"
                if not self._allowed(self._member_allowed(member), coordinate, fields, response_key):
                    continue
                extra = needs.pop(member.member.name, []) if member.member.kind == "one" else []
                fields.append(EntityField(response_key, "member", len(members)))
                members.append(self._member_scan(member, object_type.fields[name], sub_nodes, extra))
            elif binding.kind == "links":
                link_type = planning.object_type(object_type.fields[name])
                fields.append(EntityField(response_key, "links"))
                links = planning.select(entity.link_department, entity.link_table, link_type, sub_nodes, spine_columns)
            else:
                assert binding.kind == "possible_matches"
                fields.append(EntityField(response_key, "possible_matches"))
                possible = (response_key, planning.object_type(object_type.fields[name]), sub_nodes)
        for member_name, columns in needs.items():  # merged sources the query does not select itself
            members.append(self._member_scan(entity.members[member_name], None, [], columns))
        match = self._possible(*possible, spine_columns) if possible is not None else None
        spine = planning.statement(
            entity.link_department, entity.link_table, "", {}, spine_columns.list, [], [],
            entity.key_column, key_index, paged=False,
        )  # fmt: skip
        possible_shape = None
        if match is not None:
            match_fields, match_members, match_link = match
            link_view = _view(spine, match_link) if match_link is not None else None
            possible_shape = PossibleShape(tuple(match_fields), link_view, tuple(match_members))
        return EntityShape(
            fields=tuple(fields),
            spine=spine,
            score_index=score_index,
            identifier_index=identifiers,
            members=tuple(members),
            merged=tuple(self._merged(merged_fields, members)),
            links_view=_view(spine, links) if links is not None else None,
            possible=possible_shape,
        )

    def _allowed(self, allowed: bool, coordinate: str, fields: list[EntityField], response_key: str) -> bool:
        """Record a field the caller may not use (refused, or answered with null in null mode)."""
        if allowed:
            return True
        guard = self.planning.guard
        if guard.mode == "reject":
            guard.refused.add(coordinate)
        else:
            fields.append(EntityField(response_key, "forbidden", type_name=coordinate))
        return False

    def _member_allowed(self, member: ResolvedMember) -> bool:
        """Joining is allowed on columns the caller reads unmasked, in tables it may query directly."""
        policy = self.planning.policy
        if policy is None or policy.access.unrestricted:
            return True
        access = policy.access
        entity = self.entity
        link = access.table(entity.link_department.name, entity.link_table.name)
        table = access.table(member.department.name, member.table.name)
        if table.via is not None or member.column.name not in table.plain:
            return False
        if member.link_column is None:
            return True
        score = entity.score_column
        return member.link_column.name in link.plain and (score is None or score.name in link.plain)

    def _source_allowed(self, member_name: str, column: str) -> bool:
        member = self.entity.members[member_name]
        policy = self.planning.policy
        readable = policy is None or policy.access.can_read(member.department.name, member.table.name, column)
        return readable and self._member_allowed(member)

    def _merged_needs(
        self, object_type: GraphQLObjectType, selection: Mapping[str, list[FieldNode]]
    ) -> dict[str, list[str]]:
        """Member name → columns the selected merged fields read from it."""
        needs: dict[str, list[str]] = {}
        for sub_nodes in selection.values():
            binding = self.planning.schema.binding(object_type.name, sub_nodes[0].name.value)
            if binding is not None and binding.kind == "merged" and binding.merged is not None:
                for member, column in binding.merged.parsed_sources():
                    if self._source_allowed(member, column) and column not in needs.setdefault(member, []):
                        needs[member].append(column)
        return needs

    def _member_scan(
        self, member: ResolvedMember, field_def: GraphQLField | None, nodes: list[FieldNode], extra: list[str]
    ) -> MemberScan:
        planning = self.planning
        from gateway.planning.planner import Columns

        columns = Columns()
        key_index = columns.use(member.column)
        positions = {name: columns.use(member.table.column(name)) for name in extra}
        fields: list[Any] = []
        children: list[Any] = []
        arguments: dict[str, Any] = {}
        type_name = ""
        if field_def is not None:
            object_type = planning.object_type(field_def)
            type_name = object_type.name
            fields, children = planning.select(member.department, member.table, object_type, nodes, columns)
            arguments = planning.provenance.argument_values(field_def, nodes[0])
        node = planning.statement(
            member.department, member.table, type_name, arguments, columns.list, fields, children, member.column,
            key_index, single_child=member.member.kind == "one",
        )  # fmt: skip
        return MemberScan(member, node, positions)

    def _merged(
        self, merged_fields: list[tuple[str, list[tuple[str, str]]]], members: list[MemberScan]
    ) -> list[MergedValue]:
        values = []
        for _, sources in merged_fields:
            resolved = []
            for member_name, column in sources:
                index = next(
                    i
                    for i, scan in enumerate(members)
                    if scan.member.member.name == member_name and column in scan.columns
                )
                resolved.append((index, members[index].columns[column]))
            values.append(MergedValue(tuple(resolved)))
        return values

    def _possible(
        self, response_key: str, match_type: GraphQLObjectType, nodes: list[FieldNode], spine_columns: Columns
    ) -> tuple[list[EntityField], list[MemberScan], Selection | None]:
        """A possible match's fields, its own member scans, and the selection of its link row."""
        planning = self.planning
        fields: list[EntityField] = []
        members: list[MemberScan] = []
        link: Selection | None = None
        selection = collect_sub_fields(planning.graphql, planning.fragments, planning.variables, match_type, nodes)
        for response_key, sub_nodes in selection.items():
            name = sub_nodes[0].name.value
            binding = planning.schema.binding(match_type.name, name)
            if name == "__typename":
                fields.append(EntityField(response_key, "typename", type_name=match_type.name))
            elif binding is not None and binding.kind == "match_link":
                link_type = planning.object_type(match_type.fields[name])
                selected = planning.select(
                    self.entity.link_department, self.entity.link_table, link_type, sub_nodes, spine_columns
                )
                link = selected
                fields.append(EntityField(response_key, "link"))
            else:
                assert binding is not None and binding.member is not None
                allowed = self._member_allowed(binding.member)
                if not self._allowed(allowed, f"{match_type.name}.{name}", fields, response_key):
                    continue
                fields.append(EntityField(response_key, "member", len(members)))
                members.append(self._member_scan(binding.member, match_type.fields[name], sub_nodes, []))
        return fields, members, link

    # --- key conditions ------------------------------------------------------------------------------

    def _condition(self, where: Any, *, pushed: bool) -> KeyCondition | None:
        """The key condition of a ``where`` argument, its ``and`` parts ordered most selective first."""
        provenance = self.planning.provenance
        where = provenance.plain(where) if isinstance(where, Var) else where
        if not where:
            return None
        parts: list[tuple[float, Any]] = []  # (estimate, where of one part)
        key_name = self.entity.key_column.graphql_name
        for name, value in where.items():
            if isinstance(value, Var):
                value = provenance.plain(value)
            if value is None:
                continue
            if name == key_name:
                for operator, operand in value.items():
                    if operand is not None or isinstance(operand, Var):
                        parts.append((-1.0, ("key", operator, operand)))
            elif name in ("and", "or"):
                items = [provenance.plain(item) if isinstance(item, Var) else item for item in value]
                parts.append((self._estimate(name, items), (name, items)))
            else:
                member = self._member_by_field(name)
                parts.append((self._step_estimate(member, value), ("member", member, value)))
        parts.sort(key=lambda part: part[0])
        built = [self._part(part, pushed=pushed or index > 0) for index, (_, part) in enumerate(parts)]
        conditions = [condition for condition in built if condition is not None]
        if not conditions:
            return None
        return conditions[0] if len(conditions) == 1 else KeyAll(tuple(conditions))

    def _part(self, part: tuple[Any, ...], *, pushed: bool) -> KeyCondition | None:
        kind = part[0]
        if kind == "key":
            _, operator, operand = part
            is_list = operator == "in"
            key_type = self.entity.key_column.type
            slot = value_slot(operand, self.planning.provenance, key_type, self._key_check(is_list))
            return KeyValues(slot, is_list)
        if kind == "member":
            _, member, where = part
            return self._step(member, where, pushed=pushed)
        _, items = part
        children = [self._condition(item, pushed=pushed) for item in items]
        kept = tuple(child for child in children if child is not None)
        if kind == "and":
            return KeyAll(kept) if kept else None
        if len(kept) < len(children):  # an empty branch of an 'or' holds for everyone: no condition
            return None
        return KeyAny(kept)

    def _member_by_field(self, field_name: str) -> ResolvedMember:
        member = next((m for m in self.entity.members.values() if m.member.graphql_name == field_name), None)
        assert member is not None, field_name
        if not self._member_allowed(member):
            self.planning.guard.refused.add(f"{self.entity.entity.graphql_type}Filter.{field_name}")
        return member

    def _step_estimate(self, member: ResolvedMember, where: Any) -> float:
        rows = table_rows(self.planning.statistics, member.department.name, member.table)
        inputs = self.planning.schema.table_inputs(member.department.name, member.table.name)
        return rows * selectivity(where, member.table, rows, inputs.filter_columns)

    def _estimate(self, kind: str, items: list[Any]) -> float:
        estimates = [self._estimate_where(item) for item in items]
        if not estimates:
            return float("inf")
        return min(estimates) if kind == "and" else sum(estimates)

    def _estimate_where(self, where: Any) -> float:
        key_name = self.entity.key_column.graphql_name
        estimates = []
        for name, value in (where or {}).items():
            if value is None:
                continue
            if name == key_name:
                estimates.append(-1.0)
            elif name in ("and", "or"):
                estimates.append(self._estimate(name, list(value)))
            else:
                estimates.append(self._step_estimate(self._member_by_field(name), value))
        return min(estimates) if estimates else float("inf")

    def _step(self, member: ResolvedMember, where: Any, *, pushed: bool) -> KeyStep:
        if member.link_column is not None:
            self._translation(member.link_column)
        node = self._key_scan(
            member.department, member.table, [member.column], keys=member.column if pushed else None, where=where
        )
        description = (
            f"{member.member.table} matching {self.entity.entity.graphql_type}Filter.{member.member.graphql_name}"
        )
        return KeyStep(member, node, pushed, self._step_estimate(member, where), description)

    def _translation(self, link_column: Column) -> Translation:
        """Confident link rows between the key and ``link_column`` (planned once per identifier)."""
        existing = self.translations.get(link_column.name)
        if existing is not None:
            return existing
        entity = self.entity
        outputs = [entity.key_column, link_column]
        department, table = entity.link_department, entity.link_table
        translation = Translation(
            from_keys=self._key_scan(department, table, outputs, keys=entity.key_column, confident=True, group=False),
            to_keys=self._key_scan(department, table, outputs, keys=link_column, confident=True, group=False),
        )
        self.translations[link_column.name] = translation
        return translation

    # --- statements of the key phase ------------------------------------------------------------------

    def _key_scan(
        self,
        department: Department,
        table: Table,
        outputs: list[Column],
        *,
        keys: Column | None = None,
        where: Any = None,
        page: Page | None = None,
        confident: bool = False,
        group: bool = True,
        register: bool = True,
    ) -> ScanNode:
        """``SELECT outputs FROM table WHERE [keys IN :keys] [where] [confident] GROUP BY outputs [page]``."""
        planning = self.planning
        parameters = Parameters()
        alias = table.name
        conditions: list[exp.Expr] = []
        keys_parameter = None
        if keys is not None:
            keys_parameter = parameters.add(ParameterSpec(keys.type, is_list=True), ParentKeys())
            conditions.append(key_set(comparable(keys, alias), keys_parameter))
        if where is not None:
            inputs = planning.schema.table_inputs(department.name, table.name)
            filters = FilterCompiler(table, inputs, alias, parameters, planning.provenance, planning.limits.max_in_list)
            condition = filters.condition(where)
            if condition is not None:
                conditions.append(condition)
            for column in filters.used.values():
                coordinate = f"{department.type_name(table)}.{column.graphql_name}"
                planning.guard.condition(department, table, column, coordinate)
        for column in outputs[1:] if confident else ():
            conditions.append(exp.not_(exp.Is(this=column_ref(column, alias), expression=exp.null())))
        score = self.entity.score_column
        if confident and score is not None:
            threshold = parameters.placeholder(ParameterSpec(score.type), Const(self._threshold(score)))
            conditions.append(exp.GTE(this=column_ref(score, alias), expression=threshold))
        select = exp.select(*(column_ref(column, alias) for column in outputs)).from_(table_ref(table, alias))
        if conditions:
            select = select.where(*conditions)
        if group:
            select = select.group_by(*(column_ref(column, alias) for column in outputs))
        if page is not None:
            select = select.order_by(exp.Ordered(this=comparable(outputs[0], alias), desc=False, nulls_first=False))
            select = select.limit(parameters.placeholder(_INTEGER, page.limit))
            select = select.offset(parameters.placeholder(_INTEGER, page.offset))
        policy = planning.table_policy(department, table)
        if policy is not None:
            select = policy.protect(select, alias, parameters)
        query = SourceQuery(
            department.name, select, tuple(OutputColumn(c.name, c.type) for c in outputs), parameters.specs()
        )
        key_index = outputs.index(keys) if keys is not None else None
        node = ScanNode(
            department, table, "", query, dict(parameters.items), (), key_index=key_index,
            keys_parameter=keys_parameter, page=page,
        )  # fmt: skip
        return planning.add_scan(node) if register else node

    def _threshold(self, score: Column) -> Any:
        threshold = self.entity.entity.link.threshold
        return Decimal(str(threshold)) if score.type is ColumnType.DECIMAL else threshold

    def _count_scan(self) -> ScanNode:
        entity = self.entity
        department, table = entity.link_department, entity.link_table
        parameters = Parameters()
        alias = table.name
        count = exp.Count(this=exp.Distinct(expressions=[column_ref(entity.key_column, alias)]))
        select = exp.select(exp.alias_(count, "count", quoted=True)).from_(table_ref(table, alias))
        policy = self.planning.table_policy(department, table)
        if policy is not None:
            select = policy.protect(select, alias, parameters)
        query = SourceQuery(department.name, select, (OutputColumn("count", ColumnType.INTEGER),), parameters.specs())
        return self.planning.add_scan(ScanNode(department, table, "", query, dict(parameters.items), ()))
