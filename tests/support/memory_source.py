"""A department source held in Python lists, for fast tests: no database server, no file, no network.

How it answers
--------------
When the adapter opens, its rows are loaded into a private SQLite database in memory (the stdlib
``sqlite3`` module, ``":memory:"``). The tables are the ones the catalog declares
(:func:`schema.ddl.create_table`) and the values are encoded as the SQLite adapter stores them.
Statements are rendered as for an SQLite department (:class:`adapters.sql_render.SQLiteDialect`, the
functions fedgate registers, case-sensitive ``LIKE``), and results are decoded by the same
:class:`adapters.sql.SqlStatement`. So filters, orders, pages and masks keep real SQL semantics, and
nothing here re-implements them.

``adapters/residual.py`` (the evaluator HTTP departments use) was read and not reused: it evaluates a
statement over the fetched rows of *one* table and builds a new database for each fetch. A department
loaded once answers any statement over its tables (joins and subqueries included) and counts
statements the way a database would receive them.

Fusion (LATERAL joins)
----------------------
SQLite has no ``LATERAL``. An adapter made with ``lateral_joins=True`` still advertises
:attr:`~adapters.base.Capability.LATERAL_JOINS`. It evaluates the one shape
:mod:`gateway.roots.fusion` emits (``FROM (<parent>) AS p LEFT JOIN LATERAL (<child>) AS c ON TRUE
ORDER BY ...``) as the nested loop that ``LATERAL`` means: the parent statement runs once, then the child
statement runs once per parent row, with that row's values bound wherever the child refers to the parent.
A parent with no child rows gets one row of nulls (``LEFT JOIN``). Rows are sorted stably by the outer
``ORDER BY``, ascending with nulls last (PostgreSQL's default, the dialect fusion was written for). This
is still **one** statement received, as one round trip would be. Any other ``LATERAL`` shape is refused
loudly when the statement is prepared (``NotImplementedError``), never evaluated approximately.

For tests
---------
* :attr:`MemoryAdapter.received` records every statement handed to the adapter (the tables it reads, its
  text, its values), failed ones included, as the gateway counts ``sent``. :meth:`MemoryAdapter.count`
  counts them.
* :meth:`MemoryAdapter.fail` makes every statement that reads a chosen table (or every statement, and
  the health check) raise a :class:`~adapters.errors.SourceError` subclass, such as
  :class:`~adapters.errors.SourceUnavailableError` or :class:`~adapters.errors.SourceTimeoutError`.
  :meth:`MemoryAdapter.stall` delays answers instead, so that the adapter's own timeout fires.
* :func:`memory_gateway` starts a real :class:`gateway.service.Gateway` over such adapters. It uses the
  existing constructor, passing the adapters to ``GuardedAdapters(catalog, adapters)``
  (``gateway/execution/guarded_adapters.py``), which uses them in place of the
  ones the registry would create.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from adapters.base import (
    NO_CONTEXT,
    Capabilities,
    Capability,
    ColumnDescription,
    FetchContext,
    ParameterSpec,
    PreparedQuery,
    Row,
    SourceAdapter,
    SourceQuery,
    TableDescription,
)
from adapters.errors import SourceError, SourceQueryError, SourceTimeoutError, SourceUnavailableError
from adapters.sql import SqlStatement
from adapters.sql_render import SQLiteDialect
from adapters.sqlite_functions import FUNCTIONS
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.pipeline import PASSES, Pass
from gateway.policy.store import Policy
from gateway.service import Gateway
from gateway.settings import Settings
from schema.catalog import Catalog, Department
from schema.ddl import create_table
from tests.conftest import make_settings

__all__ = ["MemoryAdapter", "MemoryFederation", "Received", "memory_adapters", "memory_gateway"]

_DIALECT = SQLiteDialect()
#: Prefix of the placeholders standing for the parent row's values in a lateral child statement.
_PARENT_VALUE = "_memory_parent_"


@dataclass(frozen=True)
class Received:
    """One statement handed to a :class:`MemoryAdapter`."""

    #: The department's tables the statement reads, in name order.
    tables: tuple[str, ...]
    #: The statement as SQLite would run it, with placeholders (``LEFT JOIN LATERAL`` when fused).
    sql: str
    #: The canonical values bound, by placeholder name.
    values: dict[str, Any]
    #: Whether this is a fused statement (a parent level with a child level joined laterally).
    fused: bool


@dataclass(frozen=True)
class _Lateral:
    """A fused statement taken apart: the parent and child statements and how the outer query combines them."""

    parent: SqlStatement
    parent_alias: str
    child: SqlStatement
    child_alias: str
    #: Placeholder in the child statement → the parent column whose value it stands for.
    correlated: Mapping[str, str]
    #: The outer ``SELECT`` list and ``ORDER BY``: (alias, column name) pairs.
    projections: tuple[tuple[str, str], ...]
    order: tuple[tuple[str, str], ...]


def _tables_read(select: exp.Expr) -> tuple[str, ...]:
    return tuple(sorted({node.name for node in select.find_all(exp.Table) if isinstance(node.this, exp.Identifier)}))


def _column_pair(node: exp.Expr) -> tuple[str, str]:
    if not isinstance(node, exp.Column) or not node.table:
        raise NotImplementedError(f"a fused statement selecting {node.sql()}: expected alias.column")
    return node.table, node.name


def _lateral(query: SourceQuery) -> _Lateral | None:
    """The parts of a fused statement, or ``None`` for a statement without a ``LATERAL`` join."""
    select = query.select
    joins = select.args.get("joins") or []
    if not any(isinstance(join.this, exp.Lateral) for join in joins):
        return None
    source = select.args.get("from_")
    if len(joins) != 1 or source is None or not isinstance(source.this, exp.Subquery):
        raise NotImplementedError("a LATERAL join other than fusion's FROM (...) LEFT JOIN LATERAL (...) ON TRUE")
    join = joins[0]
    lateral = join.this
    condition = join.args.get("on")
    if str(join.args.get("side", "")).upper() != "LEFT" or not isinstance(condition, exp.Boolean) or not condition.this:
        raise NotImplementedError("a LATERAL join that is not LEFT ... ON TRUE")
    parent_query = source.this
    child_query = lateral.this
    assert isinstance(child_query, exp.Subquery)
    parent_alias, child_alias = parent_query.alias, lateral.alias
    projections = tuple(_column_pair(node) for node in select.expressions)
    types = {pair: column.type for pair, column in zip(projections, query.columns, strict=True)}
    order_node = select.args.get("order")
    order: list[tuple[str, str]] = []
    for item in order_node.expressions if order_node else []:
        if item.args.get("desc") or item.args.get("nulls_first"):
            raise NotImplementedError("a fused statement ordered other than ascending, nulls last")
        order.append(_column_pair(item.this))
    # The child refers to the parent row by alias: each reference becomes a placeholder bound per parent row.
    child_select = child_query.this.copy()
    correlated: dict[str, str] = {}
    specs = dict(query.parameters)
    for node in list(child_select.find_all(exp.Column)):
        if node.table == parent_alias:
            name = f"{_PARENT_VALUE}{node.name}"
            correlated[name] = node.name
            specs[name] = ParameterSpec(types[(parent_alias, node.name)])
            node.replace(exp.Placeholder(this=name))
    department = query.department
    return _Lateral(
        parent=SqlStatement(SourceQuery(department, parent_query.this.copy(), (), query.parameters), _DIALECT),
        parent_alias=parent_alias,
        child=SqlStatement(SourceQuery(department, child_select, (), specs), _DIALECT),
        child_alias=child_alias,
        correlated=correlated,
        projections=projections,
        order=tuple(order),
    )


def _named_rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class MemoryStatement(PreparedQuery):
    """A statement prepared by a :class:`MemoryAdapter`: SQLite text, or a fused statement taken apart."""

    def __init__(self, query: SourceQuery) -> None:
        select = query.select.copy()
        for node in select.find_all(exp.Table):
            node.set("db", None)  # loaded under the bare table name, as residual evaluation does
        query = SourceQuery(query.department, select, query.columns, query.parameters)
        self.query = query
        self.tables = _tables_read(select)
        self.statement = SqlStatement(query, _DIALECT)
        self.lateral = _lateral(query)

    @property
    def display_sql(self) -> str:
        return self.statement.display_sql

    @property
    def placeholders(self) -> tuple[tuple[str, str], ...]:
        return self.statement.placeholders

    def evaluate(self, connection: sqlite3.Connection, values: Mapping[str, Any]) -> list[Row]:
        """The statement's decoded rows; raises ``sqlite3.Error`` or a decoding error as the driver would."""
        if self.lateral is None:
            text, params = self.statement.bind(values, positional=False)
            return self.statement.decode_rows(connection.execute(text, params).fetchall())
        return self.statement.decode_rows(self._nested_loop(self.lateral, connection, values))

    @staticmethod
    def _nested_loop(
        lateral: _Lateral, connection: sqlite3.Connection, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        text, params = lateral.parent.bind(values, positional=False)
        parents = _named_rows(connection.execute(text, params))
        rendered = lateral.child.rendered
        specs = lateral.child.query.parameters
        fixed = {
            name: _DIALECT.encode(values[name], specs[name])
            for name in rendered.names
            if name not in lateral.correlated
        }
        joined: list[dict[str, dict[str, Any]]] = []
        for parent in parents:
            bound = {**fixed, **{name: parent[column] for name, column in lateral.correlated.items()}}
            cursor = connection.execute(rendered.text, bound)
            children = _named_rows(cursor) or [dict.fromkeys(column[0] for column in cursor.description)]
            joined.extend({lateral.parent_alias: parent, lateral.child_alias: child} for child in children)

        def sort_key(sides: dict[str, dict[str, Any]]) -> tuple[tuple[bool, Any], ...]:
            return tuple((sides[alias][name] is None, sides[alias][name]) for alias, name in lateral.order)

        joined.sort(key=sort_key)  # stable: rows equal on the ORDER BY keep the child statement's order
        return [tuple(sides[alias][name] for alias, name in lateral.projections) for sides in joined]


def _injected(error: type[SourceError], department: str, timeout: float) -> SourceError:
    """``error`` as a real adapter raises it, with the SQL adapters' message where they have one."""
    if issubclass(error, SourceTimeoutError):
        return error(department, f"department '{department}' did not answer within {timeout:g} s")
    if issubclass(error, SourceUnavailableError):
        return error(department, f"department '{department}' is unavailable")
    if issubclass(error, SourceQueryError):
        return error(department, f"department '{department}' could not run the query")
    return error(department, f"department '{department}' failed ({error.code})")


class MemoryAdapter(SourceAdapter):
    """One department answered from rows held in Python lists, by an in-memory SQLite database.

    ``rows`` maps each of the department's table names to its rows (dicts holding every column, with
    canonical Python values). ``lateral_joins`` advertises fusion; ``window_functions`` per-parent pages
    computed by the source (as SQLite 3.25+ does), else the gateway slices them.
    """

    kind = "memory"

    def __init__(
        self,
        department: Department,
        rows: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        lateral_joins: bool = False,
        window_functions: bool = True,
    ) -> None:
        super().__init__(department)
        known = {table.name for table in department.tables}
        unknown = sorted(set(rows) - known)
        if unknown:
            raise ValueError(f"department '{self.name}' has no table {', '.join(unknown)}")
        self.rows = {table.name: [dict(row) for row in rows.get(table.name, ())] for table in department.tables}
        features = set()
        if window_functions:
            features.add(Capability.WINDOW_FUNCTIONS)
        if lateral_joins:
            features.add(Capability.LATERAL_JOINS)
        self._capabilities = Capabilities(dialect="sqlite", features=frozenset(features))
        self._connection: sqlite3.Connection | None = None
        #: Every statement handed to :meth:`fetch`, in order (failed ones included).
        self.received: list[Received] = []
        #: Calls of :meth:`health`.
        self.health_checks = 0
        self._failures: dict[str | None, type[SourceError]] = {}
        self._stalls: dict[str | None, float] = {}

    # --- for tests ------------------------------------------------------------------------------------

    def fail(self, table: str | None = None, error: type[SourceError] = SourceUnavailableError) -> None:
        """Fail every statement reading ``table`` (``None``: every statement, and health) with ``error``."""
        if table is not None and table not in self.rows:
            raise ValueError(f"department '{self.name}' has no table '{table}'")
        self._failures[table] = error

    def stall(self, seconds: float, table: str | None = None) -> None:
        """Answer statements reading ``table`` (``None``: every statement, and health) only after ``seconds``."""
        self._stalls[table] = seconds

    def heal(self) -> None:
        """Forget every injected failure and stall."""
        self._failures.clear()
        self._stalls.clear()

    def count(self, table: str | None = None) -> int:
        """Statements received (reading ``table``, if given)."""
        return sum(1 for received in self.received if table is None or table in received.tables)

    def key_sets(self, table: str) -> list[list[Any]]:
        """The key sets (list values) of the statements received reading ``table``, each sorted."""
        return [
            sorted(value)
            for received in self.received
            if table in received.tables
            for value in received.values.values()
            if isinstance(value, list)
        ]

    def _failure(self, tables: Sequence[str]) -> type[SourceError] | None:
        for key in (None, *tables):
            if key in self._failures:
                return self._failures[key]
        return None

    def _stall(self, tables: Sequence[str]) -> float:
        return max((self._stalls[key] for key in (None, *tables) if key in self._stalls), default=0.0)

    # --- the SPI --------------------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def open(self) -> None:
        if self._connection is not None:
            return
        connection = sqlite3.connect(":memory:")
        connection.execute("PRAGMA case_sensitive_like = ON")
        for name, (arity, function) in FUNCTIONS.items():
            connection.create_function(name, arity, function, deterministic=True)
        for table in self.department.tables:
            connection.execute(create_table(table.model_copy(update={"db_schema": None}), "sqlite"))
            names = ", ".join(f'"{column.name}"' for column in table.columns)
            marks = ", ".join("?" for _ in table.columns)
            specs = [ParameterSpec(column.type) for column in table.columns]
            connection.executemany(
                f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',  # noqa: S608 - catalog names only
                [
                    [_DIALECT.encode(row[column.name], spec) for column, spec in zip(table.columns, specs, strict=True)]
                    for row in self.rows[table.name]
                ],
            )
        connection.commit()
        connection.execute("PRAGMA query_only = ON")
        self._connection = connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def health(self) -> None:
        self.health_checks += 1
        error = self._failures.get(None)
        if error is not None:
            raise _injected(error, self.name, self.department.source.timeout_seconds)
        stall = self._stalls.get(None, 0.0)
        if stall:
            await asyncio.sleep(stall)
        await self.open()
        assert self._connection is not None
        self._connection.execute("SELECT 1").fetchall()

    async def introspect(self) -> Sequence[TableDescription]:
        await self.open()
        assert self._connection is not None
        described = []
        for table in self.department.tables:
            declared = {
                name: native
                for name, native in self._connection.execute(
                    "SELECT name, type FROM pragma_table_info(?)", [table.name]
                )
            }
            columns = tuple(
                ColumnDescription(column.name, declared[column.name], column.type, column.nullable)
                for column in table.columns
            )
            described.append(TableDescription(table.name, columns, tuple(table.primary_key)))
        return sorted(described, key=lambda description: description.name)

    async def table_rows(self) -> Mapping[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}

    def prepare(self, query: SourceQuery) -> MemoryStatement:
        return MemoryStatement(query)

    async def fetch(
        self, prepared: PreparedQuery, values: Mapping[str, Any], *, timeout: float, context: FetchContext = NO_CONTEXT
    ) -> list[Row]:
        assert isinstance(prepared, MemoryStatement)
        self.received.append(
            Received(prepared.tables, prepared.display_sql, dict(values), fused=prepared.lateral is not None)
        )
        error = self._failure(prepared.tables)
        if error is not None:  # as if it failed at once; a timeout names the source's configured one
            raise _injected(error, self.name, self.department.source.timeout_seconds)
        try:
            async with asyncio.timeout(timeout):
                stall = self._stall(prepared.tables)
                if stall:
                    await asyncio.sleep(stall)
                await self.open()
        except TimeoutError as exc:
            raise _injected(SourceTimeoutError, self.name, timeout) from exc
        assert self._connection is not None
        try:
            return prepared.evaluate(self._connection, values)
        except (sqlite3.Error, ValueError, TypeError, ArithmeticError) as exc:
            raise SourceQueryError(self.name, f"department '{self.name}' could not run the query") from exc


def memory_adapters(
    catalog: Catalog,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    lateral_joins: Collection[str] = (),
    window_functions: bool = True,
) -> dict[str, MemoryAdapter]:
    """A :class:`MemoryAdapter` per department of ``catalog``; ``rows`` is keyed ``"department.table"``
    (as the fixtures' ``ROWS`` are); ``lateral_joins`` names the departments that advertise fusion."""
    names = {department.name for department in catalog.departments}
    unknown = sorted({key.split(".", 1)[0] for key in rows} - names)
    if unknown:
        raise ValueError(f"the catalog has no department {', '.join(unknown)}")
    adapters = {}
    for department in catalog.departments:
        mine = {
            key.split(".", 1)[1]: table_rows
            for key, table_rows in rows.items()
            if key.split(".", 1)[0] == department.name
        }
        adapters[department.name] = MemoryAdapter(
            department, mine, lateral_joins=department.name in lateral_joins, window_functions=window_functions
        )
    return adapters


@dataclass
class MemoryFederation:
    """A started gateway over in-memory departments, and those departments' adapters."""

    gateway: Gateway
    adapters: dict[str, MemoryAdapter] = field(default_factory=dict)

    def __getitem__(self, department: str) -> MemoryAdapter:
        return self.adapters[department]

    def received(self) -> dict[str, int]:
        """Statements each department received so far (departments that received none left out)."""
        return {name: adapter.count() for name, adapter in sorted(self.adapters.items()) if adapter.count()}

    def forget(self) -> None:
        """Forget the statements received so far (injected failures stay)."""
        for adapter in self.adapters.values():
            adapter.received.clear()


@contextlib.asynccontextmanager
async def memory_gateway(
    catalog: Catalog,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    settings: Settings | None = None,
    policy: Policy | None = None,
    lateral_joins: Collection[str] = (),
    window_functions: bool = True,
    passes: tuple[Pass, ...] = PASSES,
) -> AsyncIterator[MemoryFederation]:
    """A started :class:`~gateway.service.Gateway` whose every department is a :class:`MemoryAdapter` (its
    plans going through ``passes``)."""
    adapters = memory_adapters(catalog, rows, lateral_joins=lateral_joins, window_functions=window_functions)
    sources = GuardedAdapters(catalog, adapters)
    gateway = Gateway(catalog, settings or make_settings(), sources, policy, passes=passes)
    await gateway.start()
    try:
        yield MemoryFederation(gateway, adapters)
    finally:
        await gateway.stop()
