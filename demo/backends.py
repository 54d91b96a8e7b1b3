"""``fedgate demo --backends postgres,mariadb``: the same demo across SQLite, PostgreSQL, MariaDB and REST.

The demo's departments are generated as SQLite files. With ``--backends``, the health department is
copied from its file into PostgreSQL and the DWP department into MariaDB (the servers of this machine,
as the tests use them), each in its own database (``fedgate_demo_health``, ``fedgate_demo_dwp``), and a
catalog variant pointing those departments at the servers is written beside the data
(``demo/data/catalog.postgres-mariadb.yaml``). Every start reloads the tables from the files (drop,
create, copy: the same result however often it runs), so the servers always hold exactly what the
SQLite demo serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import yaml
from sqlglot import exp

from adapters.values import decoder
from schema.catalog import Catalog, Department
from schema.configfile import load_yaml
from schema.sources import SqliteSource

from .load import load_mysql, load_postgres


@dataclass(frozen=True)
class Server:
    """A database server of this machine that a demo department can move to."""

    backend: str
    title: str
    kind: str
    host: str
    port: int
    user: str
    department: str
    start_command: str


SERVERS: tuple[Server, ...] = (
    Server(
        "postgres", "PostgreSQL", "postgres", "127.0.0.1", 5432, "postgres", "health",
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    Server(
        "mariadb", "MariaDB", "mariadb", "127.0.0.1", 3306, "root", "dwp",
        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    ),
)  # fmt: skip
DATABASE_PREFIX = "fedgate_demo_"


class BackendError(Exception):
    """A backend cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Placement:
    """One department moved to a server, in the database ``database``."""

    server: Server
    database: str

    @property
    def department(self) -> str:
        return self.server.department

    def source(self) -> dict[str, Any]:
        """The department's ``source`` in the catalog variant (trust / empty password: no secret)."""
        server = self.server
        return {"kind": server.kind, "host": server.host, "port": server.port, "user": server.user,
                "database": self.database, "ssl": "disable", "timeout_seconds": 5}  # fmt: skip


def parse_backends(text: str) -> tuple[Server, ...]:
    """``"postgres,mariadb"`` → those servers, in a fixed order; ``sqlite`` (the default) may be named too."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    known = {server.backend: server for server in SERVERS}
    unknown = [name for name in names if name not in known and name != "sqlite"]
    if unknown:
        choices = ", ".join(["sqlite", *known])
        raise BackendError(f"unknown backend '{unknown[0]}' in --backends: choose from {choices}")
    return tuple(server for server in SERVERS if server.backend in names)


def placements(servers: Iterable[Server], prefix: str = DATABASE_PREFIX) -> tuple[Placement, ...]:
    return tuple(Placement(server, f"{prefix}{server.department}") for server in servers)


def variant_name(servers: Sequence[Server]) -> str:
    return "-".join(server.backend for server in servers) or "sqlite"


def read_sqlite_rows(catalog: Catalog, department: Department) -> dict[str, list[dict[str, Any]]]:
    """The department's rows as canonical Python values, read from its SQLite file."""
    source = department.source
    if not isinstance(source, SqliteSource):
        raise BackendError(f"department {department.name} is not an SQLite department")
    rows: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(f"{source.file.as_uri()}?mode=ro", uri=True) as connection:
        for table in department.tables:
            decoders = [decoder(column.type) for column in table.columns]
            names = ", ".join(exp.to_identifier(column.name, quoted=True).sql("sqlite") for column in table.columns)
            name = exp.to_identifier(table.name, quoted=True).sql("sqlite")
            rows[f"{department.name}.{table.name}"] = [
                {column.name: decode(value) for column, decode, value in zip(table.columns, decoders, row, strict=True)}
                for row in connection.execute(f"SELECT {names} FROM {name}")  # noqa: S608 - catalog names only
            ]
    return rows


def _unreachable(server: Server, error: BaseException) -> BackendError:
    return BackendError(
        f"{server.title} is not answering on {server.host}:{server.port} ({error}); "
        f"start it with: {server.start_command}"
    )


