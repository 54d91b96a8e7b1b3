"""Hostile clients: does normal traffic keep its pace while two clients send hostile documents in a loop?

1. **What a document costs.** Each family of :mod:`bench.hostile_documents`, built to sit just inside the
   default limits (or just over them), is timed phase by phase in this process against the demo
   catalog's schema: the token scan, graphql-core's parse, the shape check and validation (best of a
   few runs). The largest validation time is the worst the defaults allow.
2. **Normal traffic under attack.** fedgate serves the demo federation (SQLite) in its own process. A
   normal client (``--connections`` connections, one query each at a time) measures requests/s and
   latency alone, then while two attacker processes each send a hostile document in a loop, every one
   with a fresh comment so no cache helps; ``/healthz`` is probed every 50 ms meanwhile. The reference is
   the normal client alone, measured before and after each attack (their mean).

Target: with the issue's documents (refused), normal traffic >= 0.9x its pace alone.

    python -m bench.hostile_clients [--duration 5] [--connections 4] [--skip-costs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import orjson
import yaml
from graphql import parse, validate

from bench.databases import federation
from bench.hostile_documents import LEGAL, OVER, Hostile
from bench.support import REPO, free_port, running
from demo.generate import generate
from demo.housing_api import TOKEN_ENV
from demo.run import DEMO_DIR
from gateway.document_scan import scan
from gateway.document_shape import check_shape
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway
from gateway.settings import Settings
from schema.catalog import load_catalog

NORMAL = "{ health { patients(limit: 5) { nhsNumber givenName hospitalSpells(limit: 2) { admittedAt } } } }"
T = TypeVar("T")
FAMILIES = {hostile.name: hostile for hostile in (*LEGAL, *OVER)}


def _best(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The best of ``repeat`` runs in milliseconds, and the last run's result."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - started)
    return min(samples) * 1000, result


def costs() -> None:
    """Phase by phase, in milliseconds, for every family under the default limits."""
    os.environ.setdefault(TOKEN_ENV, "unused-by-the-benchmarks-" + "x" * 16)  # the housing API is never asked
    catalog = load_catalog(DEMO_DIR / "catalog.yaml")
    settings = Settings.model_validate({"catalog": "unused.yaml", "auth": {"enabled": False}})
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog))
    limits, schema, rules = gateway.documents.limits, gateway.schema.graphql, gateway.documents.rules
    print("what a document costs under the default limits (ms, best of 5; validation best of 3)")
    print(f"  {'document':<20} {'chars':>7} {'scan':>7} {'parse':>7} {'shape':>7} {'validate':>9}  outcome")
    worst = ("", 0.0)
    for hostile in (*LEGAL, *OVER):
        text = hostile.build("0")
        scan_ms, refusal = _best(functools.partial(scan, text, limits), 5)
        row = f"  {hostile.name:<20} {len(text):7} {scan_ms:7.2f}"
        if refusal is not None:
            print(f"{row} {'':>7} {'':>7} {'':>9}  refused before parsing: {refusal.limit.value}")
            continue
        parse_ms, document = _best(functools.partial(parse, text, max_tokens=limits.max_tokens), 5)
        shape_ms, shape = _best(functools.partial(check_shape, document, limits), 5)
        if shape.error is not None:
            refused = f"refused before validation: {shape.error.limit.value}"
            print(f"{row} {parse_ms:7.1f} {shape_ms:7.2f} {'':>9}  {refused}")
            continue
        validate_ms, errors = _best(functools.partial(validate, schema, document, rules), 3)
        codes = sorted({str((error.extensions or {}).get("limit", "invalid")) for error in errors})
        outcome = f"validated: {', '.join(codes) if codes else 'valid'}"
        print(f"{row} {parse_ms:7.1f} {shape_ms:7.2f} {validate_ms:9.1f}  {outcome}")
        if validate_ms > worst[1]:
            worst = (hostile.name, validate_ms)
    print(f"  worst validation: {worst[1]:.1f} ms ({worst[0]})")


def attack(url: str, family: str) -> None:
    """An attacker process: ``family``'s document, fresh each time (a new comment, so no cache helps), in a
    loop until killed. The document is built once and only its comment changes: what the attacker spends
    making a request is not taken from the machine's cores the server shares."""
    target = httpx.URL(url)
    connection = http.client.HTTPConnection(target.host, target.port)
    headers = {"content-type": "application/json"}
    marker = "FRESH0MARK"
    prefix, suffix = orjson.dumps({"query": FAMILIES[family].build(marker)}).split(marker.encode())
    for count in range(10**9):
        connection.request("POST", target.path, body=prefix + str(count).encode() + suffix, headers=headers)
        connection.getresponse().read()
        if count == 0:
            print("attacking", flush=True)  # started up: from now on the attack is all this process does


