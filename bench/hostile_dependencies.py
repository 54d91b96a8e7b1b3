"""Hostile and slow dependencies: what a gzip bomb from a department costs in memory, and what a stalled
identity provider costs in latency.

* **bomb**: a REST department (:mod:`bench.hostile_api`, its own process on loopback) answers about
  130 KiB of gzip that inflate to 128 MiB, against ``max_response_bytes`` of 1 MiB. A gateway in a fresh
  process of its own (this module with ``--probe``) asks it once, after three normal 100-row answers;
  printed: the growth of the process's peak resident memory (``ru_maxrss``) during each request and its
  resident memory (``VmRSS``) just after, and a second later.
* **jwks**: 20 tokens at once, signed with a key the gateway holds, when the periodic key refresh is due
  and the JWKS endpoint stalls (accepts the request, never answers), against the same 20 with the
  endpoint healthy; then one token naming a key the gateway does not hold, while it stalls.
* **introspection**: 10 opaque tokens one after another while the introspection endpoint stalls, with
  ``auth.http_timeout_seconds`` 1.

    python -m bench.hostile_dependencies [--bomb-mib 128]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.support import REPO, free_port, running
from gateway.auth.bearer import Authenticator
from gateway.auth.config import AuthSettings
from gateway.errors import FedgateError
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from gateway.settings import Settings
from schema.catalog import load_catalog

MIB = 1024 * 1024
ISSUER = "https://idp.bench.example"
NORMAL = "{ api { items(limit: 20) { id label } } }"
BOMB = "{ api { bomb(limit: 20) { id label } } }"
TABLE: dict[str, Any] = {
    "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": False}, {"name": "label", "type": "string"}],
}

# --- the gzip bomb, measured in a process of its own --------------------------------------------------


def _rss_kib() -> int:
    """The process's resident memory now (Linux, KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _probe(catalog_path: str) -> None:
    """``--probe``: a gateway over ``catalog_path``; one JSON line per request (three normal, one bomb)."""
    catalog = load_catalog(Path(catalog_path))
    settings = Settings.model_validate(
        {"catalog": catalog_path, "auth": {"enabled": False}, "logging": {"format": "console", "level": "error"}}
    )
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog))
    await gateway.start()
    try:
        for query in (NORMAL, NORMAL, NORMAL, BOMB):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            response = await gateway.execute(GraphQLRequest(query, None, None), ANONYMOUS)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rss = _rss_kib()
            if query is BOMB:
                await asyncio.sleep(1)
            codes = [error.get("extensions", {}).get("code") for error in response.errors]
            line = {"query": "bomb" if query is BOMB else "normal", "codes": codes, "peak_growth_kib": after - before}
            print(json.dumps({**line, "rss_kib": rss, "rss_later_kib": _rss_kib()}), flush=True)
    finally:
        await gateway.stop()


def _bomb(bomb_mib: int) -> list[dict[str, Any]]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.hostile_api:app", "--port", str(port), "--log-level", "error"]
    with (
        running(command, port, env={"FEDGATE_BENCH_BOMB_MIB": str(bomb_mib)}, timeout=60),
        tempfile.TemporaryDirectory(prefix="fedgate-bench-") as directory,
    ):
        rest = {"path": "/items", "rows": "data"}
        bomb = {"name": "bomb", **TABLE, "rest": {**rest, "path": "/bomb"}}
        tables = [{"name": "items", **TABLE, "rest": rest}, bomb]
        source = {"kind": "rest", "base_url": f"http://127.0.0.1:{port}", "max_response_bytes": MIB}
        department = {"name": "api", "title": "a hostile API", "source": source, "tables": tables}
        path = Path(directory) / "hostile.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "departments": [department]}, sort_keys=False))
        probe = subprocess.run(
            [sys.executable, "-m", "bench.hostile_dependencies", "--probe", str(path)],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=120,
        )
    return [json.loads(line) for line in probe.stdout.decode().splitlines() if line.startswith('{"query"')]


