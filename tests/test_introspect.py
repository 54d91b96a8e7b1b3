"""`fedgate introspect`: a live database → a catalog skeleton that loads and validates."""

from __future__ import annotations

from pathlib import Path

import asyncmy
import asyncpg
import pytest
import yaml
from typer.testing import CliRunner

from gateway.catalog_skeleton import catalog_skeleton, relationship_name, source_from_url
from gateway.cli import app
from gateway.errors import BadRequestError
from schema.catalog import Catalog, load_catalog
from schema.types import ColumnType
from tests.conftest import MARIADB, PG, scratch_mariadb, scratch_postgres


def _check(skeleton: dict[str, object], tmp_path: Path) -> Catalog:
    path = tmp_path / "skeleton.yaml"
    path.write_text(yaml.safe_dump(skeleton, sort_keys=False))
    catalog = load_catalog(path)
    department = catalog.departments[0]
    people = department.table("people")
    assert people.primary_key == ["person_id"]
    types = {column.name: column.type for column in people.columns}
    assert types["born"] is ColumnType.DATE
    assert types["updated_at"] is ColumnType.DATETIME
    assert types["balance"] is ColumnType.DECIMAL
    assert types["visit_count"] is ColumnType.INTEGER
    assert types["score"] is ColumnType.FLOAT
    assert types["active"] is ColumnType.BOOLEAN
    assert {column.name: column.nullable for column in people.columns}["given_name"] is False
    return catalog


async def test_sqlite(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    database = sqlite_clinic.department("clinic").source.file  # type: ignore[union-attr]
    skeleton = await catalog_skeleton(f"sqlite:///{database}", "clinic")
    catalog = _check(skeleton, tmp_path)
    assert sorted(catalog.departments[0].tables_by_name) == ["people", "visits"]


async def test_postgres(postgres_clinic: Catalog, postgres_database: str, tmp_path: Path) -> None:
    skeleton = await catalog_skeleton(
        f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_database}", "clinic"
    )
    catalog = _check(skeleton, tmp_path)
    assert {"people", "visits", "cases"} <= set(catalog.departments[0].tables_by_name)


async def test_mariadb(mariadb_clinic: Catalog, mariadb_database: str, tmp_path: Path) -> None:
    url = f"mariadb://{MARIADB['user']}@{MARIADB['host']}:{MARIADB['port']}/{mariadb_database}"
    catalog = _check(await catalog_skeleton(url, "clinic"), tmp_path)
    assert {"people", "visits", "cases"} <= set(catalog.departments[0].tables_by_name)


def test_foreign_keys_become_relationships_both_ways(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "fk.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        connection.execute(
            "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id), photo BLOB)"
        )
    result = CliRunner().invoke(
        app, ["introspect", f"sqlite:///{database}", "--department", "vets", "-o", str(tmp_path / "c.yaml")]
    )
    assert result.exit_code == 0, result.output
    catalog = load_catalog(tmp_path / "c.yaml")
    pets = catalog.department("vets").table("pets")
    assert [column.name for column in pets.columns] == ["id", "owner_id"]  # the BLOB is left out
    assert [(r.name, r.target, r.on, r.kind) for r in pets.relationships] == [
        ("owner", "vets.owners", {"owner_id": "id"}, "one")
    ]
    owners = catalog.department("vets").table("owners")
    assert [(r.name, r.on, r.kind) for r in owners.relationships] == [("pets", {"id": "owner_id"}, "many")]


@pytest.mark.parametrize(
    ("column", "target", "taken", "expected"),
    [
        ("owner_id", "owners", set(), "owner"),  # the key column names what it points at
        ("nhs_number", "patients", set(), "patient"),  # else the target table in the singular
        ("registered_gp", "people", set(), "person"),
        ("parent_id", "hospital_spells", set(), "parent"),
        ("cared_for_by", "people", {"person"}, "cared_for_by_person"),  # never a name already taken
        ("owner_id", "owners", {"owner"}, "owner_id_owner"),
    ],
)
def test_many_to_one_relationships_are_named_for_one_thing(
    column: str, target: str, taken: set[str], expected: str
) -> None:
    assert relationship_name(column, target, set(taken)) == expected


def test_passwords_are_never_taken_from_urls() -> None:
    with pytest.raises(BadRequestError, match="--password-env"):
        source_from_url("postgresql://app:secret@db.internal/health", None)
    assert source_from_url("mysql://app@db.internal:3307/dwp", "DWP_PASSWORD") == {
        "kind": "mysql",
        "host": "db.internal",
        "database": "dwp",
        "user": "app",
        "port": 3307,
        "password_env": "DWP_PASSWORD",
    }


OWNERS_AND_PETS = [
    "CREATE TABLE owners (id INTEGER PRIMARY KEY, name VARCHAR(80) NOT NULL)",
    "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id), name VARCHAR(80))",
]


async def test_postgres_column_comments_become_descriptions(tmp_path: Path) -> None:
    async with scratch_postgres() as database:
        connection = await asyncpg.connect(database=database, **PG)
        try:
            for statement in OWNERS_AND_PETS:
                await connection.execute(statement)
            await connection.execute("COMMENT ON COLUMN pets.name IS 'What the owner calls it'")
            await connection.execute("COMMENT ON TABLE pets IS 'Animals on the register'")
        finally:
            await connection.close()
        skeleton = await catalog_skeleton(f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}", "vets")
    _assert_owners_and_pets(skeleton, tmp_path)


async def test_mariadb_column_comments_become_descriptions(tmp_path: Path) -> None:
    async with scratch_mariadb() as database:
        connection = await asyncmy.connect(db=database, **MARIADB)
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(OWNERS_AND_PETS[0])
                await cursor.execute(
                    "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER, name VARCHAR(80) "
                    "COMMENT 'What the owner calls it', FOREIGN KEY (owner_id) REFERENCES owners(id)) "
                    "COMMENT 'Animals on the register'"
                )
        finally:
            connection.close()
        url = f"mariadb://{MARIADB['user']}@{MARIADB['host']}:{MARIADB['port']}/{database}"
        skeleton = await catalog_skeleton(url, "vets")
    _assert_owners_and_pets(skeleton, tmp_path)


def _assert_owners_and_pets(skeleton: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "vets.yaml"
    path.write_text(yaml.safe_dump(skeleton, sort_keys=False))
    pets = load_catalog(path).department("vets").table("pets")
    assert {column.name: column.description for column in pets.columns} == {
        "id": "",
        "owner_id": "",
        "name": "What the owner calls it",
    }
    assert pets.description == "Animals on the register"
    assert [(r.name, r.kind) for r in pets.relationships] == [("owner", "one")]
