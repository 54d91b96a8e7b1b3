"""Evaluating a statement on rows fetched from a source that cannot run SQL (REST, remote GraphQL).

The fetched rows are loaded into a private, in-memory SQLite database that lives for one fetch, and the
statement runs there exactly as it would on an SQLite department: rendered by the same dialect rules,
with the same functions for masks, the same text semantics (code-point comparison, case-sensitive
``LIKE``), the same ordering and the same per-parent pages. So every filter, row filter, mask, order and
page means the same thing on an HTTP department as on a database, which the conformance tests check
against PostgreSQL and MariaDB. Nothing is written to disk and the database is closed when the fetch ends.

Only the table's columns the statement mentions are loaded (the API's other fields were already
dropped when the response was parsed).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from adapters.base import ParameterSpec, Row, SourceQuery
from adapters.sql import SqlStatement
from adapters.sql_render import SQLiteDialect
from adapters.sqlite_functions import FUNCTIONS
from schema.catalog import Column, Table
from schema.ddl import create_table

_DIALECT = SQLiteDialect()
#: Below this many rows the statement runs on the event loop; above, on a worker thread.
_INLINE_ROWS = 200


class ResidualQuery:
    """A statement prepared for evaluation on fetched rows of one table."""

    def __init__(self, query: SourceQuery, table: Table) -> None:
        select = query.select.copy()
        for node in select.find_all(exp.Table):
            node.set("db", None)  # the rows are loaded under the bare table name
        self.statement = SqlStatement(SourceQuery(query.department, select, query.columns, query.parameters), _DIALECT)
        needed = {node.name for node in select.find_all(exp.Column)} | set(table.primary_key)
        #: The table's columns to fetch and load (the primary key always), in table order.
        self.columns: tuple[Column, ...] = tuple(column for column in table.columns if column.name in needed)
        self._specs = tuple(ParameterSpec(column.type) for column in self.columns)
        loaded = table.model_copy(update={"columns": list(self.columns), "db_schema": None})
        self._create = create_table(loaded, "sqlite").replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
        names = ", ".join(f'"{column.name}"' for column in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self._insert = f'INSERT OR IGNORE INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608 - catalog names

    @property
    def display_sql(self) -> str:
        return self.statement.display_sql

    async def run(self, rows: Sequence[Sequence[Any]], values: Mapping[str, Any]) -> list[Row]:
        """The statement's result over ``rows`` (canonical values, one per :attr:`columns` entry).

        Rows repeating a primary key (an API paging over changing data) are kept once: the first wins.
        """
        if len(rows) <= _INLINE_ROWS:
            return self._evaluate(rows, values, None)
        holder: list[sqlite3.Connection] = []
        try:
            return await asyncio.to_thread(self._evaluate, rows, values, holder)
        except asyncio.CancelledError:
            if holder:
                with contextlib.suppress(sqlite3.ProgrammingError):  # already closed: the statement had ended
                    holder[0].interrupt()
            raise

    def _evaluate(
        self, rows: Sequence[Sequence[Any]], values: Mapping[str, Any], holder: list[sqlite3.Connection] | None
    ) -> list[Row]:
        connection = sqlite3.connect(":memory:", check_same_thread=False)
        if holder is not None:
            holder.append(connection)
        try:
            connection.execute("PRAGMA case_sensitive_like = ON")
            for name, (arity, function) in FUNCTIONS.items():
                connection.create_function(name, arity, function, deterministic=True)
            connection.execute(self._create)
            encode = _DIALECT.encode
            connection.executemany(
                self._insert,
                ([encode(value, spec) for spec, value in zip(self._specs, row, strict=True)] for row in rows),
            )
            text, params = self.statement.bind(values, positional=False)
            raw = connection.execute(text, params).fetchall()
        finally:
            connection.close()
        return self.statement.decode_rows(raw)
