"""Each driver's cancel, termination and resource errors, provoked for real: the code the caller sees, whether
it says a retry may help, and what the department's breaker makes of it.

An operator's cancel of one statement (``pg_cancel_backend``, ``KILL QUERY``) is ``SOURCE_CANCELLED``: not
retryable, and no verdict on the source (a breaker that opens on one failure stays closed). A session the
source ended (``pg_terminate_backend``: PostgreSQL's admin_shutdown, as in a fast shutdown) is
``SOURCE_TERMINATED`` and a source out of connections ``SOURCE_RESOURCE_EXHAUSTED``: both retryable, and both
open that breaker. Every breaker here opens on one failure, so a counted failure shows as an open breaker.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import pytest
import yaml

from adapters.postgres import PostgresAdapter
from adapters.sqlite import SQLiteAdapter
from gateway.errors import SourceTimeoutError
from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway, GraphQLResponse
from schema.catalog import Catalog, load_catalog
from tests.conftest import MARIADB, PG, make_settings, run, scratch_mariadb, scratch_postgres

NUMBERS = [{"name": "numbers", "primary_key": ["n"], "columns": [{"name": "n", "type": "integer", "nullable": False}]}]
QUERY = "{ source { numbers { n } } }"
#: A request that has not answered within this long is hung.
HANG = 30


def _catalog(directory: Path, source: dict[str, Any]) -> Catalog:
    source = {"timeout_seconds": 10, "pool_size": 1, "breaker": {"failures": 1, "reset_seconds": 60}, **source}
    department = {"name": "source", "title": "Source", "source": source, "tables": NUMBERS}
    path = directory / f"catalog-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "departments": [department]}))
    return load_catalog(path)


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Catalog], Awaitable[Gateway]]]:
    gateways: list[Gateway] = []

    async def start(catalog: Catalog) -> Gateway:
        gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
        await gateway.start()
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        await gateway.stop()


def _failed(response: GraphQLResponse, code: str, retryable: bool) -> str:
    """The department's one error has ``code`` and ``retryable``; returns its message."""
    assert response.data == {"source": {"numbers": None}}
    (error,) = response.errors
    assert error["extensions"] == {"code": code, "department": "source", "retryable": retryable}
    assert response.extensions["sources"]["source"]["code"] == code
    return str(error["message"])


async def _while_running(gateway: Gateway, interfere: Callable[[], Awaitable[None]]) -> tuple[GraphQLResponse, float]:
    """Run the query; ``interfere`` once its statement is running on the source. Returns the response and how
    long it took."""
    started = time.monotonic()
    async with asyncio.timeout(HANG):
        request = asyncio.create_task(run(gateway, QUERY))
        await interfere()
        response = await request
    return response, time.monotonic() - started


# --- PostgreSQL ------------------------------------------------------------------------------------------


async def _pg(database: str, *statements: str) -> list[Any]:
    connection = await asyncpg.connect(database=database, **PG)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = await connection.fetch(statement)
        return rows
    finally:
        await connection.close()


async def _pg_running_statement(database: str) -> int:
    """The server process running fedgate's statement on ``database``, once it runs."""
    for _ in range(500):
        rows = await _pg(
            "postgres",
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' AND application_name = 'fedgate' "  # noqa: S608
            "AND state = 'active' AND query LIKE '%numbers%'",
        )
        if rows:
            return int(rows[0][0])
        await asyncio.sleep(0.02)
    raise AssertionError("fedgate's statement never started")