async def _load_postgres(placement: Placement, catalog: Catalog, rows: Mapping[str, Any]) -> None:
    server = placement.server
    connect = {"host": server.host, "port": server.port, "user": server.user, "timeout": 5}
    try:
        admin = await asyncpg.connect(database="postgres", **connect)
    except (OSError, asyncpg.PostgresError) as error:
        raise _unreachable(server, error) from None
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", placement.database)
        if not exists:
            await admin.execute(f"CREATE DATABASE {exp.to_identifier(placement.database, quoted=True).sql('postgres')}")
    finally:
        await admin.close()
    connection = await asyncpg.connect(database=placement.database, **connect)
    try:
        async with connection.transaction():
            await load_postgres(connection, catalog, catalog.department(placement.department), rows)
    finally:
        await connection.close()


@contextlib.contextmanager
def _quiet_mariadb_notes() -> Iterator[None]:
    """asyncmy logs MariaDB's notes ("Unknown table" from DROP TABLE IF EXISTS...) as warnings: not news here."""
    logger = logging.getLogger("asyncmy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _load_mariadb(placement: Placement, catalog: Catalog, rows: Mapping[str, Any]) -> None:
    server = placement.server
    connect = {"host": server.host, "port": server.port, "user": server.user, "password": "", "connect_timeout": 5}
    try:
        connection = await asyncmy.connect(**connect)
    except (OSError, asyncmy.errors.MySQLError) as error:
        raise _unreachable(server, error) from None
    database = exp.to_identifier(placement.database, quoted=True).sql("mysql")
    try:
        with _quiet_mariadb_notes():
            async with connection.cursor() as cursor:
                await cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                )
                await cursor.execute(f"USE {database}")
            await load_mysql(connection, catalog, catalog.department(placement.department), rows)
    finally:
        connection.close()


async def load_placement(placement: Placement, catalog: Catalog, rows: Mapping[str, Any]) -> None:
    """(Re)create the placed department's database and tables on its server and copy ``rows`` in."""
    if placement.server.kind == "postgres":
        await _load_postgres(placement, catalog, rows)
    else:
        await _load_mariadb(placement, catalog, rows)


async def load_backends(catalog: Catalog, chosen: Sequence[Placement]) -> None:
    """(Re)load each placed department from its SQLite file into its server; idempotent."""
    for placement in chosen:
        await load_placement(placement, catalog, read_sqlite_rows(catalog, catalog.department(placement.department)))


async def drop_databases(chosen: Sequence[Placement]) -> None:
    """Drop the placements' databases (tests clean up with this)."""
    for placement in chosen:
        server = placement.server
        if server.kind == "postgres":
            admin = await asyncpg.connect(host=server.host, port=server.port, user=server.user, database="postgres")
            try:
                name = exp.to_identifier(placement.database, quoted=True).sql("postgres")
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()
        else:
            connection = await asyncmy.connect(host=server.host, port=server.port, user=server.user, password="")
            name = exp.to_identifier(placement.database, quoted=True).sql("mysql")
            try:
                async with connection.cursor() as cursor:
                    await cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            finally:
                connection.close()


def write_catalog_variant(
    template: Path, target: Path, chosen: Sequence[Placement], *, housing_url: str | None = None
) -> Path:
    """Write ``template`` with the placed departments' sources replaced (and the housing API's URL, if
    given) to ``target``; SQLite paths are rewritten to stay correct from ``target``'s folder."""
    data = load_yaml(template).data
    sources = {placement.department: placement.source() for placement in chosen}
    for department in data["departments"]:
        source = department["source"]
        if department["name"] in sources:
            department["source"] = sources[department["name"]]
        elif source["kind"] == "sqlite" and not Path(source["path"]).is_absolute():
            source["path"] = os.path.relpath(template.parent / source["path"], target.parent)
        elif source["kind"] == "rest" and housing_url is not None and department["name"] == "housing":
            source["base_url"] = housing_url
    backends = ",".join(placement.server.backend for placement in chosen) or "sqlite"
    header = f"# Generated by `fedgate demo --backends {backends}` from {template.name}; rewritten on every start.\n"
    for placement in chosen:
        header += f"# {placement.department}: {placement.server.title}, database {placement.database}\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    os.replace(partial, target)
    return target
