"""SQLite departments (the embedded default), through aiosqlite.

Databases are opened read-only (``mode=ro`` and ``PRAGMA query_only``) with case-sensitive ``LIKE`` so
that text semantics match the other sources. Each pooled connection runs on its own thread; a query
that overruns its timeout is interrupted on that thread (``sqlite3_interrupt``), not just abandoned.
Dates are stored as ISO-8601 text and datetimes as ``YYYY-MM-DD HH:MM:SS`` text in UTC.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlglot import exp

from adapters.base import (
    Capabilities,
    Capability,
    ColumnDescription,
    PoolUsage,
    TableDescription,
    describe_tables,
)
from adapters.errors import SourceError
from adapters.sql import SqlAdapter
from adapters.sql_render import SQLiteDialect
from adapters.sqlite_functions import FUNCTIONS
from schema.catalog import Department, Table
from schema.sources import SqliteSource
from schema.types import ColumnType

#: The database file is locked by a writer (busy), a table lock conflicts (locked), or memory or disk ran out.
_EXHAUSTED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_FULL}
#: The file cannot be opened or read, or is not (or no longer) a database.
_UNAVAILABLE = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}
_INTROSPECT_TABLES = (
    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
)
_INTROSPECT_COLUMNS = 'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid'
_INTROSPECT_FOREIGN_KEYS = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq'


def sqlite_column_type(declared: str) -> ColumnType | None:
    """Map a declared SQLite column type to a catalog type, following SQLite's affinity rules."""
    text = declared.upper()
    if "BOOL" in text:
        return ColumnType.BOOLEAN
    if "INT" in text:
        return ColumnType.INTEGER
    if "DATETIME" in text or "TIMESTAMP" in text:
        return ColumnType.DATETIME
    if "DATE" in text:
        return ColumnType.DATE
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")) or not text:
        return ColumnType.STRING
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return ColumnType.FLOAT
    if "NUMERIC" in text or "DECIMAL" in text:
        return ColumnType.DECIMAL
    return None


class SQLiteAdapter(SqlAdapter):
    """A department held in an SQLite file."""

    kind = "sqlite"
    dialect = SQLiteDialect()

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(department.source, SqliteSource)
        self.config = department.source
        self._idle: asyncio.LifoQueue[aiosqlite.Connection] = asyncio.LifoQueue()
        self._connections: list[aiosqlite.Connection] = []
        self._opening = asyncio.Lock()
        features = {Capability.WINDOW_FUNCTIONS} if sqlite3.sqlite_version_info >= (3, 25) else set()
        self._capabilities = Capabilities(dialect="sqlite", features=frozenset(features))

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def open(self) -> None:
        async with self._opening:
            if self._connections:
                return
            path = self.config.file
            if not path.is_file():
                raise self.unavailable()
            try:
                for _ in range(self.config.pool_size):
                    connection = await aiosqlite.connect(f"{path.as_uri()}?mode=ro", uri=True)
                    self._connections.append(connection)
                    await connection.execute("PRAGMA query_only = ON")
                    await connection.execute("PRAGMA case_sensitive_like = ON")
                    for name, (arity, function) in FUNCTIONS.items():
                        await connection.create_function(name, arity, function, deterministic=True)
                    self._idle.put_nowait(connection)
            except sqlite3.Error as exc:
                await self.close()
                raise self.unavailable() from exc

    def pool_usage(self) -> PoolUsage | None:
        if not self._connections:
            return None
        size = len(self._connections)
        return PoolUsage(size, size - self._idle.qsize(), self.config.pool_size)

    async def close(self) -> None:
        connections, self._connections = self._connections, []
        self._idle = asyncio.LifoQueue()
        for connection in connections:
            await connection.close()

    async def _run(self, text: str, params: Sequence[Any] | dict[str, Any], timeout: float) -> Sequence[Sequence[Any]]:
        if not self._connections:
            await self.open()
        connection = await self._idle.get()
        try:
            return list(await connection.execute_fetchall(text, params))
        except asyncio.CancelledError:
            await connection.interrupt()  # stop the statement on its thread, then hand the connection back
            raise
        finally:
            if connection in self._connections:
                self._idle.put_nowait(connection)

    def _map_error(self, exc: BaseException) -> SourceError | None:
        if isinstance(exc, sqlite3.Error):
            primary = (exc.sqlite_errorcode or 0) & 0xFF  # an extended code's low byte is its primary code
            if primary == sqlite3.SQLITE_INTERRUPT:  # not by fedgate's timeout, whose cancel never reaches here
                return self.cancelled()
            if primary in _EXHAUSTED:
                return self.exhausted()
            if primary in _UNAVAILABLE:
                return self.unavailable()
            return self.query_failed()
        if isinstance(exc, ValueError):
            return self.query_failed()
        return None

    def row_count(self, table: Table) -> tuple[str, Sequence[Any]]:
        """An exact count: SQLite keeps no estimate, and departments held in SQLite are small."""
        statement = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Table(this=exp.to_identifier(table.name, quoted=True))
        )
        return statement.sql(dialect="sqlite"), []

    async def introspect(self) -> Sequence[TableDescription]:
        timeout = self.config.timeout_seconds
        columns: list[tuple[str, ColumnDescription]] = []
        primary: list[tuple[str, str]] = []
        foreign: list[tuple[str, str, str, str, str]] = []
        for (table,) in await self.execute_text(_INTROSPECT_TABLES, [], timeout=timeout):
            info = await self.execute_text(_INTROSPECT_COLUMNS, [table], timeout=timeout)
            for column, declared, notnull, pk in info:
                kind = sqlite_column_type(declared or "")
                columns.append((table, ColumnDescription(column, declared or "", kind, not notnull and not pk)))
            primary.extend((table, column) for column, _, _, pk in sorted(info, key=lambda row: row[3]) if pk)
            for fk_id, target, local, remote in await self.execute_text(
                _INTROSPECT_FOREIGN_KEYS, [table], timeout=timeout
            ):
                foreign.append((table, str(fk_id), local, target, remote))
        return describe_tables(columns, primary, foreign, {})