@pytest.fixture
async def pg_slow() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A scratch database whose ``numbers`` takes 5 s to read; its source settings."""
    async with scratch_postgres() as database:
        await _pg(database, "CREATE VIEW numbers AS SELECT 1::bigint AS n FROM pg_sleep(5)")
        yield database, {"kind": "postgres", **PG, "database": database}


async def test_a_postgres_statement_cancelled_by_an_operator_is_cancelled_not_timed_out(
    tmp_path: Path, pg_slow: tuple[str, dict[str, Any]], started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    database, source = pg_slow
    gateway = await started(_catalog(tmp_path, source))

    async def cancel() -> None:
        pid = await _pg_running_statement(database)
        await _pg("postgres", f"SELECT pg_cancel_backend({pid})")

    response, elapsed = await _while_running(gateway, cancel)
    message = _failed(response, "SOURCE_CANCELLED", retryable=False)
    assert message == "department 'source' cancelled the statement (an operator stopped it)"
    assert elapsed < 5  # the statement's timeout is 10 s and its sleep 5 s: it ended at the cancel
    assert gateway.sources.breaker("source").state is BreakerState.CLOSED  # not counted


async def test_a_postgres_session_terminated_by_an_administrator_is_terminated(
    tmp_path: Path, pg_slow: tuple[str, dict[str, Any]], started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    database, source = pg_slow
    gateway = await started(_catalog(tmp_path, source))

    async def terminate() -> None:
        pid = await _pg_running_statement(database)
        await _pg("postgres", f"SELECT pg_terminate_backend({pid})")

    response, elapsed = await _while_running(gateway, terminate)
    _failed(response, "SOURCE_TERMINATED", retryable=True)
    assert elapsed < 5
    assert gateway.sources.breaker("source").state is BreakerState.OPEN  # counted


async def test_postgres_refusing_a_connection_for_lack_of_slots_is_resource_exhausted(
    tmp_path: Path, started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    role = f"fedgate_limited_{uuid.uuid4().hex[:6]}"
    async with scratch_postgres() as database:
        await _pg(
            database, "CREATE TABLE numbers (n bigint PRIMARY KEY)", f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'
        )
        try:
            gateway = await started(_catalog(tmp_path, {"kind": "postgres", **PG, "user": role, "database": database}))
            _failed(await run(gateway, QUERY), "SOURCE_RESOURCE_EXHAUSTED", retryable=True)  # 53300
            assert gateway.sources.breaker("source").state is BreakerState.OPEN
        finally:
            await _pg("postgres", f'DROP ROLE IF EXISTS "{role}"')


async def test_postgres_own_statement_timeout_is_a_timeout(tmp_path: Path) -> None:
    """The session's ``statement_timeout`` backs fedgate's own timeout up, a little after it: when it fires
    first (here: a caller asking for longer than the source's timeout), the cancel is a timeout."""
    async with scratch_postgres() as database:
        catalog = _catalog(tmp_path, {"kind": "postgres", **PG, "database": database, "timeout_seconds": 0.3})
        adapter = PostgresAdapter(catalog.department("source"))
        try:
            started = time.monotonic()
            with pytest.raises(SourceTimeoutError, match=r"did not answer within 0\.3 s"):
                await adapter.execute_text("SELECT pg_sleep(5)", [], timeout=10)
            assert time.monotonic() - started < 5
        finally:
            await adapter.close()


# --- MariaDB -----------------------------------------------------------------------------------------------


async def _maria(*statements: str, database: str | None = None, **connect: Any) -> Sequence[Any]:
    connection = await asyncmy.connect(**{"password": "", **MARIADB, **connect}, autocommit=True, database=database)
    rows: Sequence[Any] = ()
    try:
        async with connection.cursor() as cursor:
            for statement in statements:
                await cursor.execute(statement)
                rows = await cursor.fetchall() or ()
    finally:
        connection.close()
    return rows


async def _maria_running_statement(database: str) -> int:
    for _ in range(500):
        rows = await _maria(
            f"SELECT id FROM information_schema.processlist WHERE db = '{database}' AND info LIKE '%numbers%'"  # noqa: S608
        )
        if rows:
            return int(rows[0][0])
        await asyncio.sleep(0.02)
    raise AssertionError("fedgate's statement never started")


@pytest.fixture
async def maria_slow() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async with scratch_mariadb() as database:
        await _maria("CREATE VIEW numbers AS SELECT 1 AS n FROM (SELECT SLEEP(5) AS s) AS t", database=database)
        yield database, {"kind": "mariadb", **MARIADB, "database": database}


async def test_a_mariadb_statement_killed_by_kill_query_is_cancelled(
    tmp_path: Path, maria_slow: tuple[str, dict[str, Any]], started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    database, source = maria_slow
    gateway = await started(_catalog(tmp_path, source))

    async def kill_query() -> None:
        await _maria(f"KILL QUERY {await _maria_running_statement(database)}")

    response, elapsed = await _while_running(gateway, kill_query)
    _failed(response, "SOURCE_CANCELLED", retryable=False)  # ER_QUERY_INTERRUPTED (1317)
    assert elapsed < 5
    assert gateway.sources.breaker("source").state is BreakerState.CLOSED


async def test_a_mariadb_connection_killed_mid_statement_is_unavailable_and_counted(
    tmp_path: Path, maria_slow: tuple[str, dict[str, Any]], started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    """MariaDB closes a killed connection without a word: the client sees the connection lost (2013), as it
    would for a network failure, so this is SOURCE_UNAVAILABLE. A shutdown's own error (ER_SERVER_SHUTDOWN)
    and ER_CONNECTION_KILLED, when the server sends them, are SOURCE_TERMINATED."""
    database, source = maria_slow
    gateway = await started(_catalog(tmp_path, source))

    async def kill_connection() -> None:
        await _maria(f"KILL CONNECTION {await _maria_running_statement(database)}")

    response, elapsed = await _while_running(gateway, kill_connection)
    _failed(response, "SOURCE_UNAVAILABLE", retryable=True)
    assert elapsed < 5
    assert gateway.sources.breaker("source").state is BreakerState.OPEN


async def test_mariadb_refusing_a_connection_over_a_users_limit_is_resource_exhausted(
    tmp_path: Path, started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    user = f"fedgate_limited_{uuid.uuid4().hex[:6]}"
    async with scratch_mariadb() as database:
        await _maria("CREATE TABLE numbers (n BIGINT PRIMARY KEY)", database=database)
        await _maria(
            f"CREATE USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 1", f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'"
        )
        holder = await asyncmy.connect(host=MARIADB["host"], port=MARIADB["port"], user=user, password="")
        try:
            source = {"kind": "mariadb", **MARIADB, "user": user, "database": database}
            gateway = await started(_catalog(tmp_path, source))
            _failed(await run(gateway, QUERY), "SOURCE_RESOURCE_EXHAUSTED", retryable=True)  # 1203
            assert gateway.sources.breaker("source").state is BreakerState.OPEN
        finally:
            holder.close()
            await _maria(f"DROP USER IF EXISTS '{user}'@'%'")


# --- SQLite ------------------------------------------------------------------------------------------------


def _sqlite_numbers(path: Path) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO numbers VALUES (1)")
    connection.close()


async def test_an_sqlite_database_locked_by_a_writer_is_resource_exhausted(
    tmp_path: Path, started: Callable[[Catalog], Awaitable[Gateway]]
) -> None:
    """A reader waits for a writer's lock up to SQLite's busy timeout (5 s, Python's default), then
    SQLITE_BUSY: the source is there but cannot serve now."""
    _sqlite_numbers(tmp_path / "locked.db")
    gateway = await started(_catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "locked.db")}))
    writer = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        async with asyncio.timeout(HANG):
            response = await run(gateway, QUERY)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    _failed(response, "SOURCE_RESOURCE_EXHAUSTED", retryable=True)
    assert gateway.sources.breaker("source").state is BreakerState.OPEN


class _InterruptedSQLiteAdapter(SQLiteAdapter):
    """A real SQLite adapter whose statements another part of the process interrupts 0.2 s in
    (``sqlite3_interrupt``, as an application embedding the database might): not fedgate's timeout."""

    async def _run(self, text: str, params: Sequence[Any] | dict[str, Any], timeout: float) -> Sequence[Sequence[Any]]:
        async def interrupt_soon() -> None:
            await asyncio.sleep(0.2)
            for connection in self._connections:
                await connection.interrupt()

        interrupter = asyncio.create_task(interrupt_soon())
        try:
            return await super()._run(text, params, timeout)
        finally:
            interrupter.cancel()


async def test_an_sqlite_statement_interrupted_by_another_is_cancelled_and_by_its_timeout_timed_out(
    tmp_path: Path,
) -> None:
    slow = (
        "CREATE VIEW numbers AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 500000000) "
        "SELECT n FROM c WHERE n % 400000000 = 0"
    )
    connection = sqlite3.connect(tmp_path / "slow.db")
    connection.execute(slow)
    connection.close()
    catalog = _catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "slow.db")})
    interrupted = _InterruptedSQLiteAdapter(catalog.department("source"))
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog, {"source": interrupted}))
    await gateway.start()
    try:
        async with asyncio.timeout(HANG):
            _failed(await run(gateway, QUERY), "SOURCE_CANCELLED", retryable=False)
    finally:
        await gateway.stop()
    timed = _catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "slow.db"), "timeout_seconds": 0.2})
    gateway = Gateway(timed, make_settings(), GuardedAdapters(timed))
    await gateway.start()
    try:
        async with asyncio.timeout(HANG):
            _failed(await run(gateway, QUERY), "SOURCE_TIMEOUT", retryable=True)  # fedgate's own interrupt
    finally:
        await gateway.stop()
