"""Loading rows (canonical Python values) into a department's database: SQLite, PostgreSQL or MariaDB.

The demo uses it to build its departments and the tests to load one fixture into all three engines.
Tables are created from the catalog (:mod:`schema.ddl`) and values are encoded by the same per-dialect
encoders the adapters use for parameters, so what is stored is what fedgate expects to read.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
from sqlglot import exp

from adapters.base import ParameterSpec
from adapters.sql_render import MySQLDialect, SQLiteDialect
from schema.catalog import Catalog, Department, Table
from schema.ddl import create_indexes, create_table

Rows = Mapping[str, Sequence[Mapping[str, Any]]]


def _column_list(table: Table, dialect: str) -> str:
    columns = ", ".join(exp.to_identifier(c.name, quoted=True).sql(dialect) for c in table.columns)
    return f"{exp.to_identifier(table.name, quoted=True).sql(dialect)} ({columns})"


def _values(table: Table, row: Mapping[str, Any], encode: Any) -> tuple[Any, ...]:
    return tuple(encode(row[column.name], ParameterSpec(column.type)) for column in table.columns)


def write_sqlite(path: Path, catalog: Catalog, department: Department, rows: Rows, *, in_place: bool = False) -> None:
    """Create ``path`` holding ``department``'s tables and rows: written to a temporary file, then renamed,
    or (``in_place``) by replacing the tables of the existing file, which open connections then see."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if in_place else path.with_suffix(path.suffix + ".partial")
    if not in_place:
        target.unlink(missing_ok=True)
    encode = SQLiteDialect().encode
    connection = sqlite3.connect(target)
    try:
        with connection:
            for table in department.tables:
                connection.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table.name, quoted=True).sql('sqlite')}")
                connection.execute(create_table(table, "sqlite"))
                for statement in create_indexes(catalog, department, table, "sqlite"):
                    connection.execute(statement)
                placeholders = ", ".join("?" for _ in table.columns)
                connection.executemany(
                    f"INSERT INTO {_column_list(table, 'sqlite')} VALUES ({placeholders})",  # noqa: S608 - identifiers only
                    [_values(table, row, encode) for row in rows.get(f"{department.name}.{table.name}", ())],
                )
    finally:
        connection.close()
    if not in_place:
        os.replace(target, path)


async def load_postgres(connection: asyncpg.Connection, catalog: Catalog, department: Department, rows: Rows) -> None:
    """(Re)create ``department``'s tables in the connected PostgreSQL database and copy the rows in."""
    for table in department.tables:
        await connection.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table.name, quoted=True).sql('postgres')}")
        await connection.execute(create_table(table, "postgres"))
        for statement in create_indexes(catalog, department, table, "postgres"):
            await connection.execute(statement)
        records = [
            tuple(row[column.name] for column in table.columns)
            for row in rows.get(f"{department.name}.{table.name}", ())
        ]
        await connection.copy_records_to_table(
            table.name, records=records, columns=[column.name for column in table.columns]
        )
    await connection.execute("ANALYZE")


async def load_mysql(connection: asyncmy.Connection, catalog: Catalog, department: Department, rows: Rows) -> None:
    """(Re)create ``department``'s tables in the connected MariaDB/MySQL database and insert the rows."""
    encode = MySQLDialect().encode
    async with connection.cursor() as cursor:
        for table in department.tables:
            await cursor.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table.name, quoted=True).sql('mysql')}")
            await cursor.execute(create_table(table, "mysql") + " DEFAULT CHARSET=utf8mb4")
            for statement in create_indexes(catalog, department, table, "mysql"):
                await cursor.execute(statement)
            values = [_values(table, row, encode) for row in rows.get(f"{department.name}.{table.name}", ())]
            if values:
                placeholders = ", ".join("%s" for _ in table.columns)
                await cursor.executemany(
                    f"INSERT INTO {_column_list(table, 'mysql')} VALUES ({placeholders})",  # noqa: S608 - identifiers only
                    values,
                )
    await connection.commit()
