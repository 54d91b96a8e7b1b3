"""Departments that die, hang or crowd their bulkhead, on real sources: the rest answers, nothing hangs.

The breaker's cool-downs run on an injected clock: no test waits for one, and none asserts a duration
(a generous bound around a whole request only turns a hang into a failure instead of a stuck run).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import asyncmy
import asyncpg
import pytest
import yaml

from adapters.base import NO_CONTEXT, FetchContext, PreparedQuery, Row
from adapters.sqlite import SQLiteAdapter
from demo.load import write_sqlite
from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.health_checks import HealthChecker
from gateway.service import Gateway, GraphQLResponse
from schema.catalog import Catalog, load_catalog
from tests.conftest import MARIADB, PG, make_settings, run, write_catalog
from tests.fixtures.person_data import ROWS as PERSON_ROWS
from tests.support.fake_clock import FakeClock
from tests.support.person_federation import person_catalog
from tests.support.servers import black_hole

#: A request that has not answered within this long is hung (no source below is given more than 5 s).
HANG = 30

NUMBERS = [{"name": "numbers", "primary_key": ["n"], "columns": [{"name": "n", "type": "integer", "nullable": False}]}]
QUERY = "{ steady { numbers { n } } fragile { numbers { n } } }"
SLOW_VIEW = (
    "CREATE VIEW numbers AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 500000000) "
    "SELECT n FROM c WHERE n % 400000000 = 0"
)


def _sqlite(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


def _catalog(directory: Path, fragile: dict[str, Any]) -> Catalog:
    _sqlite(directory / "steady.db", "CREATE TABLE numbers (n INTEGER PRIMARY KEY)", "INSERT INTO numbers VALUES (1)")
    steady = {"kind": "sqlite", "path": str(directory / "steady.db")}
    data = {
        "version": 1,
        "departments": [
            {"name": name, "title": name.title(), "source": source, "tables": NUMBERS}
            for name, source in (("steady", steady), ("fragile", fragile))
        ],
    }
    path = directory / f"catalog-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_catalog(path)


async def _answer(gateway: Gateway, query: str = QUERY) -> GraphQLResponse:
    async with asyncio.timeout(HANG):
        return await run(gateway, query)


def _fragile_failed(response: GraphQLResponse, code: str) -> None:
    """The steady department answered; the fragile one is null (never an empty list) with ``code``."""
    assert response.data == {"steady": {"numbers": [{"n": 1}]}, "fragile": {"numbers": None}}
    assert [(error["path"], error["extensions"]["code"]) for error in response.errors] == [
        (["fragile", "numbers"], code)
    ]
    summary = response.extensions["sources"]
    assert summary["steady"] == {"status": "complete", "statements": 1}
    assert summary["fragile"]["status"] == "failed"
    assert summary["fragile"]["code"] == code
    assert summary["fragile"]["retryable"] is True


# --- a department killed mid-test, on a real server ------------------------------------------------------

NAME = f"fedgate_fragile_{uuid.uuid4().hex[:6]}"


async def _pg_admin() -> asyncpg.Connection:
    return await asyncpg.connect(database="postgres", **PG)


async def _pg_create() -> dict[str, Any]:
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(database=NAME, **PG)
    try:
        await connection.execute("CREATE TABLE numbers (n bigint PRIMARY KEY); INSERT INTO numbers VALUES (2), (3)")
    finally:
        await connection.close()
    return {"kind": "postgres", **PG, "database": NAME}


async def _pg_kill() -> None:
    """No new sessions, every session terminated, then the database renamed away."""
    admin = await _pg_admin()
    try:
        await admin.execute(f'ALTER DATABASE "{NAME}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1", NAME)
        await admin.execute(f'ALTER DATABASE "{NAME}" RENAME TO "{NAME}_gone"')
    finally:
        await admin.close()


async def _pg_restore() -> None:
    admin = await _pg_admin()
    try:
        await admin.execute(f'ALTER DATABASE "{NAME}_gone" RENAME TO "{NAME}"')
        await admin.execute(f'ALTER DATABASE "{NAME}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def _pg_drop() -> None:
    admin = await _pg_admin()
    try:
        for name in (NAME, f"{NAME}_gone"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _maria(*statements: str, database: str | None = None) -> list[Any]:
    connection = await asyncmy.connect(password="", autocommit=True, database=database, **MARIADB)
    rows: list[Any] = []
    try:
        async with connection.cursor() as cursor:
            for statement in statements:
                await cursor.execute(statement)
                rows = list(await cursor.fetchall() or ())
    finally:
        connection.close()
    return rows


async def _maria_create() -> dict[str, Any]:
    await _maria(f"CREATE DATABASE `{NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    await _maria("CREATE TABLE numbers (n BIGINT PRIMARY KEY)", "INSERT INTO numbers VALUES (2), (3)", database=NAME)
    return {"kind": "mariadb", **MARIADB, "database": NAME}


async def _maria_kill() -> None:
    """Every session on the database killed, then the database dropped."""
    sessions = await _maria(f"SELECT id FROM information_schema.processlist WHERE db = '{NAME}'")  # noqa: S608
    for (session,) in sessions:
        with contextlib.suppress(asyncmy.errors.MySQLError):  # it may have ended meanwhile
            await _maria(f"KILL CONNECTION {int(session)}")
    await _maria(f"DROP DATABASE `{NAME}`")


async def _maria_drop() -> None:
    await _maria(f"DROP DATABASE IF EXISTS `{NAME}`")


class _Engine(NamedTuple):
    create: Callable[[], Awaitable[dict[str, Any]]]
    kill: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[Any]]
    drop: Callable[[], Awaitable[None]]


ENGINES = {
    "postgres": _Engine(_pg_create, _pg_kill, _pg_restore, _pg_drop),
    "mariadb": _Engine(_maria_create, _maria_kill, _maria_create, _maria_drop),
}


@pytest.mark.parametrize("engine", list(ENGINES))
async def test_a_department_killed_mid_test_opens_its_breaker_and_comes_back(tmp_path: Path, engine: str) -> None:
    create, kill, restore, drop = ENGINES[engine]
    await drop()
    source = await create()
    breaker = {"failures": 2, "reset_seconds": 30, "max_reset_seconds": 60}
    catalog = _catalog(tmp_path, {**source, "pool_size": 1, "timeout_seconds": 5, "breaker": breaker})
    clock = FakeClock()
    sources = GuardedAdapters(catalog, breaker_clock=clock)
    gateway = Gateway(catalog, make_settings(), sources)
    await gateway.start()
    try:
        alive = await _answer(gateway)
        assert alive.errors == []
        assert alive.data == {"steady": {"numbers": [{"n": 1}]}, "fragile": {"numbers": [{"n": 2}, {"n": 3}]}}
        assert alive.extensions["sources"]["fragile"] == {"status": "complete", "statements": 1}

        await kill()
        for _ in range(2):  # two consecutive failures: each one really asked the source
            dead = await _answer(gateway)
            _fragile_failed(dead, "SOURCE_UNAVAILABLE")
            assert dead.statements == {"steady": 1, "fragile": 1}
        assert sources.breaker("fragile").state is BreakerState.OPEN

        refused = await _answer(gateway)  # open: failed fast, the adapter not called
        _fragile_failed(refused, "SOURCE_CIRCUIT_OPEN")
        assert refused.statements == {"steady": 1}
        assert refused.extensions["sources"]["fragile"]["statements"] == 0
        assert refused.errors[0]["extensions"]["retryAfter"] == 30

        await restore()
        clock.advance(29)
        _fragile_failed(await _answer(gateway), "SOURCE_CIRCUIT_OPEN")  # back, but not asked before the cool-down
        clock.advance(1)
        back = await _answer(gateway)  # the probe: a real statement
        assert back.errors == []
        assert back.data == alive.data
        assert back.statements == {"steady": 1, "fragile": 1}
        assert sources.breaker("fragile").state is BreakerState.CLOSED
    finally:
        await gateway.stop()
        await drop()


@pytest.mark.parametrize("engine", list(ENGINES))
async def test_active_health_checks_readmit_a_killed_department_as_soon_as_it_is_back(
    tmp_path: Path, engine: str
) -> None:
    """The breaker's cool-down is a minute on the real clock: only a health check can close it within the test."""
    create, kill, restore, drop = ENGINES[engine]
    await drop()
    source = await create()
    breaker = {"failures": 2, "reset_seconds": 60, "max_reset_seconds": 120}
    checks = {"interval_seconds": 0.2, "timeout_seconds": 1}
    catalog = _catalog(tmp_path, {**source, "pool_size": 1, "breaker": breaker, "health_check": checks})
    sources = GuardedAdapters(catalog)
    gateway = Gateway(catalog, make_settings(), sources)
    checker = HealthChecker(sources)
    await gateway.start()
    await checker.start()
    try:
        alive = await _answer(gateway)
        assert alive.errors == []
        await kill()
        for _ in range(2):
            _fragile_failed(await _answer(gateway), "SOURCE_UNAVAILABLE")
        assert sources.breaker("fragile").state is BreakerState.OPEN
        await _until(lambda: checker.departments["fragile"].healthy is False)  # the checks see it down
        await restore()
        restored = time.monotonic()
        await _until(lambda: sources.breaker("fragile").state is BreakerState.CLOSED)
        assert time.monotonic() - restored < 10  # a few 0.2 s intervals, not the 60 s cool-down
        assert _ready(checker, "fragile")
        back = await _answer(gateway)
        assert back.errors == []
        assert back.data == alive.data
        assert back.statements == {"steady": 1, "fragile": 1}
    finally:
        await checker.stop()
        await gateway.stop()
        await drop()


