"""The person federation (tests/fixtures/person_catalog.yaml) loaded into SQLite, PostgreSQL and MariaDB.

Import the fixtures into a test module to use them: ``from tests.person_federation import *``-style
explicit imports (pytest finds fixtures in the module's namespace).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncmy
import asyncpg
import pytest

from demo.load import load_mysql, load_postgres, write_sqlite
from schema.catalog import Catalog, load_catalog
from tests.conftest import FIXTURES, MARIADB, PG, _mariadb_admin, _postgres_admin, write_catalog
from tests.fixtures.person_data import ROWS

PERSON_CATALOG = FIXTURES / "person_catalog.yaml"


def person_catalog(directory: Path, source: dict[str, object] | None = None) -> Catalog:
    """The person catalog with every department on ``source`` (default: one SQLite file each, in ``directory``)."""
    template = load_catalog(PERSON_CATALOG, resolve_secrets=False)
    sources = {
        department.name: source or {"kind": "sqlite", "path": str(directory / f"{department.name}.db")}
        for department in template.departments
    }
    return load_catalog(write_catalog(PERSON_CATALOG, directory, sources))


@pytest.fixture(scope="session")
def sqlite_people(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("sqlite-people")
    catalog = person_catalog(directory)
    for department in catalog.departments:
        write_sqlite(directory / f"{department.name}.db", catalog, department, ROWS)
    return catalog


@pytest.fixture(scope="session")
async def postgres_people(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalog]:
    name = f"fedgate_people_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await _postgres_admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        catalog = person_catalog(tmp_path_factory.mktemp("pg-people"), {"kind": "postgres", **PG, "database": name})
        connection = await asyncpg.connect(database=name, **PG)
        try:
            for department in catalog.departments:
                await load_postgres(connection, catalog, department, ROWS)
        finally:
            await connection.close()
        yield catalog
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def mariadb_people(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalog]:
    name = f"fedgate_people_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await _mariadb_admin()
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    try:
        source = {"kind": "mariadb", **MARIADB, "database": name}
        catalog = person_catalog(tmp_path_factory.mktemp("maria-people"), source)
        connection = await asyncmy.connect(password="", database=name, **MARIADB)
        try:
            for department in catalog.departments:
                await load_mysql(connection, catalog, department, ROWS)
        finally:
            connection.close()
        yield catalog
    finally:
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def people_catalogs(sqlite_people: Catalog, postgres_people: Catalog, mariadb_people: Catalog) -> dict[str, Catalog]:
    return {"sqlite": sqlite_people, "postgres": postgres_people, "mariadb": mariadb_people}
