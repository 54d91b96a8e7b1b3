"""Entities: one record about a real-world subject (a person) merged from several departments.

Departments hold different identifiers for the same person (NHS number, National Insurance number,
Unique Pupil Number, a council's person id). A **link table** (the person index) ties them together,
one row per link with a match score. An entity declares:

* ``key``: the identifier kind that names it (``nhs_number``); callers look people up by it;
* ``link``: the link table, its column holding the key, and its score column and threshold: records
  reached through a link scored under the threshold are never merged silently, they are returned
  separately, flagged, under ``possibleMatches``;
* ``members``: the department tables holding records about it, each joined by an identifier kind:
  the key itself (``hospital_spells.nhs_number``) or another identifier translated through the link
  table (``benefit_claims.nino``);
* ``fields``: merged values, each taken from the first member, in the declared authority order, that
  has a value the caller may see.

Example::

    entities:
      - name: person
        type_name: Person
        key: nhs_number
        list_field: people
        link: {table: person_index.person_links, key: nhs_number, score: match_score, threshold: 0.9}
        members:
          - {name: patient, table: health.patients, kind: one}
          - {name: benefit_claims, table: dwp.benefit_claims, by: nino, kind: many}
        fields:
          - {name: date_of_birth, sources: [patient.date_of_birth, dwp_customer.date_of_birth]}
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Literal, Protocol

from pydantic import Field, StringConstraints

from schema.departments import Column, Department, GraphQLName, SqlName, Table, TableRef
from schema.models import StrictModel
from schema.naming import camel, pascal

SourceRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]


class EntityLink(StrictModel):
    """The link table: which rows tie the entity's key to other identifiers, and how sure each link is."""

    table: TableRef = Field(description="The link table, e.g. person_index.person_links.")
    key: SqlName = Field(description="Its column holding the entity's key.")
    score: SqlName | None = Field(None, description="Its match-score column (0 to 1); omitted: every link is sure.")
    threshold: float = Field(0.9, ge=0, le=1, description="Links scored below this are never merged.")


class EntityMember(StrictModel):
    """A department table holding records about the entity."""

    name: SqlName = Field(description="Field name on the entity (camelCased in GraphQL).")
    table: TableRef
    by: SqlName | None = Field(None, description="Identifier kind joining the records; default: the entity's key.")
    column: SqlName | None = Field(
        None, description="The table's column holding that identifier; default: the one column tagged with it."
    )
    kind: Literal["one", "many"]
    description: str = ""

    @property
    def graphql_name(self) -> str:
        return camel(self.name)


class MergedField(StrictModel):
    """A value taken from the first source, in authority order, that has one for the caller."""

    name: SqlName
    sources: list[SourceRef] = Field(min_length=1, description="member.column, most authoritative first.")
    description: str = ""

    @property
    def graphql_name(self) -> str:
        return camel(self.name)

    def parsed_sources(self) -> list[tuple[str, str]]:
        return [(member, column) for member, column in (source.split(".", 1) for source in self.sources)]


class Entity(StrictModel):
    """A subject whose records several departments hold, merged into one GraphQL type."""

    name: SqlName
    type_name: GraphQLName | None = Field(None, description="GraphQL type name; default: the name in PascalCase.")
    description: str = ""
    key: SqlName = Field(description="The identifier kind naming the entity (e.g. nhs_number).")
    lookup_field: GraphQLName | None = Field(None, description="Root look-up field; default: the name in camelCase.")
    list_field: GraphQLName = Field(description="Root list field, e.g. people.")
    link: EntityLink
    members: list[EntityMember] = Field(min_length=1)
    fields: list[MergedField] = Field(default_factory=list)

    @property
    def graphql_type(self) -> str:
        return self.type_name or pascal(self.name)

    @property
    def lookup_field_name(self) -> str:
        return self.lookup_field or camel(self.name)

    @property
    def count_field_name(self) -> str:
        return f"{self.list_field}Count"

    @cached_property
    def members_by_name(self) -> Mapping[str, EntityMember]:
        return {member.name: member for member in self.members}


class ResolvedMember:
    """A member with its table, join column and link column (``None`` when joined by the key itself)."""

    def __init__(self, member: EntityMember, department: Department, table: Table, column: Column) -> None:
        self.member = member
        self.department = department
        self.table = table
        self.column = column
        #: The link table's column holding ``member.by``; ``None`` when the member is joined by the key.
        self.link_column: Column | None = None

    @property
    def by_key(self) -> bool:
        return self.link_column is None


class TableLookup(Protocol):
    """What resolving an entity needs of the catalog (:class:`~schema.catalog_model.Catalog` is one)."""

    def table(self, ref: str) -> tuple[Department, Table]:
        """``"health.patients"`` → (department, table); ``KeyError`` if either is unknown."""
        ...


class ResolvedEntity:
    """An entity with every reference looked up in the catalog (built once the catalog is checked)."""

    def __init__(self, entity: Entity, catalog: TableLookup) -> None:
        self.entity = entity
        self.link_department, self.link_table = catalog.table(entity.link.table)
        self.key_column = self.link_table.column(entity.link.key)
        self.score_column = self.link_table.column(entity.link.score) if entity.link.score else None
        self.members: dict[str, ResolvedMember] = {}
        for member in entity.members:
            department, table = catalog.table(member.table)
            identifier = member.by or entity.key
            resolved = ResolvedMember(member, department, table, table.column(member_column(member, table, entity)))
            if identifier != entity.key:
                resolved.link_column = next(c for c in self.link_table.columns if c.identifier == identifier)
            self.members[member.name] = resolved


def member_column(member: EntityMember, table: Table, entity: Entity) -> str:
    """The member table's join column: as declared, else its one column tagged with the identifier kind."""
    if member.column is not None:
        return member.column
    identifier = member.by or entity.key
    tagged = [column.name for column in table.columns if column.identifier == identifier]
    return tagged[0] if len(tagged) == 1 else ""
