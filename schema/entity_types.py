"""GraphQL types for the catalog's entities (see :mod:`schema.entities`)::

    type Query {
      person(nhsNumber: String!): Person              # one merged record (null: not in the index)
      people(where: PersonFilter, limit: Int = 100, offset: Int = 0): [Person!]
      peopleCount(where: PersonFilter): Int            # null, never partial, if a department fails
    }
    type Person {
      nhsNumber: String!                               # the key
      dateOfBirth: Date                                # merged: first source in authority order
      patient: HealthPatient                           # a 'one' member
      benefitClaims(where: ..., limit: ...): [DwpBenefitClaim!]    # a 'many' member
      links: [PersonIndexPersonLink!]                  # the person's rows of the link table
      possibleMatches: [PersonPossibleMatch!]          # records reached through low-confidence links
    }
    type PersonPossibleMatch { link: PersonIndexPersonLink!  benefitClaims(...): [...] ... }
    input PersonFilter { nhsNumber: PersonKeyFilter  benefitClaims: DwpBenefitClaimFilter  and: [...]  or: [...] }

Like the rest of the schema, an entity shows only what the caller may use: it exists for a caller who
reads the link table's key unmasked; a member appears when its join column (and, for members joined
through the link table, the link's identifier and score columns) are readable unmasked, because a
join on a masked or hidden value would reveal it; a merged field appears when one of its sources does.
"""

from __future__ import annotations

from typing import Any

import graphene

from schema.entities import ResolvedEntity, ResolvedMember
from schema.gateway_schema import FieldBinding
from schema.graphql_scalars import SCALARS, type_meta
from schema.table_types import TableTypes


