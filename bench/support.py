"""What every benchmark shares: repeated timing with warm-up and a gateway to time, started in-process."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.principal import ANONYMOUS, Principal
from gateway.service import Gateway, GraphQLRequest, GraphQLResponse
from gateway.settings import Settings
from schema.catalog import Catalog

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs of one thing."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    def __str__(self) -> str:
        return f"median {self.median * 1000:8.2f} ms   p95 {self.p95 * 1000:8.2f} ms   (n={len(self.samples)})"


async def timed(run: Callable[[], Awaitable[Any]], *, repeat: int, warmup: int = 3) -> Timing:
    """Run ``run`` ``warmup`` times unmeasured, then ``repeat`` times measured, one after another."""
    for _ in range(warmup):
        await run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return Timing(tuple(samples))


def bench_settings() -> Settings:
    """Authentication off, no policy: what is timed is planning, the sources and merging."""
    return Settings.model_validate(
        {
            "catalog": "unused.yaml",
            "auth": {"enabled": False},
            "graphql": {"max_cost": 10_000_000},
            "logging": {"format": "console", "level": "warning"},
        }
    )


async def started(catalog: Catalog, settings: Settings | None = None) -> Gateway:
    gateway = Gateway(catalog, settings or bench_settings(), GuardedAdapters(catalog))
    await gateway.start()
    return gateway


async def ask(
    gateway: Gateway, query: str, variables: dict[str, Any] | None = None, principal: Principal = ANONYMOUS
) -> GraphQLResponse:
    """One request through the whole service (parse, validate, plan, execute, merge), failing loudly."""
    response = await gateway.execute(GraphQLRequest(query, None, variables), principal)
    if response.errors:
        raise RuntimeError(f"the benchmark query failed: {response.errors}")
    return response


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running(
    command: Sequence[str], port: int, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server) until the block ends, once it accepts connections on 127.0.0.1:``port``."""
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[0]} did not start listening on port {port}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
