"""PostgreSQL departments, through asyncpg.

Sessions are read-only (``default_transaction_read_only``), in UTC, and carry a server-side
``statement_timeout`` as a backstop to the client-side timeout (which cancels the running query).
asyncpg prepares and caches each distinct statement per connection; fedgate's statement texts do not
depend on parameter values (key sets are one array parameter), so the cache stays small and hot. Sessions
set ``plan_cache_mode = force_custom_plan``: PostgreSQL's generic plan for ``= ANY($1)`` scans the
array for every row, where a plan for the actual keys hashes it (8 ms against 2 ms for 1,000 keys
over 1,100 rows, measured by ``python -m bench.people``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from adapters.base import (
    Capabilities,
    Capability,
    ColumnDescription,
    PoolUsage,
    TableDescription,
    describe_tables,
)
from adapters.errors import SourceError, SourceUnavailableError
from adapters.sql import SqlAdapter
from adapters.sql_render import PostgresDialect
from schema.catalog import Department, Table
from schema.sources import PostgresSource
from schema.types import ColumnType

_TYPES = {
    "text": ColumnType.STRING,
    "character varying": ColumnType.STRING,
    "character": ColumnType.STRING,
    "citext": ColumnType.STRING,
    "uuid": ColumnType.STRING,
    "smallint": ColumnType.INTEGER,
    "integer": ColumnType.INTEGER,
    "bigint": ColumnType.INTEGER,
    "real": ColumnType.FLOAT,
    "double precision": ColumnType.FLOAT,
    "numeric": ColumnType.DECIMAL,
    "boolean": ColumnType.BOOLEAN,
    "date": ColumnType.DATE,
    "timestamp with time zone": ColumnType.DATETIME,
    "timestamp without time zone": ColumnType.DATETIME,
}

_COLUMNS = """
SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES', col_description(
         (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass, c.ordinal_position::int)