# --- a stalled identity provider ----------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _IdentityProvider:
    """A JWKS and an introspection endpoint that can be made to stall."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "held", "use": "sig"}, private=True)
        self.stalled = False
        self.release = asyncio.Event()

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            if self.stalled:
                await self.release.wait()
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        async def introspect(request: Request) -> Response:
            if self.stalled:
                await self.release.wait()
            return JSONResponse({"active": False})

        return Starlette(routes=[Route("/jwks", jwks), Route("/introspect", introspect, methods=["POST"])])

    def token(self, key: RSAKey | None = None) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": "fedgate", "sub": uuid.uuid4().hex, "iat": now, "exp": now + 300}
        signing = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signing.kid}, claims, signing)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def _serving(app: Starlette) -> AsyncIterator[str]:
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _request(token: str) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers, "query_string": b""})


def _started(auth: Authenticator) -> Authenticator:
    start = getattr(auth, "start", None)  # key refreshers, where the code has them
    if start is not None:
        start()
    return auth


async def _timed(auth: Authenticator, token: str) -> tuple[float, str]:
    begun = time.perf_counter()
    try:
        await auth(_request(token))
        outcome = "ok"
    except FedgateError as error:
        outcome = error.code
    return time.perf_counter() - begun, outcome


async def _jwks(idp: _IdentityProvider, url: str) -> dict[str, Any]:
    clock = _Clock()
    settings = {"issuers": [{"issuer": ISSUER, "audiences": ["fedgate"], "jwks_uri": f"{url}/jwks"}]}
    auth = _started(Authenticator(AuthSettings.model_validate({**settings, "token_cache_seconds": 0}), clock=clock))
    try:
        await auth(_request(idp.token()))  # the keys, fetched
        healthy = await asyncio.gather(*(_timed(auth, idp.token()) for _ in range(20)))
        idp.stalled = True
        clock.now += 3600  # past auth.jwks_refresh_seconds: a refresh is due, and the endpoint stalls
        stalled = await asyncio.gather(*(_timed(auth, idp.token()) for _ in range(20)))
        clock.now += 61  # past auth.jwks_min_refresh_interval_seconds: an unknown key may ask for a fetch
        stranger = RSAKey.generate_key(2048, parameters={"kid": "rotated", "use": "sig"}, private=True)
        unknown = await _timed(auth, idp.token(stranger))
    finally:
        idp.release.set()
        await auth.close()
    return {"healthy": healthy, "stalled": stalled, "unknown": unknown}


async def _introspection(idp: _IdentityProvider, url: str) -> list[tuple[float, str]]:
    os.environ["FEDGATE_BENCH_INTROSPECTION_SECRET"] = "bench"  # noqa: S105 - a benchmark's throwaway
    introspection = {
        "endpoint": f"{url}/introspect",
        "client_id": "fedgate",
        "client_secret_env": "FEDGATE_BENCH_INTROSPECTION_SECRET",
    }
    settings = AuthSettings.model_validate({"introspection": introspection, "http_timeout_seconds": 1})
    auth = _started(Authenticator(settings))
    idp.stalled, idp.release = True, asyncio.Event()
    try:
        return [await _timed(auth, f"opaque-{number}") for number in range(10)]
    finally:
        idp.release.set()
        await auth.close()


async def _identity_provider() -> tuple[dict[str, Any], list[tuple[float, str]]]:
    idp = _IdentityProvider()
    async with _serving(idp.app()) as url:
        keys = await _jwks(idp, url)
        introspected = await _introspection(idp, url)
    return keys, introspected


def _ms(samples: Sequence[tuple[float, str]]) -> str:
    times = [seconds * 1000 for seconds, _ in samples]
    outcomes = sorted({outcome for _, outcome in samples})
    return f"median {statistics.median(times):8.1f} ms   max {max(times):8.1f} ms   {', '.join(outcomes)}"


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_dependencies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bomb-mib", type=int, default=128, help="what the gzip bomb inflates to, MiB")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        await _probe(args.probe)
        return
    lines = await asyncio.to_thread(_bomb, args.bomb_mib)
    print(f"A REST department's gzip bomb ({args.bomb_mib} MiB inflated; max_response_bytes 1 MiB), in a fresh process")
    print(f"  {'answer':<8} {'peak RSS growth':>16} {'RSS after':>10} {'RSS 1 s later':>14}   codes")
    for line in lines:
        print(
            f"  {line['query']:<8} {line['peak_growth_kib'] / 1024:>12.1f} MiB {line['rss_kib'] / 1024:>6.0f} MiB"
            f" {line['rss_later_kib'] / 1024:>10.0f} MiB   {','.join(line['codes']) or 'ok'}"
        )
    normal = max(line["peak_growth_kib"] for line in lines if line["query"] == "normal")
    bomb = lines[-1]["peak_growth_kib"]
    print(f"  the bomb's peak growth: {bomb / 1024:.1f} MiB ({bomb / max(normal, 1):.0f}x a normal answer's)")
    print()
    keys, introspected = await _identity_provider()
    print("20 tokens at once, signed with a key held (auth.http_timeout_seconds 5)")
    print(f"  JWKS endpoint healthy:                        {_ms(keys['healthy'])}")
    print(f"  refresh due, JWKS endpoint stalled:           {_ms(keys['stalled'])}")
    ratio = statistics.median(t for t, _ in keys["stalled"]) / statistics.median(t for t, _ in keys["healthy"])
    print(f"  stalled / healthy (medians):                  {ratio:.1f}x")
    print(f"  one token naming an unknown key, stalled:     {_ms([keys['unknown']])}")
    print()
    print("10 opaque tokens one after another, introspection endpoint stalled (auth.http_timeout_seconds 1)")
    print("  " + "  ".join(f"{seconds * 1000:.0f}" for seconds, _ in introspected) + "  (ms)")
    print(f"  {_ms(introspected)};  total {sum(t for t, _ in introspected):.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
