"""fedgate against PostGraphile and the thinnest Python server, side by side on one PostgreSQL database.

The reference setup is ``../shared/bench/`` (read its README): the ``health`` data set (200,000 patients,
600,000 appointments), PostGraphile v4 and ``ceiling.py`` (Starlette + asyncpg + orjson, no GraphQL, no
auth). fedgate serves the same database with everything on: every request carries a JWT signed by the
development issuer (served by this script on loopback) and verified by fedgate, and the policy has a row
filter and a mask on ``patients`` (``deceased = FALSE``, ``given_name: show_first(3)``).

The load generator is autocannon, the same for every server; the servers run one after another, in
rounds, so machine noise spreads over all of them. Before any load, each server's answer is checked
against PostgreSQL's own.

1. ``patient``: a patient by NHS number and their five latest appointments.
2. ``family``: 50 patients with one family name (40 exist), each with their latest appointment.
3. ``fan-out``: a patient (PostgreSQL) and their care plans (a SQLite department) in one request, at one
   connection, against each department's half asked alone (the fan-out overhead).

Printed: requests/s, p50 and p99 latency per server and the ratios fedgate/PostGraphile and
fedgate/ceiling; fedgate again with two worker processes; one worker's resident memory over a long run.

    python -m bench.throughput [--duration 8] [--rounds 2] [--connections 16] [--memory-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from bench.health_federation import AUDIENCE, DSN, SCOPE, SHARED, ensure_health_data, write_files
from bench.support import free_port, running, timed
from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from schema.configfile import ConfigDocument, validate

CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "fedgate-bench"))
AUTOCANNON = CACHE / "node_modules" / ".bin" / "autocannon"
NHS, FAMILY, WITH_CARE = "9000000042", "Family42", "9000000044"

FEDGATE_QUERIES = {
    "patient": (
        "query($n: String!) { health { patient(nhsNumber: $n) { nhsNumber givenName familyName dateOfBirth "
        "appointments(limit: 5, orderBy: [{at: DESC}]) { clinic outcome at } } } }",
        {"n": NHS},
    ),
    "family": (
        "query($f: String!) { health { patients(where: {familyName: {eq: $f}}, orderBy: [{nhsNumber: ASC}], "
        "limit: 50) { nhsNumber givenName dateOfBirth appointments(limit: 1, orderBy: [{at: DESC}]) { at clinic } } "
        "} }",
        {"f": FAMILY},
    ),
}
POSTGRAPHILE_QUERIES = {
    "patient": (
        "query($n: String!) { patientByNhsNumber(nhsNumber: $n) { nhsNumber givenName familyName dateOfBirth "
        "appointmentsByNhsNumber(first: 5, orderBy: AT_DESC) { nodes { clinic outcome at } } } }",
        {"n": NHS},
    ),
    "family": (
        "query($f: String!) { allPatients(first: 50, orderBy: NHS_NUMBER_ASC, condition: {familyName: $f}) { nodes { "
        "nhsNumber givenName dateOfBirth appointmentsByNhsNumber(first: 1, orderBy: AT_DESC) { nodes { at clinic } } "
        "} } }",
        {"f": FAMILY},
    ),
}
CEILING_BODIES = {"patient": {"nhs_number": NHS}, "family": {"family_name": FAMILY}}
CEILING_PATHS = {"patient": "q1", "family": "q2"}
FANOUT_HEALTH = (
    "health { patient(nhsNumber: $n) { nhsNumber familyName appointments(limit: 5, orderBy: [{at: DESC}]) { at } } }"
)
FANOUT_CARE = "care { carePlans(where: {nhsNumber: {eq: $n}}) { planId startedOn status } }"


@dataclass(frozen=True)
class Target:
    """One server and how to ask it each logical query: a URL and a JSON body per query."""

    name: str
    requests: dict[str, tuple[str, dict[str, Any]]]
    headers: dict[str, str]


@dataclass(frozen=True)
class Load:
    """autocannon's figures for one run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float

    def __str__(self) -> str:
        return f"{self.requests_per_second:8.0f} req/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms"