FROM information_schema.columns AS c
JOIN information_schema.tables AS t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = $1 AND t.table_type IN ('BASE TABLE', 'VIEW')
ORDER BY c.table_name, c.ordinal_position
"""
_PRIMARY_KEYS = """
SELECT cl.relname, a.attname
FROM pg_constraint AS con
JOIN pg_class AS cl ON cl.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = cl.relnamespace
CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
WHERE con.contype = 'p' AND n.nspname = $1
ORDER BY cl.relname, k.ord
"""
_FOREIGN_KEYS = """
SELECT cl.relname, con.conname, a.attname, target.relname, fa.attname
FROM pg_constraint AS con
JOIN pg_class AS cl ON cl.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = cl.relnamespace
JOIN pg_class AS target ON target.oid = con.confrelid
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(local_att, remote_att, ord)
JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.local_att
JOIN pg_attribute AS fa ON fa.attrelid = con.confrelid AND fa.attnum = k.remote_att
WHERE con.contype = 'f' AND n.nspname = $1
ORDER BY cl.relname, con.conname, k.ord
"""
_TABLE_COMMENTS = """
SELECT cl.relname, coalesce(obj_description(cl.oid, 'pg_class'), '')
FROM pg_class AS cl JOIN pg_namespace AS n ON n.oid = cl.relnamespace
WHERE n.nspname = $1 AND cl.relkind IN ('r', 'v', 'p')
"""


_ROW_COUNT = (
    "SELECT c.reltuples::bigint FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2"
)


class PooledSession(asyncpg.Connection):  # type: ignore[misc]
    """A pooled session that needs no reset between uses.

    fedgate's sessions keep no state between uses: a department's only run single SELECTs in read-only
    sessions whose settings are fixed when the connection starts, and the audit store's take only
    transaction-scoped locks and cursors; none listens or sets session variables. asyncpg's default
    reset query (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) would cost a round trip
    on every release; an open transaction is still rolled back.
    """

    def get_reset_query(self) -> str:
        return ""


class PostgresAdapter(SqlAdapter):
    """A department held in PostgreSQL."""

    kind = "postgres"
    dialect = PostgresDialect()
    positional_parameters = True

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(department.source, PostgresSource)
        self.config = department.source
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            dialect="postgres", features=frozenset({Capability.WINDOW_FUNCTIONS, Capability.LATERAL_JOINS})
        )

    async def open(self) -> None:
        async with self._opening:
            if self._pool is not None:
                return
            config = self.config
            password = config.password.get_secret_value() if config.password else None
            try:
                self._pool = await asyncpg.create_pool(
                    host=config.host,
                    port=config.port,
                    user=config.user,
                    password=password,
                    database=config.database,
                    ssl=config.ssl,
                    min_size=1,
                    max_size=config.pool_size,
                    timeout=config.timeout_seconds,
                    connection_class=PooledSession,
                    server_settings={
                        "application_name": "fedgate",
                        "default_transaction_read_only": "on",
                        "TimeZone": "UTC",
                        "statement_timeout": str(int(config.timeout_seconds * 1000) + 500),
                        # A generic plan cannot hash a key-set array (= ANY($1)): every row would be
                        # compared with every key. Plans are made for each execution's values.
                        "plan_cache_mode": "force_custom_plan",
                    },
                )
            except Exception as exc:
                mapped = self._map_error(exc)
                if mapped is None:
                    raise
                # Refused for lack of connections, or while shutting down, says so; anything else is unreachable.
                raise (mapped if isinstance(mapped, SourceUnavailableError) else self.unavailable()) from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def pool_usage(self) -> PoolUsage | None:
        pool = self._pool
        if pool is None:
            return None
        size = pool.get_size()
        return PoolUsage(size, size - pool.get_idle_size(), pool.get_max_size())

    async def _run(self, text: str, params: Sequence[Any] | dict[str, Any], timeout: float) -> Sequence[Sequence[Any]]:
        if self._pool is None:
            await self.open()
        assert self._pool is not None and isinstance(params, list)
        async with self._pool.acquire() as connection:
            return await connection.fetch(text, *params)  # type: ignore[no-any-return]

    def _map_error(self, exc: BaseException) -> SourceError | None:
        if isinstance(exc, asyncpg.QueryCanceledError):  # 57014: fedgate's own timeouts cancel client-side, but
            if "statement timeout" in str(exc):  # the session's statement_timeout backs them up (English servers;
                return self.timed_out(self.config.timeout_seconds)  # elsewhere SqlAdapter goes by the time taken)
            return self.cancelled()  # pg_cancel_backend, or a cancel request from elsewhere
        if isinstance(exc, asyncpg.OperatorInterventionError) or isinstance(
            exc.__cause__, asyncpg.OperatorInterventionError
        ):
            # 57P01 admin_shutdown (pg_terminate_backend, a fast shutdown), 57P02 crash_shutdown, 57P03
            # cannot_connect_now, 57P04 database_dropped, 57P05 idle_session_timeout; mid-statement, asyncpg
            # reports the closed connection with the server's reason as its cause.
            return self.terminated()
        if isinstance(exc, asyncpg.ConfigurationLimitExceededError):  # 53400, e.g. temp_file_limit: this statement
            return self.query_failed()
        if isinstance(exc, asyncpg.InsufficientResourcesError):  # 53000, 53100 disk, 53200 memory, 53300 connections
            return self.exhausted()
        if isinstance(
            exc,
            OSError
            | asyncpg.PostgresConnectionError
            | asyncpg.InvalidAuthorizationSpecificationError
            | asyncpg.InvalidPasswordError
            | asyncpg.InvalidCatalogNameError,
        ):
            return self.unavailable()
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            return self.query_failed()
        return None

    def row_count(self, table: Table) -> tuple[str, Sequence[Any]]:
        """The planner's own estimate (``reltuples``; -1 until the table is first analysed)."""
        return _ROW_COUNT, [table.db_schema or "public", table.name]

    async def introspect(self, schema: str = "public") -> Sequence[TableDescription]:
        timeout = self.config.timeout_seconds
        columns = [
            (table, ColumnDescription(column, native, _TYPES.get(native), bool(nullable), comment or ""))
            for table, column, native, nullable, comment in await self.execute_text(_COLUMNS, [schema], timeout=timeout)
        ]
        primary = await self.execute_text(_PRIMARY_KEYS, [schema], timeout=timeout)
        foreign = await self.execute_text(_FOREIGN_KEYS, [schema], timeout=timeout)
        comments = {row[0]: row[1] for row in await self.execute_text(_TABLE_COMMENTS, [schema], timeout=timeout)}
        return describe_tables(columns, primary, foreign, comments)  # type: ignore[arg-type]
