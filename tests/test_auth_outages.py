"""The identity provider stalled or hostile, against real servers on loopback and really signed tokens.

* The JWKS endpoint stalls: tokens signed with keys already held verify with no added latency; tokens
  naming an unknown key wait at most ``auth.unknown_kid_wait_seconds`` (then 503), and cause one fetch.
* The keys are fetched and refreshed by a task the application's lifespan starts and stops.
* The introspection endpoint stalls: after its breaker's threshold, requests fail at once with the 503
  ``AUTH_UNAVAILABLE`` answer (``Retry-After``: the cool-down left); after the cool-down one probe
  closes the breaker again.
* A JWKS or introspection answer that inflates far beyond ``auth.max_response_bytes`` is refused, and
  reading it costs no more than the cap.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.auth.bearer import Authenticator
from gateway.auth.config import AuthSettings, IssuerSettings
from gateway.auth.jwks import JwksCache
from gateway.errors import AuthUnavailableError
from schema.catalog import Catalog
from tests.support.bombs import MIB, bomb_response
from tests.support.servers import gateway_app, serving
from tests.test_auth_http import POLICY, write_settings
from tests.test_auth_introspection import SECRET, IntrospectionServer, active, authenticator, introspection_server
from tests.test_auth_tokens import (
    AUDIENCE,
    ISSUER,
    RSA_A,
    RSA_B,
    Clock,
    IdentityProvider,
    bearer,
    claims,
    eventually,
    identity_provider,
    sign,
    started,
)


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    async with identity_provider() as provider:
        yield provider


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[IntrospectionServer, str]]:
    async with introspection_server() as served:
        yield served


def keyed(idp: IdentityProvider, clock: Clock, **auth: Any) -> Authenticator:
    """An authenticator trusting ``idp``'s keys, started; every token verified in full (no token cache)."""
    settings = {
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": f"{idp.base_url}/jwks"}],
        "jwks_min_refresh_interval_seconds": 60,
        "token_cache_seconds": 0,
        **auth,
    }
    return started(Authenticator(AuthSettings.model_validate(settings), clock=clock))


def _refreshers() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("jwks-refresher")]


# --- a stalled JWKS endpoint -------------------------------------------------------------------------


async def test_held_keys_keep_verifying_while_the_jwks_endpoint_stalls(idp: IdentityProvider) -> None:
    """The periodic refresh is due and the issuer hangs: not one request waits for it. (It used to run inside
    the request that found it due, and every verification queued behind it for the whole timeout.)"""
    clock = Clock()
    auth = keyed(idp, clock, http_timeout_seconds=5)
    await auth(bearer(sign(claims())))
    idp.stalled = True
    clock.now += 3600  # past jwks_refresh_seconds
    begun = time.perf_counter()
    first = asyncio.ensure_future(auth(bearer(sign(claims()))))  # the request that finds the refresh due
    await eventually(lambda: idp.fetches == 2)  # the refresh has reached the issuer, and hangs there
    others = await asyncio.gather(*(auth(bearer(sign(claims(sub=f"user-{n}")))) for n in range(20)))
    principal = await first
    elapsed = time.perf_counter() - begun
    assert principal.subject == "user-1"
    assert [other.subject for other in others] == [f"user-{n}" for n in range(20)]
    assert elapsed < 2.0, f"21 requests with held keys took {elapsed:.2f} s while the JWKS endpoint stalled"
    await auth.close()


async def test_an_unknown_kid_waits_at_most_the_short_bound(idp: IdentityProvider) -> None:
    """Tokens naming a key not held (the issuer rotated) wait for one fetch, no longer than
    unknown_kid_wait_seconds: a stalled issuer costs them half a second and a 503, not the whole timeout."""
    clock = Clock()
    auth = keyed(idp, clock, http_timeout_seconds=5, unknown_kid_wait_seconds=0.5)
    await auth(bearer(sign(claims())))
    idp.keys, idp.stalled = [RSA_A, RSA_B], True  # the issuer rotates, and stalls
    clock.now += 61  # past the minimum interval: an unknown kid may have the keys fetched again
    begun = time.perf_counter()
    results = await asyncio.gather(*(auth(bearer(sign(claims(), RSA_B))) for _ in range(10)), return_exceptions=True)
    elapsed = time.perf_counter() - begun
    assert all(isinstance(result, AuthUnavailableError) for result in results), results
    assert 0.45 <= elapsed < 1.5, f"unknown kids waited {elapsed:.2f} s (bound 0.5 s, timeout 5 s)"
    assert idp.fetches == 2  # ten requests, one fetch
    begun = time.perf_counter()
    assert (await auth(bearer(sign(claims())))).subject == "user-1"  # the held key: no wait at all
    assert time.perf_counter() - begun < 0.5
    idp.release.set()  # the issuer answers the fetch in flight, with the rotated keys
    assert (await auth(bearer(sign(claims(), RSA_B)))).subject == "user-1"
    assert idp.fetches == 2
    await auth.close()


# --- the refresher's life ----------------------------------------------------------------------------


