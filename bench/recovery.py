"""Recovery and readiness: how soon after a department comes back do callers get answers again, and how long
does ``/readyz``'s work take while a department stalls?

**Recovery.** A PostgreSQL department with the default breaker (5 failures, 10 s cool-down doubling up to
120 s) is taken down (new sessions refused, sessions terminated, the database renamed away); a client asks
it every 0.1 s. The department comes back ``--down`` seconds after its breaker opened (by default 12 s:
after the first probe, at 10 s, failed, so the cool-down is now 20 s). Measured: seconds from its return to
the first answer. Reference: the breaker's probe alone (health checks off). Target: with the default health
checks (every 5 s), within an interval and a check, under 6 s.

**Readiness.** A department whose server accepts connections and never answers (timeout 5 s) beside one
that answers. Timed: the work ``/readyz`` did before (every department checked live, bounded by its timeout
plus a second's grace) against what it does now (the background checks' last state). Target: under 1 ms.

    python -m bench.recovery [--down 12] [--interval 5] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from bench.support import Timing, bench_settings, timed
from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.health_checks import HealthChecker
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from schema.catalog import Catalog, load_catalog

DATABASE = "fedgate_bench_recovery"
NUMBERS = {"name": "numbers", "primary_key": ["n"], "columns": [{"name": "n", "type": "integer", "nullable": False}]}


async def _admin(*statements: str) -> None:
    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _create() -> None:
    await _admin(
        f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)',
        f'DROP DATABASE IF EXISTS "{DATABASE}_gone" WITH (FORCE)',
        f'CREATE DATABASE "{DATABASE}"',
    )
    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database=DATABASE)
    try:
        await connection.execute("CREATE TABLE numbers (n bigint PRIMARY KEY); INSERT INTO numbers VALUES (1)")
    finally:
        await connection.close()


async def _take_down() -> None:
    await _admin(
        f'ALTER DATABASE "{DATABASE}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{DATABASE}'",  # noqa: S608
        f'ALTER DATABASE "{DATABASE}" RENAME TO "{DATABASE}_gone"',
    )


async def _bring_back() -> None:
    await _admin(
        f'ALTER DATABASE "{DATABASE}_gone" RENAME TO "{DATABASE}"',
        f'ALTER DATABASE "{DATABASE}" ALLOW_CONNECTIONS true',
    )


def _catalog(directory: Path, source: dict[str, Any], *, checks: dict[str, Any]) -> Catalog:
    path = directory / f"recovery-{len(list(directory.iterdir()))}.yaml"
    department = {"name": "department", "title": "Department", "source": {**source, "health_check": checks}}
    path.write_text(yaml.safe_dump({"version": 1, "departments": [{**department, "tables": [NUMBERS]}]}))
    return load_catalog(path)


async def _ask(gateway: Gateway) -> bool:
    response = await gateway.execute(GraphQLRequest("{ department { numbers { n } } }", None, None), ANONYMOUS)
    return not response.errors


async def _recovery(directory: Path, *, down: float, checks: dict[str, Any]) -> float:
    """Seconds from the department's return to the first answer a client retrying every 0.1 s gets."""
    await _create()
    source = {"kind": "postgres", "host": "127.0.0.1", "user": "postgres", "database": DATABASE, "ssl": "disable"}
    catalog = _catalog(directory, source, checks=checks)
    sources = GuardedAdapters(catalog)
    gateway = Gateway(catalog, bench_settings(), sources)
    checker = HealthChecker(sources)
    await gateway.start()
    await checker.start()
    try:
        if not await _ask(gateway):
            raise SystemExit("the department does not answer before the benchmark takes it down")
        await _take_down()
        while sources.breaker("department").state is not BreakerState.OPEN:
            await _ask(gateway)
            await asyncio.sleep(0.1)
        opened = time.monotonic()
        while time.monotonic() - opened < down:  # callers keep asking: each probe the breaker lets through fails
            await _ask(gateway)
            await asyncio.sleep(0.1)
        await _bring_back()
        back = time.monotonic()
        while not await _ask(gateway):
            await asyncio.sleep(0.1)
        return time.monotonic() - back
    finally:
        await checker.stop()
        await gateway.stop()
        await _admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def _black_hole() -> AsyncIterator[int]:
    """A TCP server on loopback that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()


async def _readiness(directory: Path, repeat: int) -> tuple[Timing, Timing]:
    """The live checks ``/readyz`` ran before, against the last known state it reads now."""
    connection = sqlite3.connect(directory / "steady.db")
    connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    connection.close()
    async with _black_hole() as port:
        stalled = {"kind": "postgres", "host": "127.0.0.1", "port": port, "user": "fedgate", "database": "x"}
        departments = [
            {
                "name": "steady",
                "title": "Steady",
                "source": {"kind": "sqlite", "path": "steady.db"},
                "tables": [NUMBERS],
            },
            {"name": "stalled", "title": "Stalled", "source": stalled, "tables": [NUMBERS]},
        ]
        path = directory / "readiness.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "departments": departments}))
        catalog = load_catalog(path)
        sources = GuardedAdapters(catalog)
        gateway = Gateway(catalog, bench_settings(), sources)
        checker = HealthChecker(sources)
        await gateway.start()
        await checker.start()
        try:
            live = await timed(sources.health, repeat=max(2, repeat // 5), warmup=0)  # 6 s each: fewer runs

            async def last_state() -> None:
                checker.readiness()

            cached = await timed(last_state, repeat=repeat * 100, warmup=10)
        finally:
            await checker.stop()
            await gateway.stop()
    return live, cached


async def main(argv: Sequence[str] | None = None) -> None:
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)  # the pool's own retries while the database is away
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--down", type=float, default=12.0, help="seconds the department stays away once its breaker opened"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="health_check.interval_seconds")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of the readiness work")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedgate-bench-") as name:
        directory = Path(name)
        probe_only = await _recovery(directory, down=args.down, checks={"enabled": False})
        checked = await _recovery(directory, down=args.down, checks={"interval_seconds": args.interval})
        live, cached = await _readiness(directory, args.repeat)
    print(f"Recovery: a PostgreSQL department back {args.down:g} s after its breaker opened (default breaker)")
    rows = [
        ("the breaker's probe alone (checks off)", probe_only),
        (f"health checks every {args.interval:g} s", checked),
    ]
    for label, seconds in rows:
        print(f"  {label:40} first answer {seconds:6.2f} s after its return")
    target = args.interval + 1
    verdict = "meets" if checked < target else "MISSES"
    print(f"  {probe_only / checked:.1f}x sooner ({verdict} the target of < {target:g} s)")
    print("Readiness while one department never answers (timeout 5 s)")
    for label, timing in (
        ("every department checked live (before)", live),
        ("the checks' last known state (now)", cached),
    ):
        print(f"  {label:40} {timing}")
    verdict = "meets" if cached.median < 0.001 else "MISSES"
    print(f"  {live.median / cached.median:,.0f}x faster ({verdict} the target of < 1 ms)")


if __name__ == "__main__":
    asyncio.run(main())
