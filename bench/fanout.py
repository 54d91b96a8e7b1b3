"""Fan-out: one request over three departments that each take 50 ms answers in about the time of the
slowest, not of their sum (target: under 1.3x the slowest single department).

The three are different kinds of source, each slowed at the source itself: a PostgreSQL view that calls
``pg_sleep(0.05)``, a MariaDB view that calls ``SLEEP(0.05)`` and a REST API (:mod:`bench.slow_api`, its
own process on loopback) that waits 50 ms before answering. Each department is first asked alone, then
all three in one GraphQL request; medians of ``--repeat`` runs, interleaved.

    python -m bench.fanout [--repeat 30] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import asyncmy
import asyncpg
import yaml

from bench.support import Timing, ask, free_port, running, started, timed
from schema.catalog import Catalog, load_catalog

DATABASE = "fedgate_bench_fanout"
DEPARTMENTS = ("postgres_department", "mariadb_department", "rest_department")
TABLE: dict[str, object] = {
    "name": "items",
    "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": False}, {"name": "label", "type": "string"}],
}


@contextlib.contextmanager
def _rest_api(delay: float) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.slow_api:app", "--port", str(port), "--log-level", "warning"]
    with running(command, port, env={"FEDGATE_BENCH_DELAY": str(delay)}, timeout=20):
        yield f"http://127.0.0.1:{port}"


async def _load_postgres(delay: float) -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database=DATABASE)
    try:
        await connection.execute("CREATE TABLE items_base (id bigint PRIMARY KEY, label text)")
        await connection.execute("INSERT INTO items_base SELECT n, 'item ' || n FROM generate_series(1, 100) AS n")
        await connection.execute(
            f"CREATE VIEW items AS SELECT i.id, i.label FROM items_base AS i, pg_sleep({float(delay)})"  # noqa: S608 - DDL takes no parameters; a float
        )
    finally:
        await connection.close()


async def _load_mariadb(delay: float) -> None:
    connection = await asyncmy.connect(host="127.0.0.1", user="root", password="")
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            await cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
            await cursor.execute(f"USE {DATABASE}")
            await cursor.execute("CREATE TABLE items_base (id bigint PRIMARY KEY, label varchar(40))")
            await cursor.execute("INSERT INTO items_base SELECT seq, CONCAT('item ', seq) FROM seq_1_to_100")
            sleep = f"(SELECT SLEEP({float(delay)}) AS s) AS t"  # DDL takes no parameters; the value is a float
            await cursor.execute("CREATE VIEW items AS SELECT i.id, i.label FROM items_base AS i, " + sleep)  # noqa: S608
        await connection.commit()
    finally:
        connection.close()


async def _drop_databases() -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()
    connection = await asyncmy.connect(host="127.0.0.1", user="root", password="")
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    finally:
        connection.close()


def _catalog(directory: Path, rest_url: str) -> Catalog:
    server = {"host": "127.0.0.1", "database": DATABASE, "timeout_seconds": 5}
    sources = {
        "postgres_department": {"kind": "postgres", "port": 5432, "user": "postgres", "ssl": "disable", **server},
        "mariadb_department": {"kind": "mariadb", "port": 3306, "user": "root", **server},
        "rest_department": {"kind": "rest", "base_url": rest_url, "timeout_seconds": 5},
    }
    departments = []
    for name in DEPARTMENTS:
        table: dict[str, object] = dict(TABLE)
        if name == "rest_department":
            table["rest"] = {"path": "/items", "rows": "data"}
        departments.append({"name": name, "title": name.replace("_", " "), "source": sources[name], "tables": [table]})
    path = directory / "fanout.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "departments": departments}, sort_keys=False), encoding="utf-8")
    return load_catalog(path)


def _query(names: Sequence[str]) -> str:
    fields = " ".join(f"{_camel(name)} {{ items(limit: 20) {{ id label }} }}" for name in names)
    return f"{{ {fields} }}"


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


@contextlib.asynccontextmanager
async def _federation(delay: float) -> AsyncIterator[Catalog]:
    await _load_postgres(delay)
    await _load_mariadb(delay)
    try:
        with _rest_api(delay) as url, tempfile.TemporaryDirectory(prefix="fedgate-bench-") as directory:
            yield _catalog(Path(directory), url)
    finally:
        await _drop_databases()


async def main(argv: Sequence[str] | None = None) -> None:
    logging.getLogger("asyncmy").setLevel(logging.ERROR)  # MariaDB's notes on DROP ... IF EXISTS
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each query")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each department takes")
    args = parser.parse_args(argv)
    async with _federation(args.delay) as catalog:
        gateway = await started(catalog)
        try:
            singles: dict[str, list[float]] = {name: [] for name in DEPARTMENTS}
            together: list[float] = []
            for _ in range(3):  # warm-up: pools, prepared statements, plans
                for name in DEPARTMENTS:
                    await ask(gateway, _query([name]))
                await ask(gateway, _query(DEPARTMENTS))
            for _ in range(args.repeat):  # interleaved, so drift on the machine touches every figure alike
                for name in DEPARTMENTS:
                    alone = await timed(functools.partial(ask, gateway, _query([name])), repeat=1, warmup=0)
                    singles[name].extend(alone.samples)
                both = await timed(functools.partial(ask, gateway, _query(DEPARTMENTS)), repeat=1, warmup=0)
                together.extend(both.samples)
        finally:
            await gateway.stop()
    print(f"Fan-out over three departments, each {args.delay * 1000:.0f} ms at the source (n={args.repeat})")
    for name in DEPARTMENTS:
        print(f"  {name:22} alone      {Timing(tuple(singles[name]))}")
    slowest = max(Timing(tuple(samples)).median for samples in singles.values())
    all_three = Timing(tuple(together))
    print(f"  {'all three':22} together   {all_three}")
    ratio = all_three.median / slowest
    verdict = "meets" if ratio < 1.3 else "MISSES"
    total = sum(Timing(tuple(samples)).median for samples in singles.values())
    print(f"  together / slowest alone: {ratio:.2f}x ({verdict} the target of < 1.3x)")
    print(f"  (the three one after another: ~{total * 1000:.0f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
