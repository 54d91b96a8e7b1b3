"""MariaDB and MySQL departments, through asyncmy.

Statements run as server-side prepared statements (binary protocol): values travel separately from the
SQL text, never escaped into it. Sessions are read-only, in UTC, ``utf8mb4``, with a server-side
statement time limit (``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL) backing the
client-side timeout. A connection whose query was cancelled mid-flight is closed, not reused.
Text columns must use a ``utf8mb4`` character set: comparisons apply a binary NO PAD collation
(``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL 8), so the catalog's ``kind`` must name
the server it is: a mismatch stops the department at start-up.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import asyncmy
from asyncmy import errors as mysql_errors

from adapters.base import (
    Capabilities,
    Capability,
    ColumnDescription,
    PoolUsage,
    TableDescription,
    describe_tables,
)
from adapters.errors import SourceError, SourceUnavailableError
from adapters.sql import SqlAdapter, log
from adapters.sql_render import MARIADB_BINARY, MYSQL_BINARY, MySQLDialect
from schema.catalog import Department, Table
from schema.sources import MySQLSource
from schema.types import ColumnType

_STATEMENT_CACHE_SIZE = 256
#: Access denied, unknown database, and the client's own: cannot connect, server gone away, connection lost
#: (a killed connection and a dropped network look the same to the client: no reason is sent).
_UNAVAILABLE_CODES = {1045, 1049, 2002, 2003, 2005, 2006, 2013, 2055}
_TIMEOUT_CODES = {1969, 3024}  # ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL)
_CANCELLED_CODES = {1317}  # ER_QUERY_INTERRUPTED: KILL QUERY from another session
_TERMINATED_CODES = {1053, 1927}  # ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED (MariaDB)
#: ER_CON_COUNT_ERROR, ER_OUT_OF_RESOURCES, ER_OUTOFMEMORY, ER_DISK_FULL, ER_CANT_CREATE_THREAD,
#: ER_TOO_MANY_USER_CONNECTIONS, ER_USER_LIMIT_REACHED (an account's max_user_connections or queries per hour).
_EXHAUSTED_CODES = {1040, 1041, 1037, 1021, 1135, 1203, 1226}

_TYPES = {
    "char": ColumnType.STRING,
    "varchar": ColumnType.STRING,
    "text": ColumnType.STRING,
    "tinytext": ColumnType.STRING,
    "mediumtext": ColumnType.STRING,
    "longtext": ColumnType.STRING,
    "enum": ColumnType.STRING,
    "tinyint": ColumnType.INTEGER,
    "smallint": ColumnType.INTEGER,
    "mediumint": ColumnType.INTEGER,
    "int": ColumnType.INTEGER,
    "bigint": ColumnType.INTEGER,
    "float": ColumnType.FLOAT,
    "double": ColumnType.FLOAT,
    "decimal": ColumnType.DECIMAL,
    "date": ColumnType.DATE,
    "datetime": ColumnType.DATETIME,
    "timestamp": ColumnType.DATETIME,
}

_COLUMNS = """
SELECT table_name, column_name, data_type, column_type, is_nullable = 'YES', column_key = 'PRI', column_comment
FROM information_schema.columns WHERE table_schema = ? ORDER BY table_name, ordinal_position
"""
_FOREIGN_KEYS = """
SELECT table_name, constraint_name, column_name, referenced_table_name, referenced_column_name
FROM information_schema.key_column_usage
WHERE table_schema = ? AND referenced_table_name IS NOT NULL
ORDER BY table_name, constraint_name, ordinal_position
"""
_TABLE_COMMENTS = "SELECT table_name, table_comment FROM information_schema.tables WHERE table_schema = ?"


class MySQLAdapter(SqlAdapter):
    """A department held in MariaDB or MySQL."""

    kind = "mysql"
    positional_parameters = True

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(department.source, MySQLSource)
        self.config = department.source
        self.dialect = MySQLDialect(MARIADB_BINARY if self.config.kind == "mariadb" else MYSQL_BINARY)
        #: What the server said it is when last connected to (``mariadb`` or ``mysql``).
        self.server_kind: str | None = None
        self._pool: asyncmy.Pool | None = None
        self._opening = asyncio.Lock()
        self._statements: dict[tuple[int, int], OrderedDict[str, Any]] = {}
        self._capabilities = Capabilities(dialect="mysql", features=frozenset({Capability.WINDOW_FUNCTIONS}))

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _connect_kwargs(self) -> dict[str, Any]:
        config = self.config
        kwargs: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "password": config.password.get_secret_value() if config.password else "",
            "database": config.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": max(1, int(config.timeout_seconds)),
        }
        if config.ssl != "disable":
            context = ssl.create_default_context()
            if config.ssl == "require":
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            kwargs["ssl"] = context
        return kwargs

    async def open(self) -> None:
        async with self._opening:
            if self._pool is not None:
                return
            kwargs = self._connect_kwargs()
            try:
                async with asyncio.timeout(self.config.timeout_seconds):  # asyncmy bounds only the TCP connect
                    await self._create_pool(kwargs)
            except TimeoutError as exc:
                raise self.unavailable() from exc
            except Exception as exc:
                mapped = self._map_error(exc)
                if mapped is None:
                    raise
                # Refused for lack of connections, or while shutting down, says so; anything else is unreachable.
                raise (mapped if isinstance(mapped, SourceUnavailableError) else self.unavailable()) from exc

    async def _create_pool(self, kwargs: dict[str, Any]) -> None:
        """Probe the server's kind and version, then create the pool with per-session settings to match."""
        probe = await asyncmy.connect(**kwargs)
        try:
            is_mariadb = "mariadb" in probe.get_server_info().lower()
            version = _version(probe.get_server_info())
        finally:
            probe.close()
        self.server_kind = "mariadb" if is_mariadb else "mysql"
        if self.server_kind != self.config.kind:  # its binary collation has another name: every statement would fail
            log.error("source_kind_mismatch", department=self.name, declared=self.config.kind, server=self.server_kind)
            raise self.unavailable()
        seconds = self.config.timeout_seconds + 0.5
        limit = f"max_statement_time = {seconds:.3f}" if is_mariadb else f"max_execution_time = {int(seconds * 1000)}"
        read_only = "tx_read_only = 1" if is_mariadb else "transaction_read_only = 1"
        kwargs["init_command"] = f"SET SESSION time_zone = '+00:00', SESSION {limit}, SESSION {read_only}"
        windows = version >= ((10, 2) if is_mariadb else (8, 0))
        features = {Capability.WINDOW_FUNCTIONS} if windows else set()
        self._capabilities = Capabilities(dialect="mysql", features=frozenset(features))
        self._pool = await asyncmy.create_pool(minsize=1, maxsize=self.config.pool_size, **kwargs)

    def pool_usage(self) -> PoolUsage | None:
        pool = self._pool
        if pool is None:
            return None
        return PoolUsage(pool.size, pool.size - pool.freesize, pool.maxsize)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self._statements.clear()
        if pool is not None:
            pool.close()
            await pool.wait_closed()

    async def _run(self, text: str, params: Sequence[Any] | dict[str, Any], timeout: float) -> Sequence[Sequence[Any]]:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        pool = self._pool
        connection = await pool.acquire()
        try:
            statement = await self._statement(connection, text)
            result = await statement.execute(tuple(params))
            return result.rows or ()
        except BaseException:
            # The protocol state is unknown after a cancellation or a broken read: never reuse it.
            self._statements.pop(_connection_key(connection), None)
            connection.close()
            raise
        finally:
            pool.release(connection)

    async def _statement(self, connection: Any, text: str) -> Any:
        cache = self._statements.setdefault(_connection_key(connection), OrderedDict())
        statement = cache.get(text)
        if statement is not None:
            cache.move_to_end(text)
            return statement
        statement = cache[text] = await connection.prepare(text)
        if len(cache) > _STATEMENT_CACHE_SIZE:
            _, oldest = cache.popitem(last=False)
            await oldest.close()
        return statement

    def _map_error(self, exc: BaseException) -> SourceError | None:
        if isinstance(exc, OSError | ConnectionError):
            return self.unavailable()
        if not isinstance(exc, mysql_errors.MySQLError):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _TIMEOUT_CODES:
            return self.timed_out(self.config.timeout_seconds)
        if code in _CANCELLED_CODES:
            return self.cancelled()
        if code in _TERMINATED_CODES:
            return self.terminated()
        if code in _EXHAUSTED_CODES:
            return self.exhausted()
        if code in _UNAVAILABLE_CODES or isinstance(exc, mysql_errors.InterfaceError):
            return self.unavailable()
        return self.query_failed()

    def row_count(self, table: Table) -> tuple[str, Sequence[Any]]:
        """InnoDB's estimate from ``information_schema`` (no scan)."""
        return (
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) "
            "AND TABLE_NAME = ?",
            [table.db_schema, table.name],
        )

    async def introspect(self) -> Sequence[TableDescription]:
        timeout = self.config.timeout_seconds
        database = self.config.database
        columns: list[tuple[str, ColumnDescription]] = []
        primary: list[tuple[str, str]] = []
        for table, column, data_type, column_type, nullable, is_key, comment in await self.execute_text(
            _COLUMNS, [database], timeout=timeout
        ):
            native = str(column_type)
            kind = ColumnType.BOOLEAN if native.lower() == "tinyint(1)" else _TYPES.get(str(data_type).lower())
            columns.append((table, ColumnDescription(column, native, kind, bool(nullable), str(comment or ""))))
            if is_key:
                primary.append((table, column))
        foreign = await self.execute_text(_FOREIGN_KEYS, [database], timeout=timeout)
        comments = {row[0]: row[1] for row in await self.execute_text(_TABLE_COMMENTS, [database], timeout=timeout)}
        return describe_tables(columns, primary, foreign, comments)  # type: ignore[arg-type]


def _connection_key(connection: Any) -> tuple[int, int]:
    """Identifies a live connection: the server's thread id changes when the pool replaces it."""
    return id(connection), connection.thread_id()


def _version(server_info: str) -> tuple[int, int]:
    """``"10.11.6-MariaDB-0+deb12u1"`` → ``(10, 11)``."""
    numbers = server_info.split("-", 1)[0].split(".")
    try:
        return int(numbers[0]), int(numbers[1])
    except (IndexError, ValueError):
        return (0, 0)