@contextlib.contextmanager
def attackers(url: str, family: str, count: int = 2) -> Iterator[None]:
    command = [sys.executable, "-m", "bench.hostile_clients", "--attack", url, family]
    processes = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE) for _ in range(count)]
    try:
        for process in processes:  # each has started up (imports cost a second of CPU) and sent its first
            assert process.stdout is not None and process.stdout.readline() == b"attacking\n"
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Pace:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    healthz_p99_ms: float

    def __str__(self) -> str:
        return (
            f"{self.requests_per_second:7.0f} req/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:7.2f} ms"
            f"   /healthz p99 {self.healthz_p99_ms:7.2f} ms"
        )


async def normal_traffic(base: str, connections: int, duration: float) -> Pace:
    latencies: list[float] = []
    probes: list[float] = []
    deadline = time.perf_counter() + duration
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": NORMAL})
                assert response.status_code == 200 and "errors" not in response.json(), response.text
                latencies.append(time.perf_counter() - started)

        async def healthz() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=60) as prober:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    (await prober.get("/healthz")).raise_for_status()
                    probes.append(time.perf_counter() - started)
                    await asyncio.sleep(0.05)

        await asyncio.gather(healthz(), *(one() for _ in range(connections)))
    ordered, probed = sorted(latencies), sorted(probes)
    return Pace(
        len(latencies) / duration,
        statistics.median(ordered) * 1000,
        ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        probed[int(0.99 * (len(probed) - 1))] * 1000,
    )


async def under_attack(args: argparse.Namespace, families: Sequence[Hostile]) -> None:
    with tempfile.TemporaryDirectory(prefix="fedgate-hostile-") as scratch:
        directory = Path(scratch)
        async with federation("sqlite", generate(people=2000), directory) as setup:
            settings = {
                "catalog": str(directory / "sqlite" / "catalog.yaml"),
                "auth": {"enabled": False},
                "logging": {"level": "warning", "format": "json"},
            }
            (directory / "fedgate.yaml").write_text(yaml.safe_dump(settings))
            assert setup.catalog is not None
            port = free_port()
            command = [sys.executable, "-m", "gateway", "serve", "--config", str(directory / "fedgate.yaml")]
            with running([*command, "--port", str(port)], port):
                base = f"http://127.0.0.1:{port}"
                await normal_traffic(base, args.connections, 1.0)  # warm-up: plans, pools
                print(f"\nnormal traffic ({args.connections} connections, {args.duration:.0f}-s runs), two attackers")
                for hostile in families:
                    before = await normal_traffic(base, args.connections, args.duration)
                    with attackers(f"{base}/graphql", hostile.name):
                        attacked = await normal_traffic(base, args.connections, args.duration)
                    after = await normal_traffic(base, args.connections, args.duration)
                    alone = (before.requests_per_second + after.requests_per_second) / 2
                    print(f"  alone (before/after mean) {alone:7.0f} req/s")
                    print(f"  attacked: {hostile.name:<18} {attacked}")
                    print(f"    ratio to alone: {attacked.requests_per_second / alone:5.2f}x   ({hostile.aims_at})")


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each normal-traffic run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--skip-costs", action="store_true", help="only the attack runs")
    parser.add_argument(
        "--families",
        default="__typename x9000,field x9000,wide tree",
        help="the attackers' documents, comma-separated (bench/hostile_documents.py)",
    )
    parser.add_argument("--attack", nargs=2, metavar=("URL", "FAMILY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        attack(*args.attack)
        return
    if not args.skip_costs:
        costs()
    await under_attack(args, [FAMILIES[name] for name in args.families.split(",")])


if __name__ == "__main__":
    asyncio.run(main())
