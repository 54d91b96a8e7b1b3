"""The person federation (tests/fixtures/person_catalog.yaml) loaded into SQLite, PostgreSQL and MariaDB.

Import the fixtures into a test module to use them: ``from tests.support.person_federation import *``-style
explicit imports (pytest finds fixtures in the module's namespace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from demo.load import write_sqlite
from schema.catalog import Catalog, load_catalog
from tests.conftest import (
    FIXTURES,
    MARIADB,
    PG,
    fill_mariadb,
    fill_postgres,
    scratch_mariadb,
    scratch_postgres,
    write_catalog,
)
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
    async with scratch_postgres("fedgate_people") as name:
        catalog = person_catalog(tmp_path_factory.mktemp("pg-people"), {"kind": "postgres", **PG, "database": name})
        await fill_postgres(name, catalog, ROWS)
        yield catalog


@pytest.fixture(scope="session")
async def mariadb_people(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalog]:
    async with scratch_mariadb("fedgate_people") as name:
        source = {"kind": "mariadb", **MARIADB, "database": name}
        catalog = person_catalog(tmp_path_factory.mktemp("maria-people"), source)
        await fill_mariadb(name, catalog, ROWS)
        yield catalog


@pytest.fixture(scope="session")
def people_catalogs(sqlite_people: Catalog, postgres_people: Catalog, mariadb_people: Catalog) -> dict[str, Catalog]:
    return {"sqlite": sqlite_people, "postgres": postgres_people, "mariadb": mariadb_people}
