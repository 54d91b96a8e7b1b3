"""Which adapter class serves which source kind."""

from __future__ import annotations

from adapters.base import SourceAdapter
from adapters.graphql_source import GraphQLAdapter
from adapters.mysql import MySQLAdapter
from adapters.postgres import PostgresAdapter
from adapters.rest import RestAdapter
from adapters.sqlite import SQLiteAdapter
from schema.catalog import Department

ADAPTERS: dict[str, type[SourceAdapter]] = {
    "sqlite": SQLiteAdapter,
    "postgres": PostgresAdapter,
    "mysql": MySQLAdapter,
    "mariadb": MySQLAdapter,
    "rest": RestAdapter,
    "graphql": GraphQLAdapter,
}


def create_adapter(department: Department) -> SourceAdapter:
    """The adapter for ``department``'s source (not yet opened)."""
    return ADAPTERS[department.source.kind](department)
