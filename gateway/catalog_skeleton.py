"""``fedgate introspect``: a catalog skeleton from a live database, for a person to edit.

Foreign keys become relationships both ways: ``one`` from the referencing table, named for what it
points at (``pets.owner_id`` → ``owner``; else the target table in the singular), and ``many`` back, named
after the referencing table (``owners.pets``).
Columns of types fedgate cannot carry are left out and reported; tables without a primary key get
their first column as a placeholder key and a description saying so. Descriptions come from the
database's comments where it has them. Passwords are never written: the skeleton names the
environment variable to read instead.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import unquote, urlsplit

import inflect

from adapters.base import TableDescription
from adapters.mysql import MySQLAdapter
from adapters.registry import create_adapter
from gateway.errors import BadRequestError, SourceUnavailableError
from schema.catalog import Department
from schema.configfile import ConfigDocument, validate
from schema.sources import MySQLSource, PostgresSource, SqliteSource


def source_from_url(url: str, password_env: str | None) -> dict[str, Any]:
    """Source settings (as catalog data) for ``url``; a password in the URL is refused."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path if not parts.netloc else parts.netloc + parts.path)
        return {"kind": "sqlite", "path": path}
    kinds = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mariadb"}
    if scheme not in kinds:
        raise BadRequestError(f"unsupported URL scheme '{scheme}': use sqlite, postgresql, mysql or mariadb")
    if parts.password:
        raise BadRequestError("do not put a password in the URL; name its environment variable with --password-env")
    source: dict[str, Any] = {
        "kind": kinds[scheme],
        "host": parts.hostname or "127.0.0.1",
        "database": parts.path.lstrip("/"),
        "user": unquote(parts.username or ""),
    }
    if parts.port:
        source["port"] = parts.port
    if password_env:
        source["password_env"] = password_env
    return source


async def catalog_skeleton(url: str, department_name: str, password_env: str | None = None) -> dict[str, Any]:
    """Connect to ``url``, read its tables and return a catalog document (plain data, ready for YAML)."""
    source_data = source_from_url(url, password_env)
    model: dict[str, type[SqliteSource | PostgresSource | MySQLSource]] = {
        "sqlite": SqliteSource,
        "postgres": PostgresSource,
        "mysql": MySQLSource,
        "mariadb": MySQLSource,
    }
    tables: list[TableDescription] = []
    for attempt in range(2):
        source = validate(model[source_data["kind"]], ConfigDocument("the database URL", source_data))
        department = Department.model_construct(name=department_name, title=department_name, source=source, tables=[])
        adapter = create_adapter(department)
        try:
            await adapter.open()
            tables = list(await adapter.introspect())
            break
        except SourceUnavailableError:
            # A mysql:// URL naming a MariaDB server (or the reverse): the catalog must say which it is.
            actual = adapter.server_kind if isinstance(adapter, MySQLAdapter) else None
            if attempt or actual is None or actual == source_data["kind"]:
                raise
            source_data["kind"] = actual
        finally:
            await adapter.close()
    return {
        "version": 1,
        "identifiers": [],
        "departments": [
            {
                "name": department_name,
                "title": f"{department_name} (edit: the body's name)",
                "description": "",
                "source": source_data,
                "tables": [_table(table, tables, department_name) for table in tables],
            }
        ],
    }


_INFLECT = inflect.engine()


def singular(name: str) -> str:
    """``owners`` → ``owner``, ``people`` → ``person``, ``hospital_spells`` → ``hospital_spell``."""
    head, _, last = name.rpartition("_")
    found = _INFLECT.singular_noun(last)
    return f"{head}_{found}" if head and found else (found or name)


def relationship_name(column: str, target: str, taken: set[str]) -> str:
    """The name of a many-to-one relationship: the key column without ``_id``, else the target in the
    singular, else the two joined; never a name the table already uses."""
    stem = column.removesuffix("_id")
    for name in (stem if stem != column else "", singular(target), f"{column}_{singular(target)}"):
        if name and name not in taken:
            return name
    return f"{column}_{target}"


def _table(table: TableDescription, tables: list[TableDescription] | Any, department: str) -> dict[str, Any]:
    columns = []
    for column in table.columns:
        if column.type is None:
            print(f"skipped {table.name}.{column.name}: unsupported type {column.native_type}", file=sys.stderr)
            continue
        columns.append(
            {
                "name": column.name,
                "type": column.type.value,
                "nullable": column.nullable,
                "description": column.comment,
            }
        )
    description = table.comment
    primary_key = list(table.primary_key)
    if not primary_key and columns:
        primary_key = [str(columns[0]["name"])]
        description = (description + " " if description else "") + "NO PRIMARY KEY FOUND: choose one."
    taken = {str(column["name"]) for column in columns}
    relationships = []
    for foreign_key in table.foreign_keys:
        if len(foreign_key.columns) == 1:
            name = relationship_name(foreign_key.columns[0], foreign_key.target_table, taken)
            taken.add(name)
            relationships.append(
                {
                    "name": name,
                    "target": f"{department}.{foreign_key.target_table}",
                    "on": dict(zip(foreign_key.columns, foreign_key.target_columns, strict=True)),
                    "kind": "one",
                }
            )
    for other in tables:
        for foreign_key in other.foreign_keys:
            if foreign_key.target_table == table.name and len(foreign_key.columns) == 1:
                name = other.name if other.name != table.name else f"{other.name}_children"
                if name in taken:  # a second key from the same table, or a column of that name
                    name = f"{name}_by_{foreign_key.columns[0]}"
                taken.add(name)
                relationships.append(
                    {
                        "name": name,
                        "target": f"{department}.{other.name}",
                        "on": dict(zip(foreign_key.target_columns, foreign_key.columns, strict=True)),
                        "kind": "many",
                    }
                )
    entry: dict[str, Any] = {"name": table.name, "description": description, "primary_key": primary_key}
    entry["columns"] = columns
    if relationships:
        entry["relationships"] = relationships
    return entry
