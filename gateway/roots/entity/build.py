"""Planning entity root fields: ``person(nhsNumber:)``, ``people(where:, limit:, offset:)``, ``peopleCount``.

See :mod:`gateway.roots.entity.plan` for the phases. The keys phase is planned by
:mod:`gateway.roots.entity.keys`; here, the root field and the shape of its objects: the link rows,
one scan per member, merged fields and possible matches. Every statement goes through the same protect
pass as any other, so a step, a translation or a page only ever sees rows and values the caller may
see; and members are joined only on columns the caller reads unmasked (see :mod:`schema.entity_types`),
so a join can never reveal a masked or hidden value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graphql import FieldNode, GraphQLField, GraphQLObjectType
from graphql.execution.collect_fields import collect_sub_fields

from gateway.plan.nodes import ChildEdge, OutputField, ScanNode
from gateway.planning.context import Columns, PlanningContext, Selection
from gateway.planning.filters import page_slots, value_slot
from gateway.roots.entity.keys import KeyPlanner, member_allowed
from gateway.roots.entity.plan import (
    EntityField,
    EntityQuery,
    EntityShape,
    MemberScan,
    MergedValue,
    PossibleShape,
)
from gateway.roots.entity.root import EntityRoot
from schema.entities import ResolvedEntity, ResolvedMember


def _view(spine: ScanNode, selection: Selection) -> ScanNode:
    """The spine's rows shaped by a selection: no statement of its own, it shares the spine's rows."""
    return dataclasses.replace(spine, fields=tuple(selection[0]), children=tuple(selection[1]))


class EntityPlanner:
    """Plans one entity root field within an operation being planned."""

    def __init__(self, planning: PlanningContext, entity: ResolvedEntity) -> None:
        self.planning = planning
        self.entity = entity
        self.keys = KeyPlanner(planning, entity)

    # --- root fields -----------------------------------------------------------------------------

    def root(self, response_key: str, kind: str, field_def: GraphQLField, nodes: list[FieldNode]) -> EntityRoot:
        planning = self.planning
        arguments = planning.provenance.argument_values(field_def, nodes[0])
        entity = self.entity
        key_column = entity.key_column
        if kind == "entity_lookup":
            slot = value_slot(
                arguments[key_column.graphql_name], planning.provenance, key_column.type, self.keys.key_check(False)
            )
            shape = self._shape(planning.object_type(field_def), nodes)
            return self._root(EntityQuery(response_key, entity, "lookup", key=slot, shape=shape))
        condition = self.keys.condition(arguments.get("where"), pushed=False)
        link_department, link_table = entity.link_department, entity.link_table
        query = EntityQuery(
            response_key,
            entity,
            "count" if kind == "entity_count" else "list",
            condition=condition,
            chunk_size=planning.limits.max_in_list,
        )
        if kind == "entity_count":
            if condition is None:
                return self._root(dataclasses.replace(query, count_scan=self.keys.count_scan()))
            present = self.keys.key_scan(link_department, link_table, [key_column], keys=key_column)
            return self._root(dataclasses.replace(query, present_scan=present))
        page = page_slots(arguments, planning.provenance, planning.schema.page_sizes)
        shape = self._shape(planning.object_type(field_def), nodes)
        if condition is None:
            page_keys = self.keys.key_scan(link_department, link_table, [key_column], page=page)
            return self._root(dataclasses.replace(query, page=page, page_keys=page_keys, shape=shape))
        return self._root(
            dataclasses.replace(
                query,
                page=page,
                keyed_page_scan=self.keys.key_scan(
                    link_department, link_table, [key_column], keys=key_column, page=page
                ),
                present_scan=self.keys.key_scan(link_department, link_table, [key_column], keys=key_column),
                shape=shape,
            )
        )

    def _root(self, query: EntityQuery) -> EntityRoot:
        return EntityRoot(dataclasses.replace(query, translations=dict(self.keys.translations)))

    # --- the shape of entity objects ---------------------------------------------------------------

    def _shape(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> EntityShape:
        planning, entity = self.planning, self.entity
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
        return member_allowed(self.planning.policy, self.entity, member)

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
        columns = Columns()
        key_index = columns.use(member.column)
        positions = {name: columns.use(member.table.column(name)) for name in extra}
        fields: list[OutputField] = []
        children: list[ChildEdge] = []
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
