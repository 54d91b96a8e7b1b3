"""The catalog as a whole: the identifier kinds, departments and entities fedgate federates.

A catalog is a YAML file written by the people who run fedgate; :mod:`schema.catalog` loads and checks
it. Its parts are modelled in :mod:`schema.departments` (the data each department holds) and
:mod:`schema.entities` (subjects merged across departments).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Literal

from pydantic import Field

from schema.departments import Department, SqlName, Table
from schema.entities import Entity, ResolvedEntity
from schema.models import StrictModel


class IdentifierKind(StrictModel):
    """A kind of identifier shared across departments (``nhs_number``, ``nino``, ``upn``...)."""

    name: SqlName
    description: str = ""
    pattern: str | None = Field(None, description="Regular expression every value of this identifier matches.")
    person: bool = Field(
        True,
        description="Names a person (a data subject): the audit records its values for every row disclosed. "
        "false for places and organisations (a UPRN, a school's URN).",
    )


class Catalog(StrictModel):
    """Everything fedgate knows about the departments it federates."""

    version: Literal[1] = 1
    identifiers: list[IdentifierKind] = Field(default_factory=list)
    departments: list[Department] = Field(min_length=1)
    entities: list[Entity] = Field(default_factory=list, description="Subjects merged across departments.")

    @cached_property
    def person_identifiers(self) -> frozenset[str]:
        """The identifier kinds that name a person: the audit's subjects."""
        return frozenset(kind.name for kind in self.identifiers if kind.person)

    @cached_property
    def departments_by_name(self) -> Mapping[str, Department]:
        return {department.name: department for department in self.departments}

    def department(self, name: str) -> Department:
        return self.departments_by_name[name]

    @cached_property
    def resolved_entities(self) -> Mapping[str, ResolvedEntity]:
        """Entities with their tables and columns looked up (valid once the catalog's checks pass)."""
        return {entity.name: ResolvedEntity(entity, self) for entity in self.entities}

    def table(self, ref: str) -> tuple[Department, Table]:
        """``"health.patients"`` → (department, table); ``KeyError`` if either is unknown."""
        department_name, table_name = ref.split(".", 1)
        department = self.department(department_name)
        return department, department.table(table_name)
