"""Which HTTP server fedgate runs on: its hot path under each candidate, interleaved, against the ceiling.

fedgate needs a server that closes slow clients (a deadline for a request's headers, one for its body, an
idle timeout) and caps connections (docs/deployment.md). This script measures what each candidate costs on
``bench.throughput``'s queries 1 (``patient``) and 2 (``family``), with the same data, token, policy and
load generator (autocannon, 16 connections), one process each:

* ``fedgate``: ``fedgate serve`` as shipped: uvicorn (uvloop, httptools) with ``gateway/connections.py``'s
  protocol (the deadlines and the cap);
* ``uvicorn``: the same application under plain uvicorn (uvloop, httptools): what fedgate ran on before;
* ``granian``: the same application under Granian (Rust, hyper; ASGI on uvloop), header-read timeout 10 s,
  backpressure 1,000;
* ``hypercorn``: the same application under Hypercorn (h11; uvloop worker), keep-alive 5 s, read timeout 20 s;
* ``ceiling``: ``../shared/bench/ceiling.py`` (no GraphQL, no auth), the reference.

Granian and Hypercorn are not fedgate's dependencies: ``pip install granian hypercorn`` to compare them, or
leave them out with ``--candidates``. Printed: requests/s, p50 and p99 per candidate and query (medians of
``--rounds``), and each against plain uvicorn and the ceiling.

    python -m bench.servers [--duration 8] [--rounds 3] [--candidates fedgate,uvicorn,granian,hypercorn]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from bench.health_federation import DSN, SHARED, ensure_health_data, write_files
from bench.support import free_port, running
from bench.throughput import (
    CEILING_BODIES,
    CEILING_PATHS,
    Load,
    Target,
    dev_issuer,
    fedgate_target,
    load,
    median_load,
    mint_token,
)
from gateway.settings import CONFIG_ENV

APP = "gateway.serving:app_from_environment"
BASELINE = "uvicorn"


def _command(candidate: str, settings: Path, port: int) -> list[str]:
    """How to serve fedgate's application (``settings``) under ``candidate`` on 127.0.0.1:``port``."""
    python = sys.executable
    if candidate == "fedgate":
        return [python, "-m", "gateway", "serve", "--config", str(settings), "--port", str(port)]
    if candidate == "uvicorn":
        return [python, "-m", "uvicorn", "--factory", APP, "--port", str(port), "--loop", "uvloop", "--http",
                "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    if candidate == "granian":
        return [python, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--http", "1",
                "--no-ws", "--log-level", "warning", "--http1-header-read-timeout", "10000", "--backpressure", "1000",
                "--port", str(port), APP]  # fmt: skip
    if candidate == "hypercorn":
        return [python, "-m", "hypercorn", "-k", "uvloop", "--bind", f"127.0.0.1:{port}", "--keep-alive", "5",
                "--read-timeout", "20", "--log-level", "warning", f"asgi:{APP}()"]  # fmt: skip
    raise SystemExit(f"unknown candidate '{candidate}': fedgate, uvicorn, granian or hypercorn")


@contextlib.contextmanager
def serving(candidate: str, settings: Path) -> Iterator[str]:
    """fedgate under ``candidate``, one process: its /graphql URL."""
    port = free_port()
    with running(_command(candidate, settings, port), port, env={CONFIG_ENV: str(settings)}):
        yield f"http://127.0.0.1:{port}/graphql"


@contextlib.contextmanager
def ceiling() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(SHARED), "ceiling:app", "--port", str(port)]
    with running([*command, "--no-access-log", "--log-level", "warning"], port, env={"HEALTH_DSN": DSN}):
        yield f"http://127.0.0.1:{port}"


async def same_answers(client: httpx.AsyncClient, targets: Sequence[Target]) -> None:
    """Every candidate serves the same application: each must give the same data for each query."""
    for query in ("patient", "family"):
        answers = []
        for target in targets:
            url, body = target.requests[query]
            response = await client.post(url, json=body, headers=target.headers)
            response.raise_for_status()
            answer = response.json()
            if answer.get("errors") or not answer.get("data"):
                raise SystemExit(f"{target.name} did not answer '{query}': {answer}")
            answers.append(answer["data"])
        if any(answer != answers[0] for answer in answers):
            raise SystemExit(f"the candidates answered '{query}' differently")