class EntityTypes:
    """Adds each entity's root fields and types to a schema whose table types ``builder`` has built."""

    def __init__(self, builder: TableTypes) -> None:
        self.builder = builder
        self.catalog = builder.catalog

    def build(self, root: dict[str, Any]) -> None:
        for resolved in self.catalog.resolved_entities.values():
            if self.visible(resolved):
                self._entity(resolved, root)

    # --- what the caller may use ---------------------------------------------------------------------

    def visible(self, entity: ResolvedEntity) -> bool:
        department, table = entity.link_department, entity.link_table
        return self.builder.root_readable(department, table) and self.builder.plain(
            department, table, entity.key_column.name
        )

    def member_visible(self, entity: ResolvedEntity, member: ResolvedMember) -> bool:
        builder = self.builder
        if not (builder.root_readable(member.department, member.table)):
            return False
        if not builder.plain(member.department, member.table, member.column.name):
            return False
        if member.link_column is None:
            return True
        link = (entity.link_department, entity.link_table)
        score_ok = entity.score_column is None or builder.plain(*link, entity.score_column.name)
        return score_ok and builder.plain(*link, member.link_column.name)

    def members(self, entity: ResolvedEntity, *, linked_only: bool = False) -> list[ResolvedMember]:
        return [
            member
            for member in entity.members.values()
            if self.member_visible(entity, member) and not (linked_only and member.by_key)
        ]

    # --- types ---------------------------------------------------------------------------------------

    def _entity(self, entity: ResolvedEntity, root: dict[str, Any]) -> None:
        builder = self.builder
        definition = entity.entity
        type_name = definition.graphql_type
        link_type = builder.object_types[(entity.link_department.name, entity.link_table.name)]
        key_field = entity.key_column.graphql_name
        key_scalar = SCALARS[entity.key_column.type]
        bind = builder.schema.bindings
        fields: dict[str, Any] = {
            key_field: graphene.Field(
                graphene.NonNull(key_scalar), description=entity.key_column.description or "The key."
            )
        }
        bind[(type_name, key_field)] = FieldBinding("entity_key", entity.link_department, entity=entity)
        visible_members = {member.member.name for member in self.members(entity)}
        for merged in definition.fields:
            sources = [source for source in merged.parsed_sources() if source[0] in visible_members]
            sources = [(m, c) for m, c in sources if self._readable(entity.members[m], c)]
            if not sources:
                continue
            column = entity.members[sources[0][0]].table.column(sources[0][1])
            order = ", ".join(f"{m}.{c}" for m, c in sources)
            fields[merged.graphql_name] = graphene.Field(
                SCALARS[column.type],
                description=f"{merged.description or merged.name}. Merged: the first of {order} that has a value.",
            )
            bind[(type_name, merged.graphql_name)] = FieldBinding(
                "merged", entity.link_department, entity=entity, merged=merged
            )
        self._member_fields(entity, fields, type_name, self.members(entity))
        fields["links"] = graphene.Field(
            graphene.List(graphene.NonNull(link_type)),
            description=f"This {type_name}'s rows of {definition.link.table}, with their match scores.",
        )
        bind[(type_name, "links")] = FieldBinding("links", entity.link_department, entity=entity)
        linked = self.members(entity, linked_only=True)
        if entity.score_column is not None and linked:
            match_type = self._possible_match_type(entity, link_type, linked)
            fields["possibleMatches"] = graphene.Field(
                graphene.List(graphene.NonNull(match_type)),
                description=(
                    f"Records reached through links scored under {definition.link.threshold}: possibly about "
                    "someone else, so never merged into the fields above."
                ),
            )
            bind[(type_name, "possibleMatches")] = FieldBinding(
                "possible_matches", entity.link_department, entity=entity
            )
        description = definition.description or f"A {definition.name} merged from several departments."
        object_type = type(type_name, (graphene.ObjectType,), {"Meta": type_meta(type_name, description), **fields})
        filter_type = self._filter_type(entity, key_scalar)
        sizes = builder.page_sizes
        root[definition.lookup_field_name] = graphene.Field(
            object_type,
            args={key_field: graphene.Argument(graphene.NonNull(key_scalar), description="The key.")},
            description=f"One {type_name} by {key_field}; null when the link table has no row for it that you may see.",
        )
        root[definition.list_field] = graphene.Field(
            graphene.List(graphene.NonNull(object_type)),
            args={
                "where": graphene.Argument(filter_type, description="Only those meeting these conditions."),
                "limit": graphene.Argument(
                    graphene.Int, default_value=sizes.default, description=f"Page size, at most {sizes.maximum}."
                ),
                "offset": graphene.Argument(
                    graphene.Int, default_value=0, description=f"How many to skip, at most {sizes.max_offset}."
                ),
            },
            description=f"A page of {type_name} records, ordered by {key_field}.",
        )
        root[definition.count_field_name] = graphene.Field(
            graphene.Int,
            args={"where": graphene.Argument(filter_type, description="Only those meeting these conditions.")},
            description=f"How many {type_name} records meet the conditions; null, never partial, if a source fails.",
        )
        for field_name, kind in (
            (definition.lookup_field_name, "entity_lookup"),
            (definition.list_field, "entity_list"),
            (definition.count_field_name, "entity_count"),
        ):
            bind[("Query", field_name)] = FieldBinding(kind, entity.link_department, entity=entity)  # type: ignore[arg-type]

    def _readable(self, member: ResolvedMember, column: str) -> bool:
        return any(c.name == column for c in self.builder.columns(member.department, member.table))

    def _member_fields(
        self, entity: ResolvedEntity, fields: dict[str, Any], type_name: str, members: list[ResolvedMember]
    ) -> None:
        builder = self.builder
        for member in members:
            target = builder.object_types[(member.department.name, member.table.name)]
            description = member.member.description or f"Records of {member.member.table}."
            if member.member.kind == "many":
                fields[member.member.graphql_name] = graphene.Field(
                    graphene.List(graphene.NonNull(target)),
                    args=builder.list_arguments(member.department, member.table),
                    description=description,
                )
            else:
                fields[member.member.graphql_name] = graphene.Field(target, description=description)
            builder.schema.bindings[(type_name, member.member.graphql_name)] = FieldBinding(
                "member", member.department, member.table, entity=entity, member=member
            )

    def _possible_match_type(
        self, entity: ResolvedEntity, link_type: type[graphene.ObjectType], linked: list[ResolvedMember]
    ) -> type[graphene.ObjectType]:
        name = f"{entity.entity.graphql_type}PossibleMatch"
        fields: dict[str, Any] = {
            "link": graphene.Field(graphene.NonNull(link_type), description="The low-confidence link.")
        }
        self.builder.schema.bindings[(name, "link")] = FieldBinding("match_link", entity.link_department, entity=entity)
        self._member_fields(entity, fields, name, linked)
        description = "Records reached through one low-confidence link: review before treating them as the same person."
        return type(name, (graphene.ObjectType,), {"Meta": type_meta(name, description), **fields})

    def _filter_type(self, entity: ResolvedEntity, key_scalar: Any) -> type[graphene.InputObjectType]:
        builder = self.builder
        type_name = entity.entity.graphql_type
        key_name = f"{type_name}KeyFilter"
        key_filter = type(
            key_name,
            (graphene.InputObjectType,),
            {
                "Meta": type_meta(key_name, f"Conditions on the {type_name} key."),
                "eq": graphene.InputField(key_scalar, description="Equal to the value."),
                "in": graphene.InputField(
                    graphene.List(graphene.NonNull(key_scalar)), description="One of the values."
                ),
            },
        )
        name = f"{type_name}Filter"
        fields: dict[str, Any] = {
            entity.key_column.graphql_name: graphene.InputField(key_filter, description="Conditions on the key.")
        }
        for member in self.members(entity):
            fields[member.member.graphql_name] = graphene.InputField(
                builder.filter_types[(member.department.name, member.table.name)],
                description=f"Has at least one {member.member.table} record meeting these conditions.",
            )
        holder: dict[str, type[graphene.InputObjectType]] = {}
        fields["and"] = graphene.InputField(
            graphene.List(graphene.NonNull(lambda: holder["t"])), description="All must hold."
        )
        fields["or"] = graphene.InputField(
            graphene.List(graphene.NonNull(lambda: holder["t"])), description="At least one must hold."
        )
        description = (
            f"Conditions on {type_name} records, across departments; all given conditions must hold. A member "
            "condition holds when the person has a record meeting it, reached through a confident link."
        )
        holder["t"] = type(name, (graphene.InputObjectType,), {"Meta": type_meta(name, description), **fields})
        return holder["t"]
