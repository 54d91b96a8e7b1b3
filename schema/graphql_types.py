"""The GraphQL schema generated from the catalog, with graphene.

Shape (documented in ``docs/graphql.md``)::

    type Query {
      health: HealthQuery                       # one namespace field per department
    }
    type HealthQuery {
      patients(where: HealthPatientFilter, orderBy: [HealthPatientOrderBy!],
               limit: Int = 100, offset: Int = 0): [HealthPatient!]
      patient(nhsNumber: String!): HealthPatient  # look-up by primary key
    }
    type HealthPatient {
      nhsNumber: String                           # one field per column, camelCase
      hospitalSpells(where: ..., orderBy: ..., limit: ..., offset: ...): [HealthHospitalSpell!]
      personLink: PersonIndexPersonLink           # a 'one' relationship, possibly to another department
    }

Every data field is nullable: a department that fails yields ``null`` at its paths with an error, never
an empty list that would read as "no records". Descriptions come from the catalog, so GraphiQL's
documentation explains the data. :class:`GatewaySchema` pairs the graphql-core schema with
:class:`FieldBinding` records telling the planner what each field means.

This module assembles the ``Query`` type: :mod:`schema.table_types` builds the departments' types,
then :mod:`schema.entity_types` the entities' on top of them. The names the gateway uses
(:mod:`schema.gateway_schema`, :class:`Visibility`) are re-exported here.
"""

from __future__ import annotations

from typing import Any

import graphene

from schema.catalog_model import Catalog
from schema.directives import DIRECTIVES
from schema.entity_types import EntityTypes
from schema.gateway_schema import FieldBinding, FieldKind, GatewaySchema, PageSizes, TableInputs
from schema.graphql_scalars import type_meta
from schema.table_types import TableTypes, Visibility

__all__ = [
    "FieldBinding",
    "FieldKind",
    "GatewaySchema",
    "PageSizes",
    "TableInputs",
    "Visibility",
    "build_schema",
]


def build_schema(
    catalog: Catalog, page_sizes: PageSizes | None = None, visible: Visibility | None = None, key: str = "all"
) -> GatewaySchema:
    """Generate the GraphQL schema for ``catalog``.

    With ``visible`` the schema holds only what it allows: tables with no readable column,
    relationships whose join columns are not readable at both ends (or that do not lead to a table
    reachable only through others), root fields of such tables, and look-ups by unreadable keys are
    left out, so introspection shows exactly what the caller may query.
    ``key`` identifies that visibility in cache keys.
    """
    tables = TableTypes(catalog, page_sizes or PageSizes(), visible, key)
    root: dict[str, Any] = {}
    tables.build(root)
    EntityTypes(tables).build(root)
    if not root:
        root["_nothing"] = graphene.Field(
            graphene.Boolean, description="Present only because a schema needs a field: nothing is granted."
        )
    query = type("Query", (graphene.ObjectType,), {"Meta": type_meta("Query", "The federated departments."), **root})
    tables.schema.graphql = graphene.Schema(query=query, auto_camelcase=False, directives=DIRECTIVES).graphql_schema
    return tables.schema
