"""The catalog's department model: a department, its source, and its tables, columns and relationships.

These are the parts of a catalog (:mod:`schema.catalog_model`) that name real data. Names are checked
by pattern here; what the patterns cannot see (a relationship to a missing column, a duplicate name)
is checked by :mod:`schema.catalog_checks` once the whole catalog is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schema.endpoints import GraphQLEndpoint, RestEndpoint
from schema.http_sources import GraphQLSource, RestSource
from schema.models import StrictModel
from schema.naming import GRAPHQL_NAME, SQL_NAME, camel, pascal
from schema.sources import MySQLSource, PostgresSource, SqliteSource
from schema.types import ColumnType

SqlName = Annotated[str, StringConstraints(pattern=SQL_NAME)]
GraphQLName = Annotated[str, StringConstraints(pattern=GRAPHQL_NAME)]
Source = Annotated[
    SqliteSource | PostgresSource | MySQLSource | RestSource | GraphQLSource, Field(discriminator="kind")
]
TableRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]


class Column(StrictModel):
    """A column of a departmental table, exposed as a GraphQL field named in camelCase."""

    name: SqlName
    type: ColumnType
    description: str = ""
    nullable: bool = True
    identifier: SqlName | None = Field(None, description="The identifier kind this column holds, if any.")

    @property
    def graphql_name(self) -> str:
        return camel(self.name)


class Relationship(StrictModel):
    """A link from one table's rows to rows of another table, in this department or another.

    ``on`` maps this table's columns to the target's: ``{nhs_number: nhs_number}``. A ``many`` link
    becomes a paginated list field, a ``one`` link a single object (the first match by primary key).
    """

    name: SqlName
    target: TableRef
    on: dict[SqlName, SqlName] = Field(min_length=1)
    kind: Literal["one", "many"]
    description: str = ""

    @property
    def graphql_name(self) -> str:
        return camel(self.name)

    @property
    def target_department(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def target_table(self) -> str:
        return self.target.split(".", 1)[1]


class Table(StrictModel):
    """A table (or view) of a department's source."""

    name: SqlName
    db_schema: SqlName | None = Field(None, alias="schema", description="PostgreSQL schema or MySQL database.")
    description: str = ""
    type_name: GraphQLName | None = Field(None, description="GraphQL type name, after the department prefix.")
    lookup_field: GraphQLName | None = Field(None, description="Name of the look-up-by-primary-key field.")
    primary_key: list[SqlName] = Field(min_length=1)
    columns: list[Column] = Field(min_length=1)
    relationships: list[Relationship] = Field(default_factory=list)
    rest: RestEndpoint | None = Field(None, description="For a REST department: the endpoint serving the rows.")
    graphql: GraphQLEndpoint | None = Field(None, description="For a GraphQL department: the remote root field.")
    estimated_rows: int | None = Field(
        None, ge=0, description="Rows in the table, for planning when the source cannot tell (REST, GraphQL)."
    )

    @cached_property
    def columns_by_name(self) -> Mapping[str, Column]:
        return {column.name: column for column in self.columns}

    def column(self, name: str) -> Column:
        return self.columns_by_name[name]

    @property
    def list_field(self) -> str:
        return camel(self.name)

    @property
    def lookup_field_name(self) -> str:
        return self.lookup_field or f"{camel(self.name)}ByPk"


class Department(StrictModel):
    """A public body's data: one source and the tables fedgate may query in it."""

    name: SqlName
    title: str = Field(min_length=1, description="Human name, e.g. 'NHS England'.")
    description: str = ""
    source: Source
    tables: list[Table] = Field(min_length=1)

    @cached_property
    def tables_by_name(self) -> Mapping[str, Table]:
        return {table.name: table for table in self.tables}

    def table(self, name: str) -> Table:
        return self.tables_by_name[name]

    @property
    def graphql_field(self) -> str:
        return camel(self.name)

    @property
    def type_prefix(self) -> str:
        return pascal(self.name)

    def type_name(self, table: Table) -> str:
        return self.type_prefix + (table.type_name or pascal(table.name))