async def load(target: Target, query: str, *, connections: int, duration: int) -> Load:
    """Drive ``target`` with ``query`` for ``duration`` seconds; every response must be 2xx."""
    headers = [arg for key, value in target.headers.items() for arg in ("-H", f"{key}={value}")]
    command = [str(AUTOCANNON), "-j", "-c", str(connections), "-d", str(duration), "-m", "POST"]
    url, body = target.requests[query]
    command += ["-H", "content-type=application/json", *headers, "-b", json.dumps(body), url]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"autocannon failed against {target.name}: {err.decode()[-500:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    if result["non2xx"] or result["errors"] or result["timeouts"]:
        raise SystemExit(
            f"{target.name}: {result['non2xx']} non-2xx, {result['errors']} errors, {result['timeouts']} timeouts"
        )
    latency = result["latency"]
    return Load(result["requests"]["average"], latency["p50"], latency["p99"])


def median_load(runs: Sequence[Load]) -> Load:
    names = ("requests_per_second", "p50_ms", "p99_ms")
    return Load(*(statistics.median(getattr(run, name) for run in runs) for name in names))


def _graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {"query": query, "variables": variables}


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def check_answers(client: httpx.AsyncClient, targets: dict[str, Target]) -> None:
    """Each server must give the same patients and appointments (PostGraphile's answer is the reference)."""
    answers = {}
    for name, target in targets.items():
        for query, (url, body) in target.requests.items():
            response = await client.post(url, json=body, headers=target.headers)
            response.raise_for_status()
            answer = response.json()
            if answer.get("errors"):
                raise SystemExit(f"{name} refused the '{query}' query: {answer['errors']}")
            answers[name, query] = answer["data"]
    reference = answers["PostGraphile", "patient"]["patientByNhsNumber"]
    expected_patient = (reference["nhsNumber"], [_when(a["at"]) for a in reference["appointmentsByNhsNumber"]["nodes"]])
    fedgate = answers["fedgate, 2 workers", "patient"]["health"]["patient"]
    ceiling = answers["ceiling", "patient"]["patient"]
    assert (fedgate["nhsNumber"], [_when(a["at"]) for a in fedgate["appointments"]]) == expected_patient
    assert (ceiling["nhs_number"], [_when(a["at"]) for a in ceiling["appointments"]]) == expected_patient
    assert fedgate["givenName"] == reference["givenName"][:3] + "****", "the mask applies"
    nodes = answers["PostGraphile", "family"]["allPatients"]["nodes"]
    everyone = [(p["nhsNumber"], _when(p["appointmentsByNhsNumber"]["nodes"][0]["at"])) for p in nodes]
    ceiling_family = answers["ceiling", "family"]["patients"]
    assert [(p["nhs_number"], _when(p["latest_at"])) for p in ceiling_family] == everyone
    living = [p for p in everyone if (int(p[0]) - 9_000_000_000) % 97 != 0]  # health.sql: deceased when i % 97 = 0
    assert len(living) < len(everyone), "the row filter has something to filter"
    for name in ("fedgate", "fedgate, 2 workers"):
        family = answers[name, "family"]["health"]["patients"]
        assert [(p["nhsNumber"], _when(p["appointments"][0]["at"])) for p in family] == living


