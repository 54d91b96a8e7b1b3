"""fedgate against PostGraphile and the thinnest Python server, side by side on one PostgreSQL database.

The reference setup is ``../shared/bench/`` (read its README): the ``health`` data set (200,000 patients,
600,000 appointments), PostGraphile v4 and v5 and ``ceiling.py`` (Starlette + asyncpg + orjson, no GraphQL,
no auth). fedgate serves the same database with everything on: every request carries a JWT signed by the
development issuer (served by this script on loopback) and verified by fedgate, binding the purpose
``direct_care`` that an information sharing agreement must cover; the policy has a row filter and a mask
on ``patients`` (``deceased = FALSE``, ``given_name: show_first(3)``); and every request is audited, its
record durable before the answer leaves, in SQLite and, as a second fedgate, in PostgreSQL. A third
fedgate with the audit off gives the audit's cost in the same run.

The load generator is autocannon, the same for every server; the servers run one after another, in
rounds, so machine noise spreads over all of them. Before any load, each server's answer is checked
against PostgreSQL's own.

1. ``patient``: a patient by NHS number and their five latest appointments.
2. ``family``: 50 patients with one family name (40 exist), each with their latest appointment.
3. ``fan-out``: a patient (PostgreSQL) and their care plans (a SQLite department) in one request, at one
   connection, against each department's half asked alone (the fan-out overhead).

Printed: requests/s, p50 and p99 latency per server; the ratios of each fedgate to PostGraphile v5 and v4
and to the ceiling, and of the audited ones to the one without; fedgate again with two worker processes;
that every request answered has its audit event, and how long requests waited for their records to be
durable; the audit's cost again at ``--busy-connections`` (64), where that wait hides behind other
requests' work; one worker's resident memory over a long run.

    python -m bench.throughput [--duration 8] [--rounds 2] [--connections 16] [--busy-connections 64]
                               [--memory-seconds 60]
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
from prometheus_client.parser import text_string_to_metric_families

from bench.health_federation import (
    AUDIENCE,
    AUDIT_DATABASE,
    DSN,
    ORGANISATION,
    PURPOSE,
    SCOPE,
    SHARED,
    ensure_health_data,
    write_files,
)
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
    #: Requests answered (2xx) in the run.
    total: int = 0

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
    return Load(result["requests"]["average"], latency["p50"], latency["p99"], result["2xx"])


def median_load(runs: Sequence[Load]) -> Load:
    return Load(
        statistics.median(run.requests_per_second for run in runs),
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
        sum(run.total for run in runs),
    )


def _graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {"query": query, "variables": variables}


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _times(value: Any) -> Any:
    """``value`` with every ``at`` read as a time."""
    if isinstance(value, dict):
        return {key: _when(item) if key == "at" else _times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_times(item) for item in value]
    return value


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
    for query in ("patient", "family"):  # v5 writes times with microseconds: compare them as times
        v4, v5 = (_times(answers[name, query]) for name in ("PostGraphile", "PostGraphile v5"))
        assert v4 == v5, f"PostGraphile v4 and v5 differ on {query}"
    reference = answers["PostGraphile", "patient"]["patientByNhsNumber"]
    expected_patient = (reference["nhsNumber"], [_when(a["at"]) for a in reference["appointmentsByNhsNumber"]["nodes"]])
    fedgate = answers[AUDITED, "patient"]["health"]["patient"]
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
    for name in (name for name in targets if name.startswith("fedgate")):
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
        "clients": [
            {
                "id": "bench-client",
                "name": "The benchmark's load generator",
                "scopes": [SCOPE],
                "claims": {"org_code": ORGANISATION, "purpose_of_use": PURPOSE},
            }
        ],
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
def references() -> Iterator[tuple[str, str, str]]:
    """PostGraphile v4 and v5 and the ceiling, each one process, serving the ``health`` database."""
    graphile, graphile5, ceiling = free_port(), free_port(), free_port()
    uvicorn_command = [sys.executable, "-m", "uvicorn", "--app-dir", str(SHARED), "ceiling:app", "--port", str(ceiling)]
    with (
        running(["bash", str(SHARED / "postgraphile.sh"), DSN], graphile, env={"PORT": str(graphile)}, timeout=600),
        running(["bash", str(SHARED / "postgraphile5.sh"), DSN], graphile5, env={"PORT": str(graphile5)}, timeout=900),
        running([*uvicorn_command, "--no-access-log", "--log-level", "warning"], ceiling, env={"HEALTH_DSN": DSN}),
    ):
        yield (
            f"http://127.0.0.1:{graphile}/graphql",
            f"http://127.0.0.1:{graphile5}/graphql",
            f"http://127.0.0.1:{ceiling}",
        )


def _ratio(figure: float, reference: float) -> str:
    return f"{figure / reference:5.2f}x"


#: The fedgate the headline ratios are of: the audit on, in SQLite (the normal single-host state).
AUDITED = "fedgate, audit SQLite"
#: Each fedgate of the benchmark, by name: its settings' audit mode and its worker processes.
FEDGATES = {
    AUDITED: ("sqlite", 1),
    "fedgate, audit PostgreSQL": ("postgres", 1),
    "fedgate, no audit": ("off", 1),
    "fedgate, 2 workers": ("postgres", 2),
}


def report(query: str, results: dict[str, list[Load]]) -> None:
    medians = {name: median_load(runs) for name, runs in results.items()}
    print(f"\nquery '{query}' (medians of {len(next(iter(results.values())))} rounds)")
    for name, figures in medians.items():
        print(f"  {name:<26} {figures}")
    v5, v4, ceiling = medians["PostGraphile v5"], medians["PostGraphile"], medians["ceiling"]
    for name in (name for name in medians if name.startswith("fedgate") and name != "fedgate, 2 workers"):
        ours = medians[name]
        print(
            f"  {name:<26} /v5: throughput {_ratio(ours.requests_per_second, v5.requests_per_second)}"
            f" p99 {_ratio(ours.p99_ms, v5.p99_ms)}   /v4: {_ratio(ours.requests_per_second, v4.requests_per_second)}"
            f"   /ceiling: {_ratio(ours.requests_per_second, ceiling.requests_per_second)}"
        )
    audit_costs(medians)
    two = medians["fedgate, 2 workers"]
    print(
        "  2 workers (audit PostgreSQL) / 1 worker: throughput "
        f"{_ratio(two.requests_per_second, medians['fedgate, audit PostgreSQL'].requests_per_second)}"
    )


async def audit_events(directory: Path) -> dict[str, int]:
    """Events in each audit store: every request answered must have one (audit mode → count)."""
    with sqlite3.connect(directory / "audit.sqlite") as db:
        sqlite_events = int(db.execute("SELECT count(*) FROM audit_events").fetchone()[0])
    connection = await asyncpg.connect(DSN.replace("/health", f"/{AUDIT_DATABASE}"))
    try:
        postgres_events = int(await connection.fetchval("SELECT count(*) FROM audit_events"))
    finally:
        await connection.close()
    return {"sqlite": sqlite_events, "postgres": postgres_events}


async def fresh_audit_database() -> None:
    admin = await asyncpg.connect(DSN.replace("/health", "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{AUDIT_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{AUDIT_DATABASE}"')
    finally:
        await admin.close()


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


def audit_costs(medians: dict[str, Load]) -> None:
    bare = medians["fedgate, no audit"].requests_per_second
    for name in (AUDITED, "fedgate, audit PostgreSQL"):
        cost = 1 - medians[name].requests_per_second / bare
        print(f"  the audit's cost, {name.removeprefix('fedgate, audit ')}: {cost:6.1%} of throughput (target <= 10%)")


#: The fedgates driven again with ``--busy-connections``: enough requests in flight that the wait for each
#: one's durable record is hidden behind the others' work, so what is left of the audit's cost is its work.
BUSY = (AUDITED, "fedgate, audit PostgreSQL", "fedgate, no audit")


async def busy(targets: Sequence[Target], args: argparse.Namespace) -> None:
    chosen = [target for target in targets if target.name in BUSY]
    results = await compare(chosen, args, connections=args.busy_connections)
    for query, figures in results.items():
        medians = {name: median_load(runs) for name, runs in figures.items()}
        print(f"\nquery '{query}' at {args.busy_connections} connections (medians of {args.rounds} rounds)")
        for name, load_ in medians.items():
            print(f"  {name:<26} {load_}")
        audit_costs(medians)


async def durability_waits(client: httpx.AsyncClient, served: dict[str, tuple[str, int]]) -> None:
    """What each audited fedgate's requests waited for their records (its ``/metrics``), over the whole run."""
    for name in (AUDITED, "fedgate, audit PostgreSQL"):
        text = (await client.get(served[name][0].removesuffix("/graphql") + "/metrics")).text
        sums = {
            sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples
        }
        wait = sums["fedgate_audit_commit_duration_seconds_sum"] / sums["fedgate_audit_commit_duration_seconds_count"]
        batch = sums["fedgate_audit_batch_events_sum"] / sums["fedgate_audit_batch_events_count"]
        per = "request" if name == AUDITED else "batch"
        print(f"{name}: {wait * 1000:.2f} ms waited for durability a {per}, {batch:.1f} events a transaction")


