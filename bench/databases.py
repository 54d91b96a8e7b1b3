"""The demo federation on one engine, for benchmarks: every database department of ``demo/catalog.yaml``
on SQLite files, or each in its own database on this machine's PostgreSQL or MariaDB server; plus direct
connections to the same databases for the hand-written reference side."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import asyncmy
import asyncpg
import yaml

from demo.backends import SERVERS, Placement, drop_databases, load_placement
from demo.housing_api import TOKEN_ENV
from demo.load import write_sqlite
from demo.run import DEMO_DIR
from schema.catalog import Catalog, load_catalog
from schema.configfile import load_yaml

Rows = dict[str, list[dict[str, Any]]]
Fetch = Callable[[str, str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]
"""``fetch(department, sql, keys)``: rows of ``sql`` on ``department``, where ``{keys}`` in ``sql`` stands for
the driver's way of writing ``IN`` a list of ``keys``."""

ENGINES = ("sqlite", "postgres", "mariadb")
DATABASE_PREFIX = "fedgate_bench_"


@dataclass(frozen=True)
class Federation:
    """The demo catalog on one engine, and a ``fetch`` that queries the same databases directly."""

    engine: str
    catalog: Catalog
    fetch: Fetch
    threshold: float


def _in_list(engine: str, count: int) -> str:
    if engine == "postgres":
        return "= ANY($1::text[])"
    marker = "?" if engine == "sqlite" else "%s"
    return f"IN ({', '.join(marker for _ in range(count))})" if count else "IN (NULL)"


def _write_catalog(directory: Path, source_of: Callable[[str], dict[str, Any]]) -> tuple[Catalog, list[str]]:
    """The demo catalog with each database department's source replaced by ``source_of(name)``; returns
    it and the names of those departments."""
    data = load_yaml(DEMO_DIR / "catalog.yaml").data
    names = [department["name"] for department in data["departments"] if department["source"]["kind"] == "sqlite"]
    for department in data["departments"]:
        if department["name"] in names:
            department["source"] = source_of(department["name"])
    path = directory / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # The housing REST department is in the catalog (the Person entity names it) but never asked here.
    os.environ.setdefault(TOKEN_ENV, "unused-by-the-benchmarks-" + "x" * 16)
    return load_catalog(path), names


@contextlib.asynccontextmanager
async def _sqlite(rows: Rows, directory: Path) -> AsyncIterator[Federation]:
    catalog, names = _write_catalog(directory, lambda name: {"kind": "sqlite", "path": str(directory / f"{name}.db")})
    connections: dict[str, aiosqlite.Connection] = {}
    for name in names:
        write_sqlite(directory / f"{name}.db", catalog, catalog.department(name), rows)
        connections[name] = await aiosqlite.connect(f"{(directory / f'{name}.db').as_uri()}?mode=ro", uri=True)

    async def fetch(department: str, sql: str, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with connections[department].execute(sql.format(keys=_in_list("sqlite", len(keys))), keys) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    try:
        yield Federation("sqlite", catalog, fetch, _threshold(catalog))
    finally:
        for connection in connections.values():
            await connection.close()


@contextlib.asynccontextmanager
async def _server(engine: str, rows: Rows, directory: Path) -> AsyncIterator[Federation]:
    server = next(server for server in SERVERS if server.backend == engine)

    def placed(name: str) -> Placement:
        return Placement(dataclasses.replace(server, department=name), f"{DATABASE_PREFIX}{name}")

    catalog, names = _write_catalog(directory, lambda name: placed(name).source())
    chosen = [placed(name) for name in names]
    pools: dict[str, Any] = {}
    try:
        for placement in chosen:
            await load_placement(placement, catalog, rows)
            connect: dict[str, Any] = {
                "host": server.host,
                "port": server.port,
                "user": server.user,
                "database": placement.database,
            }
            if engine == "postgres":
                # The same session setting as fedgate's adapter, so the reference is never the slower for lack of it.
                settings = {"plan_cache_mode": "force_custom_plan"}
                pools[placement.department] = await asyncpg.create_pool(
                    min_size=1, max_size=4, server_settings=settings, **connect
                )
            else:
                pools[placement.department] = await asyncmy.create_pool(minsize=1, maxsize=4, password="", **connect)
        yield Federation(engine, catalog, _pool_fetch(engine, pools), _threshold(catalog))
    finally:
        for pool in pools.values():
            if engine == "postgres":
                await pool.close()
            else:
                pool.close()
                await pool.wait_closed()
        await drop_databases(chosen)


def _pool_fetch(engine: str, pools: dict[str, Any]) -> Fetch:
    async def fetch(department: str, sql: str, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        text = sql.format(keys=_in_list(engine, len(keys)))
        if engine == "postgres":
            async with pools[department].acquire() as connection:
                arguments = [list(keys)] if "{keys}" in sql else []
                records = await connection.fetch(text, *arguments)
                return [tuple(record) for record in records]
        async with pools[department].acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(text, tuple(keys))
            return list(await cursor.fetchall())

    return fetch


def _threshold(catalog: Catalog) -> float:
    return catalog.entities[0].link.threshold


@contextlib.asynccontextmanager
async def federation(engine: str, rows: Rows, directory: Path) -> AsyncIterator[Federation]:
    """The demo federation with ``rows`` on ``engine`` (``sqlite``, ``postgres`` or ``mariadb``); server
    databases are dropped on exit."""
    if engine not in ENGINES:
        raise SystemExit(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
    place = directory / engine
    place.mkdir(parents=True, exist_ok=True)
    if engine == "sqlite":
        async with _sqlite(rows, place) as setup:
            yield setup
    else:
        async with _server(engine, rows, place) as setup:
            yield setup