def _ready(checker: HealthChecker, department: str) -> bool:
    return next(health.ok for health in checker.readiness() if health.department == department)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, checking every 50 ms; fail after 15 s."""
    async with asyncio.timeout(15):
        while not condition():
            await asyncio.sleep(0.05)


# --- every kind of path is null, never empty, when its department fails ----------------------------------


async def test_every_path_kind_is_null_when_its_department_fails(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    files = {d.name: str(d.source.file) for d in sqlite_clinic.departments}  # type: ignore[union-attr]
    template = Path(__file__).parent / "fixtures" / "clinic_catalog.yaml"

    def without(department: str) -> Catalog:
        sources = {name: {"kind": "sqlite", "path": path} for name, path in files.items()}
        sources[department] = {"kind": "sqlite", "path": str(tmp_path / f"{department}-gone.db")}
        return load_catalog(write_catalog(template, tmp_path, sources))

    cases = [  # (department down, query, expected data, paths with an error)
        ("council", "{ council { cases { caseId } } }", {"council": {"cases": None}}, [["council", "cases"]]),
        (
            "council",
            '{ council { case(caseId: "c1") { caseId } } }',
            {"council": {"case": None}},
            [["council", "case"]],
        ),
        (
            "council",
            '{ clinic { people(where: {personId: {in: ["p01", "p02"]}}) { personId cases { caseId } } } }',
            {"clinic": {"people": [{"personId": "p01", "cases": None}, {"personId": "p02", "cases": None}]}},
            [["clinic", "people", 0, "cases"], ["clinic", "people", 1, "cases"]],
        ),
        (
            "clinic",
            '{ council { cases(where: {caseId: {in: ["c1", "c2"]}}) { caseId person { givenName } } } }',
            {"council": {"cases": [{"caseId": "c1", "person": None}, {"caseId": "c2", "person": None}]}},
            [["council", "cases", 0, "person"], ["council", "cases", 1, "person"]],
        ),
    ]
    for down, query, data, paths in cases:
        catalog = without(down)
        gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
        await gateway.start()
        try:
            response = await _answer(gateway, query)
        finally:
            await gateway.stop()
        assert response.data == data, query
        assert [error["path"] for error in response.errors] == paths
        assert {error["extensions"]["code"] for error in response.errors} == {"SOURCE_UNAVAILABLE"}
        assert response.extensions["sources"][down] == {
            "status": "failed",
            "code": "SOURCE_UNAVAILABLE",
            "retryable": True,
            "statements": 1,
        }


# --- nothing hangs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "engine", [PG | {"kind": "postgres"}, MARIADB | {"kind": "mariadb"}], ids=["postgres", "mariadb"]
)
async def test_a_server_that_accepts_connections_but_never_answers_is_bounded(
    tmp_path: Path, engine: dict[str, Any]
) -> None:
    async with black_hole() as port:
        source = {**engine, "port": port, "database": "nothing", "timeout_seconds": 0.5}
        catalog = _catalog(tmp_path, source)
        gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
        async with asyncio.timeout(HANG):
            await gateway.start()  # start-up does not wait for it
        try:
            for _ in range(2):
                response = await _answer(gateway)
                assert response.data == {"steady": {"numbers": [{"n": 1}]}, "fragile": {"numbers": None}}
                assert response.errors[0]["extensions"]["code"] in {"SOURCE_TIMEOUT", "SOURCE_UNAVAILABLE"}
            async with asyncio.timeout(HANG):
                health = {check.department: check.ok for check in await gateway.sources.health()}
            assert health == {"steady": True, "fragile": False}
        finally:
            async with asyncio.timeout(HANG):
                await gateway.stop()


async def test_waiting_for_a_bulkhead_slot_ends_at_the_request_deadline(tmp_path: Path) -> None:
    _sqlite(tmp_path / "slow.db", "CREATE TABLE placeholder (x INTEGER)")  # slow only once started (statistics)
    source = {"kind": "sqlite", "path": str(tmp_path / "slow.db"), "timeout_seconds": 60, "max_concurrency": 1}
    catalog = _catalog(tmp_path, source)
    settings = make_settings()
    settings = settings.model_copy(
        update={"execution": settings.execution.model_copy(update={"request_timeout_seconds": 0.5})}
    )
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog))
    await gateway.start()
    _sqlite(tmp_path / "slow.db", SLOW_VIEW)
    try:
        # Two statements for one slot: the second waits for the first, and neither outlives the deadline.
        response = await _answer(gateway, "{ steady { numbers { n } } fragile { a: numbers { n } b: numbers { n } } }")
    finally:
        await gateway.stop()
    assert response.data == {"steady": {"numbers": [{"n": 1}]}, "fragile": {"a": None, "b": None}}
    assert sorted(error["path"][-1] for error in response.errors) == ["a", "b"]
    assert {error["extensions"]["code"] for error in response.errors} == {"SOURCE_TIMEOUT"}


class _DeafSQLiteAdapter(SQLiteAdapter):
    """A real SQLite adapter with a defect: it ignores the timeout it is given (as a buggy adapter might)."""

    async def fetch(
        self, prepared: PreparedQuery, values: Any, *, timeout: float, context: FetchContext = NO_CONTEXT
    ) -> list[Row]:
        return await super().fetch(prepared, values, timeout=3600, context=context)


async def test_an_adapter_that_ignores_its_timeout_is_abandoned(tmp_path: Path) -> None:
    _sqlite(tmp_path / "slow.db", SLOW_VIEW)
    catalog = _catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "slow.db"), "timeout_seconds": 0.3})
    deaf = _DeafSQLiteAdapter(catalog.department("fragile"))
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog, {"fragile": deaf}))
    await gateway.start()
    try:
        _fragile_failed(await _answer(gateway), "SOURCE_TIMEOUT")
        _fragile_failed(await _answer(gateway), "SOURCE_TIMEOUT")  # its connection was interrupted, not left busy
    finally:
        await gateway.stop()


async def test_the_summary_and_strict_mode_cover_merged_person_records(tmp_path: Path) -> None:
    catalog = person_catalog(tmp_path)
    for department in catalog.departments:
        if department.name != "dwp":
            write_sqlite(tmp_path / f"{department.name}.db", catalog, department, PERSON_ROWS)
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
    await gateway.start()
    query = '{ person(nhsNumber: "9990000001") { nhsNumber claims { claimId } } }'
    try:
        partial = await _answer(gateway, query)
        strict = await _answer(gateway, f"query @strict {query}")
    finally:
        await gateway.stop()
    assert partial.data == {"person": {"nhsNumber": "9990000001", "claims": None}}
    assert partial.extensions["sources"]["dwp"]["status"] == "failed"
    assert partial.extensions["sources"]["dwp"]["code"] == "SOURCE_UNAVAILABLE"
    assert strict.strict_failure
    assert strict.to_dict()["data"] is None
    assert [error["extensions"]["department"] for error in strict.errors] == ["dwp"]


async def test_a_stopped_gateway_sends_nothing_and_reopens_nothing(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "steady.db")})
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
    await gateway.start()
    await gateway.stop()
    late = await _answer(gateway)  # e.g. a task still running when the server shut down
    assert late.data == {"steady": {"numbers": None}, "fragile": {"numbers": None}}
    assert {error["extensions"]["code"] for error in late.errors} == {"SOURCE_UNAVAILABLE"}
    assert late.statements == {}