def graphile_target(name: str, url: str) -> Target:
    return Target(name, {query: (url, _graphql(*text)) for query, text in POSTGRAPHILE_QUERIES.items()}, {})


def fedgate_target(name: str, url: str, headers: dict[str, str]) -> Target:
    return Target(name, {query: (url, _graphql(*text)) for query, text in FEDGATE_QUERIES.items()}, headers)


async def compare(
    targets: Sequence[Target], args: argparse.Namespace, *, connections: int | None = None
) -> dict[str, dict[str, list[Load]]]:
    """Every query against every target, interleaved in rounds (``connections``: default ``--connections``)."""
    results: dict[str, dict[str, list[Load]]] = {query: {} for query in FEDGATE_QUERIES}
    for _ in range(args.rounds):
        for query in FEDGATE_QUERIES:
            for target in targets:
                figures = await load(target, query, connections=connections or args.connections, duration=args.duration)
                results[query].setdefault(target.name, []).append(figures)
    return results


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--memory-seconds", type=int, default=60, help="length of the memory run (0: skip it)")
    parser.add_argument(
        "--busy-connections", type=int, default=64, help="the audit's cost again at this many connections (0: skip)"
    )
    args = parser.parse_args(argv)
    await ensure_health_data()
    await fresh_audit_database()
    with tempfile.TemporaryDirectory(prefix="fedgate-throughput-") as scratch:
        directory = Path(scratch)
        async with dev_issuer(directory) as (issuer, port), httpx.AsyncClient(timeout=30) as client:
            settings = write_files(directory, port)
            headers = {"authorization": f"Bearer {await mint_token(client, issuer)}"}
            with references() as (graphile_url, graphile5_url, ceiling_url), contextlib.ExitStack() as stack:
                served = {
                    name: stack.enter_context(fedgate(settings[mode], workers))
                    for name, (mode, workers) in FEDGATES.items()
                }
                targets = [
                    graphile_target("PostGraphile v5", graphile5_url),
                    graphile_target("PostGraphile", graphile_url),
                    Target(
                        "ceiling", {q: (f"{ceiling_url}/{CEILING_PATHS[q]}", b) for q, b in CEILING_BODIES.items()}, {}
                    ),
                    *(fedgate_target(name, url, headers) for name, (url, _) in served.items()),
                ]  # fmt: skip
                await check_answers(client, {target.name: target for target in targets})
                before = await audit_events(directory)
                results = await compare(targets, args)
                after = await audit_events(directory)
                for query, figures in results.items():
                    report(query, figures)
                answered = {
                    mode: sum(run.total for query in results.values() for name, runs in query.items()
                              if name.startswith("fedgate") and FEDGATES[name][0] == mode for run in runs)
                    for mode in ("sqlite", "postgres")
                }  # fmt: skip
                for mode, count in answered.items():
                    recorded = after[mode] - before[mode]
                    print(f"\naudit in {mode}: {count} requests answered, {recorded} events recorded"
                          + ("" if recorded >= count else "  MISSING EVENTS"))  # fmt: skip
                await durability_waits(client, served)
                if args.busy_connections:
                    await busy(targets, args)
                url, pid = served[AUDITED]
                await fanout(url, headers, args.duration, directory / "care.db")
                if args.memory_seconds:
                    await memory_run(fedgate_target(AUDITED, url, headers), pid, args.memory_seconds, args.connections)


if __name__ == "__main__":
    asyncio.run(main())