def _ratio(figure: float, reference: float) -> str:
    return f"{figure / reference:5.2f}x"


def report(query: str, results: dict[str, list[Load]]) -> None:
    medians = {name: median_load(runs) for name, runs in results.items()}
    print(f"\nquery '{query}' (medians of {len(next(iter(results.values())))} rounds)")
    baseline, reference = medians.get(BASELINE), medians["ceiling"]
    for name, figures in medians.items():
        against = (
            f"   /{BASELINE} {_ratio(figures.requests_per_second, baseline.requests_per_second)}" if baseline else ""
        )
        against += f"   /ceiling {_ratio(figures.requests_per_second, reference.requests_per_second)}"
        print(f"  {name:<10} {figures}{against}")


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--candidates", default="fedgate,uvicorn,granian,hypercorn")
    parser.add_argument("--protocol-rounds", type=int, default=3, help="rounds of the protocol alone (0: skip)")
    args = parser.parse_args(argv)
    candidates = [name.strip() for name in args.candidates.split(",") if name.strip()]
    missing = [name for name in candidates if name in ("granian", "hypercorn") and not importlib.util.find_spec(name)]
    if missing:
        raise SystemExit(f"{' and '.join(missing)} not installed: pip install {' '.join(missing)}, or --candidates")
    await ensure_health_data()
    with tempfile.TemporaryDirectory(prefix="fedgate-servers-") as scratch:
        directory = Path(scratch)
        async with dev_issuer(directory) as (issuer, port), httpx.AsyncClient(timeout=30) as client:
            settings = write_files(directory, port)["sqlite"]  # the audit on: the normal state
            headers = {"authorization": f"Bearer {await mint_token(client, issuer)}"}
            with contextlib.ExitStack() as stack:
                targets = [
                    fedgate_target(name, stack.enter_context(serving(name, settings)), headers) for name in candidates
                ]
                await same_answers(client, targets)
                base = stack.enter_context(ceiling())
                targets.append(
                    Target("ceiling", {q: (f"{base}/{CEILING_PATHS[q]}", b) for q, b in CEILING_BODIES.items()}, {})
                )
                results: dict[str, dict[str, list[Load]]] = {"patient": {}, "family": {}}
                for _ in range(args.rounds):
                    for query, figures in results.items():
                        for target in targets:
                            run = await load(target, query, connections=args.connections, duration=args.duration)
                            figures.setdefault(target.name, []).append(run)
            for query, figures in results.items():
                report(query, figures)
    if args.protocol_rounds:
        await protocol_cost(args)


async def protocol_cost(args: argparse.Namespace) -> None:
    """fedgate's connection protocol against plain uvicorn, around an application that does nothing."""
    results: dict[str, list[Load]] = {}
    with contextlib.ExitStack() as stack:
        targets = []
        for kind in ("plain", "guarded"):
            port = free_port()
            stack.enter_context(running([sys.executable, "-m", "bench.bare_server", kind, str(port)], port))
            targets.append(Target(kind, {"bare": (f"http://127.0.0.1:{port}/", {"query": "{ ok }"})}, {}))
        for _ in range(args.protocol_rounds):
            for target in targets:
                run = await load(target, "bare", connections=args.connections, duration=args.duration)
                results.setdefault(target.name, []).append(run)
    medians = {name: median_load(runs) for name, runs in results.items()}
    print(f"\nthe protocol alone: a bare application (medians of {args.protocol_rounds} rounds)")
    for name, figures in medians.items():
        print(f"  uvicorn, {name:<8} {figures}")
    plain, guarded = medians["plain"], medians["guarded"]
    print(f"  guarded / plain: throughput {_ratio(guarded.requests_per_second, plain.requests_per_second)}")


if __name__ == "__main__":
    asyncio.run(main())