async def test_the_refresher_refreshes_on_its_own_until_stopped(idp: IdentityProvider) -> None:
    issuer = IssuerSettings.model_validate(
        {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": f"{idp.base_url}/jwks"}
    )
    async with httpx.AsyncClient() as client:
        keys = JwksCache(
            issuer,
            client,
            refresh_seconds=0.1,
            min_refresh_interval=0.05,
            unknown_kid_wait=1,
            timeout=1,
            max_bytes=64 * 1024,
        )
        keys.start()
        await eventually(lambda: idp.fetches >= 3)  # no request asked: it fetches every refresh_seconds
        assert len(_refreshers()) == 1
        await keys.stop()
        assert _refreshers() == []
        fetched = idp.fetches
        await asyncio.sleep(0.3)
        assert idp.fetches == fetched


async def test_the_application_fetches_keys_at_start_up_and_stops_its_refresher(
    idp: IdentityProvider, sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    idp.issuer = idp.base_url  # found by discovery
    write_settings(tmp_path, sqlite_clinic, int(idp.base_url.rsplit(":", 1)[1]))
    async with serving(gateway_app(tmp_path / "fedgate.yaml")) as url:
        await eventually(lambda: idp.fetches == 1)  # at start-up, before any request
        token = sign(claims(iss=idp.base_url, scope="clinic.full"), typ="at+jwt")
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{url}/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {token}"}
            )
        assert response.status_code == 200, response.text
        assert idp.fetches == 1  # the request found the keys held
        assert len(_refreshers()) == 1
    assert _refreshers() == []


# --- a stalled introspection endpoint ----------------------------------------------------------------


async def test_a_stalled_introspection_endpoint_opens_its_breaker_then_one_probe_closes_it(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base_url = endpoint
    server.stalled = True
    clock = Clock()
    auth = authenticator(base_url, monkeypatch, auth={"http_timeout_seconds": 1}, clock=clock)
    # The breaker's default threshold: five calls that each wait out the timeout...
    stalled = await asyncio.gather(*(auth(bearer(f"opaque-{n}")) for n in range(5)), return_exceptions=True)
    assert all(isinstance(result, AuthUnavailableError) for result in stalled), stalled
    assert server.calls == 5
    # ...then requests fail at once, without calling the endpoint, saying when to come back.
    begun = time.perf_counter()
    with pytest.raises(AuthUnavailableError) as refused:
        await auth(bearer("opaque-5"))
    assert time.perf_counter() - begun < 0.5
    assert server.calls == 5
    assert refused.value.retry_after == pytest.approx(10)
    # The cool-down passes and the endpoint answers again: one probe, and the breaker is closed.
    server.stalled = False
    server.release.set()
    server.tokens["opaque-ok"] = active()
    clock.now += 10
    assert (await auth(bearer("opaque-ok"))).subject == "worker-7"
    server.tokens["opaque-ok-2"] = active(sub="worker-8")
    assert (await auth(bearer("opaque-ok-2"))).subject == "worker-8"
    assert server.calls == 7
    await auth.close()


async def test_an_open_breaker_is_the_503_auth_unavailable_answer(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch, sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    server, base_url = endpoint
    server.stalled = True
    monkeypatch.setenv("FEDGATE_INTROSPECTION_SECRET", SECRET)
    (tmp_path / "catalog.yaml").write_text(
        yaml.safe_dump(sqlite_clinic.model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    shutil.copy(POLICY, tmp_path / "policy.yaml")
    introspection = {
        "endpoint": f"{base_url}/introspect",
        "client_id": "fedgate",
        "client_secret_env": "FEDGATE_INTROSPECTION_SECRET",
    }
    document = {
        "catalog": "catalog.yaml",
        "policy": {"file": "policy.yaml"},
        "auth": {"introspection": introspection, "http_timeout_seconds": 1},
        "purposes": {"required": False},
        "agreements": {"required": False},
        "audit": {"enabled": False},
        "logging": {"format": "console", "level": "warning"},
    }
    (tmp_path / "fedgate.yaml").write_text(yaml.safe_dump(document))
    async with serving(gateway_app(tmp_path / "fedgate.yaml")) as url, httpx.AsyncClient() as http:

        async def ask(token: str) -> httpx.Response:
            return await http.post(
                f"{url}/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {token}"}
            )

        stalled = await asyncio.gather(*(ask(f"opaque-{n}") for n in range(5)))
        assert [response.status_code for response in stalled] == [503] * 5
        begun = time.perf_counter()
        response = await ask("opaque-5")
        elapsed = time.perf_counter() - begun
    assert elapsed < 0.5, f"{elapsed:.2f} s with the breaker open (each call's timeout: 1 s)"
    assert server.calls == 5
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "AUTH_UNAVAILABLE"
    assert 9 <= int(response.headers["retry-after"]) <= 10  # the cool-down left
    assert "www-authenticate" not in response.headers


# --- answers that inflate beyond the cap ---------------------------------------------------------------


async def test_a_jwks_bomb_is_refused_holding_no_more_than_the_cap(idp: IdentityProvider) -> None:
    """130 KiB that inflate to 128 MiB, against auth.max_response_bytes (512 KiB): 503, and never held."""
    idp.answer = bomb_response(128 * MIB)
    tracemalloc.start()
    try:
        auth = keyed(idp, Clock())
        with pytest.raises(AuthUnavailableError):
            await auth(bearer(sign(claims())))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB while reading a JWKS bomb"
    assert idp.headers["accept-encoding"] == "gzip, deflate"
    await auth.close()


async def test_an_introspection_bomb_is_refused_holding_no_more_than_the_cap(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base_url = endpoint
    server.answer = bomb_response(128 * MIB)
    auth = authenticator(base_url, monkeypatch)
    tracemalloc.start()
    try:
        with pytest.raises(AuthUnavailableError):
            await auth(bearer("opaque-1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB while reading an introspection bomb"
    await auth.close()