@contextlib.asynccontextmanager
async def dev_issuer(directory: Path) -> AsyncIterator[tuple[DevIssuerSettings, int]]:
    """fedgate's development issuer on loopback, with one client holding the benchmark's scope."""
    port = free_port()
    document = {
        "enabled": True,
        "port": port,
        "audience": AUDIENCE,
        "token_lifetime_seconds": 14_400,
        "state_file": str(directory / "dev-issuer.json"),
        "clients": [{"id": "bench-client", "name": "The benchmark's load generator", "scopes": [SCOPE]}],
    }
    settings = validate(DevIssuerSettings, ConfigDocument("bench", document), {"base_dir": directory})
    server = uvicorn.Server(
        uvicorn.Config(create_dev_issuer_app(settings), port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield settings, port
    finally:
        server.should_exit = True
        await task


async def mint_token(client: httpx.AsyncClient, settings: DevIssuerSettings) -> str:
    secret = DevIssuerState.load_or_create(settings).client_secrets["bench-client"]
    response = await client.post(
        f"{settings.issuer}/oauth/token", data={"grant_type": "client_credentials"}, auth=("bench-client", secret)
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@contextlib.contextmanager
def fedgate(settings: Path, workers: int) -> Iterator[tuple[str, int]]:
    """fedgate serving ``settings`` with ``workers`` processes: its URL and the pid of its (first) process."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(settings), "--port", str(port)]
    with running([*command, "--workers", str(workers)], port) as process:
        yield f"http://127.0.0.1:{port}/graphql", process.pid


@contextlib.contextmanager
def references() -> Iterator[tuple[str, str]]:
    """PostGraphile and the ceiling, each one process, serving the ``health`` database."""
    graphile, ceiling = free_port(), free_port()
    uvicorn_command = [sys.executable, "-m", "uvicorn", "--app-dir", str(SHARED), "ceiling:app", "--port", str(ceiling)]
    with (
        running(["bash", str(SHARED / "postgraphile.sh"), DSN], graphile, env={"PORT": str(graphile)}, timeout=600),
        running([*uvicorn_command, "--no-access-log", "--log-level", "warning"], ceiling, env={"HEALTH_DSN": DSN}),
    ):
        yield f"http://127.0.0.1:{graphile}/graphql", f"http://127.0.0.1:{ceiling}"


def _ratio(figure: float, reference: float) -> str:
    return f"{figure / reference:5.2f}x"


def report(query: str, results: dict[str, list[Load]]) -> None:
    medians = {name: median_load(runs) for name, runs in results.items()}
    print(f"\nquery '{query}' (medians of {len(next(iter(results.values())))} rounds)")
    for name, figures in medians.items():
        print(f"  {name:<18} {figures}")
    ours, graphile, ceiling = medians["fedgate"], medians["PostGraphile"], medians["ceiling"]
    print(
        f"  fedgate/PostGraphile: throughput {_ratio(ours.requests_per_second, graphile.requests_per_second)}"
        f"   p99 {_ratio(ours.p99_ms, graphile.p99_ms)}"
        f"   fedgate/ceiling: throughput {_ratio(ours.requests_per_second, ceiling.requests_per_second)}"
    )
    if "fedgate, 2 workers" in medians:
        two = medians["fedgate, 2 workers"]
        print(f"  2 workers / 1 worker: throughput {_ratio(two.requests_per_second, ours.requests_per_second)}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no resident size for process {pid}")


async def memory_run(target: Target, pid: int, seconds: int, connections: int) -> None:
    """One worker's resident memory, sampled every 5 s during ``seconds`` of alternating queries."""
    samples: list[tuple[float, int]] = []
    started = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append((time.monotonic() - started, rss_kib(pid)))
            await asyncio.sleep(5)

    sampler = asyncio.create_task(sample())
    half = max(seconds // 2, 1)
    for query in ("patient", "family"):
        await load(target, query, connections=connections, duration=half)
    sampler.cancel()
    samples.append((time.monotonic() - started, rss_kib(pid)))
    print(f"\nfedgate, 1 worker, resident memory under {seconds} s of load (MiB at seconds):")
    print("  " + "  ".join(f"{kib / 1024:.0f}@{at:.0f}" for at, kib in samples))
    settled = [kib for at, kib in samples if at >= 10] or [samples[-1][1]]
    print(
        f"  after the first 10 s: min {min(settled) / 1024:.1f} MiB, max {max(settled) / 1024:.1f} MiB"
        " (target: under 250 MB, flat)"
    )


async def fanout(url: str, headers: dict[str, str], duration: int, care_file: Path) -> None:
    """Two departments in one request against each department's half alone, one connection (latency)."""
    shapes = {
        "health + care": f"{FANOUT_HEALTH} {FANOUT_CARE}",
        "health alone": FANOUT_HEALTH,
        "care alone": FANOUT_CARE,
    }
    requests = {
        name: (url, _graphql(f"query($n: String!) {{ {shape} }}", {"n": WITH_CARE})) for name, shape in shapes.items()
    }
    target = Target("fedgate", requests, headers)
    runs: dict[str, list[Load]] = {name: [] for name in shapes}
    for _ in range(2):
        for name in shapes:
            runs[name].append(await load(target, name, connections=1, duration=duration))
    medians = {name: median_load(figures) for name, figures in runs.items()}
    print("\nquery 'fan-out' (one connection, medians of 2 rounds)")
    for name, figures in medians.items():
        print(f"  {name:<18} {figures}")
    # One connection, one request at a time: the mean latency is exactly 1 / throughput (autocannon's own
    # latency figures are whole milliseconds, too coarse here).
    mean_ms = {name: 1000 / figures.requests_per_second for name, figures in medians.items()}
    slower, both = max(mean_ms["health alone"], mean_ms["care alone"]), mean_ms["health + care"]
    print(f"  mean latency: both {both:.3f} ms, slower alone {slower:.3f} ms")
    print(f"  both / slower alone: {_ratio(both, slower)}   (target <= 1.2x)")
    health, care = await direct_latencies(care_file)
    print(f"  the same two halves with their drivers, in this process: health {health:.3f} ms, care {care:.3f} ms")
    print(f"  fedgate over HTTP, both / slower direct: {_ratio(both, max(health, care))}")


async def direct_latencies(care_file: Path, repeat: int = 2000) -> tuple[float, float]:
    """Mean milliseconds of each half asked directly (asyncpg and sqlite3, no HTTP, no gateway)."""
    connection = await asyncpg.connect(DSN)
    try:

        async def health() -> None:
            await connection.fetchrow("SELECT nhs_number, family_name FROM patients WHERE nhs_number = $1", WITH_CARE)
            await connection.fetch(
                "SELECT at FROM appointments WHERE nhs_number = $1 ORDER BY at DESC LIMIT 5", WITH_CARE
            )

        health_ms = (await timed(health, repeat=repeat, warmup=100)).mean * 1000
    finally:
        await connection.close()
    with sqlite3.connect(care_file) as care:

        async def plans() -> None:
            sql = "SELECT plan_id, started_on, status FROM care_plans WHERE nhs_number = ? ORDER BY plan_id"
            care.execute(sql, (WITH_CARE,)).fetchall()

        care_ms = (await timed(plans, repeat=repeat, warmup=100)).mean * 1000
    return health_ms, care_ms


def fedgate_target(name: str, url: str, headers: dict[str, str]) -> Target:
    return Target(name, {query: (url, _graphql(*text)) for query, text in FEDGATE_QUERIES.items()}, headers)


async def compare(targets: Sequence[Target], args: argparse.Namespace) -> dict[str, dict[str, list[Load]]]:
    """Every query against every target, interleaved in rounds."""
    results: dict[str, dict[str, list[Load]]] = {query: {} for query in FEDGATE_QUERIES}
    for _ in range(args.rounds):
        for query in FEDGATE_QUERIES:
            for target in targets:
                figures = await load(target, query, connections=args.connections, duration=args.duration)
                results[query].setdefault(target.name, []).append(figures)
    return results


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--memory-seconds", type=int, default=60, help="length of the memory run (0: skip it)")
    args = parser.parse_args(argv)
    await ensure_health_data()
    with tempfile.TemporaryDirectory(prefix="fedgate-throughput-") as scratch:
        directory = Path(scratch)
        async with dev_issuer(directory) as (issuer, port), httpx.AsyncClient(timeout=30) as client:
            settings = write_files(directory, port)
            headers = {"authorization": f"Bearer {await mint_token(client, issuer)}"}
            with references() as (graphile_url, ceiling_url), fedgate(settings, 1) as (url, pid):
                with fedgate(settings, 2) as (two_workers_url, _):
                    targets = [
                        Target(
                            "PostGraphile",
                            {q: (graphile_url, _graphql(*t)) for q, t in POSTGRAPHILE_QUERIES.items()},
                            {},
                        ),
                        Target(
                            "ceiling",
                            {q: (f"{ceiling_url}/{CEILING_PATHS[q]}", b) for q, b in CEILING_BODIES.items()},
                            {},
                        ),
                        fedgate_target("fedgate", url, headers),
                        fedgate_target("fedgate, 2 workers", two_workers_url, headers),
                    ]
                    await check_answers(client, {target.name: target for target in targets})
                    results = await compare(targets, args)
                for query, figures in results.items():
                    report(query, figures)
                await fanout(url, headers, args.duration, directory / "care.db")
                if args.memory_seconds:
                    await memory_run(targets[2], pid, args.memory_seconds, args.connections)


if __name__ == "__main__":
    asyncio.run(main())
