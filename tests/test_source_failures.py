"""Departments that are down or slow: the others still answer, the failing paths are null with an error."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import pytest

from schema.catalog import Catalog, load_catalog
from tests.conftest import MARIADB, PG, make_settings, run, started_gateway, write_catalog

SLOW_CATALOG = """
version: 1
departments:
  - name: fast
    title: Fast
    source: {kind: sqlite, path: fast.db}
    tables:
      - name: numbers
        primary_key: [n]
        columns: [{name: n, type: integer, nullable: false}]
  - name: slow
    title: Slow
    source: {kind: sqlite, path: slow.db, timeout_seconds: 0.3}
    tables:
      - name: numbers
        primary_key: [n]
        columns: [{name: n, type: integer, nullable: false}]
"""

SQLITE_SLOW_VIEW = (
    "CREATE VIEW numbers AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 500000000) "
    "SELECT n FROM c WHERE n % 400000000 = 0"
)
PG_SLOW_VIEW = "CREATE VIEW numbers AS SELECT 1::bigint AS n FROM pg_sleep(5)"
MARIADB_SLOW_VIEW = "CREATE VIEW numbers AS SELECT 1 AS n FROM (SELECT SLEEP(5) AS s) AS t"


def _sqlite(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(statement)


def _catalog(directory: Path, slow_source: dict[str, Any]) -> Catalog:
    template = directory / "template.yaml"
    template.write_text(SLOW_CATALOG)
    _sqlite(directory / "fast.db", "CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    _sqlite(directory / "fast.db", "INSERT INTO numbers VALUES (1), (2)")
    fast = {"kind": "sqlite", "path": str(directory / "fast.db")}
    return load_catalog(write_catalog(template, directory, {"fast": fast, "slow": slow_source}))


QUERY = "{ fast { numbers { n } } slow { numbers { n } } }"


def _assert_partial(response: Any, code: str, started: float, within: float) -> None:
    elapsed = time.monotonic() - started
    assert response.data == {"fast": {"numbers": [{"n": 1}, {"n": 2}]}, "slow": {"numbers": None}}
    (error,) = response.errors
    assert error["path"] == ["slow", "numbers"]
    assert error["extensions"] == {"code": code, "department": "slow", "retryable": True}
    assert "slow" in error["message"]
    assert "SELECT" not in error["message"]
    assert elapsed < within, f"took {elapsed:.2f}s"


async def test_a_missing_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "absent.db")})
    gateway = await started_gateway(catalog)
    try:
        started = time.monotonic()
        _assert_partial(await run(gateway, QUERY), "SOURCE_UNAVAILABLE", started, 5)
        ready = {check.department: check.ok for check in await gateway.sources.health()}
        assert ready == {"fast": True, "slow": False}
        # The department comes back without a restart.
        _sqlite(tmp_path / "absent.db", "CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        recovered = await run(gateway, QUERY)
        assert recovered.errors == []
        assert recovered.data["slow"] == {"numbers": []}  # type: ignore[index]
    finally:
        await gateway.stop()


@pytest.mark.parametrize(
    "engine", [PG | {"kind": "postgres"}, MARIADB | {"kind": "mariadb"}], ids=["postgres", "mariadb"]
)
async def test_an_unreachable_server_is_unavailable(tmp_path: Path, engine: dict[str, Any]) -> None:
    source = {**engine, "port": 1, "database": "nothing", "timeout_seconds": 2}
    gateway = await started_gateway(_catalog(tmp_path, source))
    try:
        _assert_partial(await run(gateway, QUERY), "SOURCE_UNAVAILABLE", time.monotonic(), 5)
    finally:
        await gateway.stop()


async def test_a_slow_sqlite_query_is_interrupted(tmp_path: Path) -> None:
    _sqlite(tmp_path / "slow.db", SQLITE_SLOW_VIEW)
    gateway = await started_gateway(_catalog(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "slow.db"),
                                                         "timeout_seconds": 0.3, "pool_size": 1}))  # fmt: skip
    try:
        started = time.monotonic()
        _assert_partial(await run(gateway, QUERY), "SOURCE_TIMEOUT", started, 2)
        # The one pooled connection was interrupted, not left running: the next query can use it.
        started = time.monotonic()
        _assert_partial(await run(gateway, QUERY), "SOURCE_TIMEOUT", started, 2)
    finally:
        await gateway.stop()


async def _postgres_slow_view(database: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database=database, **PG)
    try:
        await connection.execute("DROP VIEW IF EXISTS numbers")
        await connection.execute(PG_SLOW_VIEW)
    finally:
        await connection.close()
    return {"kind": "postgres", **PG, "database": database}


async def _mariadb_slow_view(database: str) -> dict[str, Any]:
    connection = await asyncmy.connect(password="", database=database, autocommit=True, **MARIADB)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("DROP VIEW IF EXISTS numbers")
            await cursor.execute(MARIADB_SLOW_VIEW)
    finally:
        connection.close()
    return {"kind": "mariadb", **MARIADB, "database": database}


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
async def test_a_slow_server_query_is_cancelled(
    tmp_path: Path, engine: str, postgres_database: str, mariadb_database: str
) -> None:
    if engine == "postgres":
        source = await _postgres_slow_view(postgres_database)
    else:
        source = await _mariadb_slow_view(mariadb_database)
    gateway = await started_gateway(_catalog(tmp_path, {**source, "timeout_seconds": 0.3, "pool_size": 1}))
    try:
        for _ in range(2):  # the single pooled connection was cancelled or replaced, not left busy
            started = time.monotonic()
            _assert_partial(await run(gateway, QUERY), "SOURCE_TIMEOUT", started, 2)
    finally:
        await gateway.stop()


async def test_the_request_deadline_bounds_the_whole_request(tmp_path: Path) -> None:
    _sqlite(tmp_path / "slow.db", SQLITE_SLOW_VIEW)
    source = {"kind": "sqlite", "path": str(tmp_path / "slow.db"), "timeout_seconds": 30}
    catalog = _catalog(tmp_path, source)
    settings = make_settings()
    settings = settings.model_copy(
        update={"execution": settings.execution.model_copy(update={"request_timeout_seconds": 0.4})}
    )
    gateway = await started_gateway(catalog, settings)
    try:
        started = time.monotonic()
        _assert_partial(await run(gateway, QUERY), "SOURCE_TIMEOUT", started, 2)
    finally:
        await gateway.stop()


async def test_a_failing_nested_department_nulls_each_affected_path(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    council = {"kind": "sqlite", "path": str(tmp_path / "gone.db")}
    clinic = {"kind": "sqlite", "path": str(sqlite_clinic.department("clinic").source.file)}  # type: ignore[union-attr]
    catalog = load_catalog(write_catalog(Path(__file__).parent / "fixtures" / "clinic_catalog.yaml", tmp_path,
                                         {"clinic": clinic, "council": council}))  # fmt: skip
    gateway = await started_gateway(catalog)
    try:
        response = await run(
            gateway, '{ clinic { people(where: {personId: {in: ["p01", "p02"]}}) { personId cases { caseId } } } }'
        )
    finally:
        await gateway.stop()
    assert response.data == {
        "clinic": {"people": [{"personId": "p01", "cases": None}, {"personId": "p02", "cases": None}]}
    }
    assert [error["path"] for error in response.errors] == [
        ["clinic", "people", 0, "cases"],
        ["clinic", "people", 1, "cases"],
    ]
    assert {error["extensions"]["code"] for error in response.errors} == {"SOURCE_UNAVAILABLE"}
