"""Opaque tokens checked by RFC 7662 introspection against a real endpoint on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.bearer import Authenticator
from gateway.auth.config import AuthSettings
from gateway.errors import AuthUnavailableError, InvalidTokenError
from tests.support.servers import serving
from tests.test_auth_tokens import bearer

SECRET = "introspection-secret"


@dataclass
class IntrospectionServer:
    """Answers for the tokens it knows, checking fedgate's client credentials on every call."""

    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0
    failing: bool = False
    #: Answer with the stored record even after its exp (to test fedgate's own expiry check).
    stale: bool = False
    #: Raw JSON text to answer with for a token, instead of its record (for answers no encoder writes).
    raw: dict[str, str] = field(default_factory=dict)
    #: Stalled: a call gets no answer until ``release`` is set (at the latest when the test ends).
    stalled: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    #: Any other answer to give to every call (a gzip bomb, say).
    answer: Response | None = None

    def app(self) -> Starlette:
        async def introspect(request: Request) -> Response:
            self.calls += 1
            if self.stalled:
                await self.release.wait()
            if self.failing:
                return Response("down", status_code=500)
            if self.answer is not None:
                return self.answer
            expected = "Basic " + base64.b64encode(f"fedgate:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            form = parse_qs((await request.body()).decode())
            if form.get("token", [""])[0] in self.raw:
                return Response(self.raw[form["token"][0]], media_type="application/json")
            answer = self.tokens.get(form.get("token", [""])[0], {"active": False})
            if answer.get("exp", float("inf")) < time.time() and not self.stale:
                answer = {"active": False}  # a real authorization server stops vouching for expired tokens
            return JSONResponse(answer)

        return Starlette(routes=[Route("/introspect", introspect, methods=["POST"])])


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[IntrospectionServer, str]]:
    async with introspection_server() as served:
        yield served


@contextlib.asynccontextmanager
async def introspection_server() -> AsyncIterator[tuple[IntrospectionServer, str]]:
    """An :class:`IntrospectionServer` and its base URL, served until the block ends."""
    server = IntrospectionServer()
    async with serving(server.app()) as base_url:
        try:
            yield server, base_url
        finally:
            server.release.set()  # a stalled call must end for the server to stop


def authenticator(
    base_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    auth: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    **extra: Any,
) -> Authenticator:
    """An authenticator introspecting at ``base_url``; ``auth`` holds more ``auth`` settings, ``extra`` more
    ``auth.introspection`` ones; ``clock`` paces the endpoint's breaker."""
    monkeypatch.setenv("FEDGATE_INTROSPECTION_SECRET", SECRET)
    settings: dict[str, Any] = {
        **(auth or {}),
        "introspection": {
            "endpoint": f"{base_url}/introspect",
            "client_id": "fedgate",
            "client_secret_env": "FEDGATE_INTROSPECTION_SECRET",
            "issuer": "https://council.example.gov.uk",
            "audiences": ["fedgate"],
            "claims": {"attributes": {"org_code": "org"}},
            **extra,
        },
    }
    return Authenticator(AuthSettings.model_validate(settings), clock=clock)


def active(**overrides: Any) -> dict[str, Any]:
    answer = {
        "active": True,
        "sub": "worker-7",
        "client_id": "case-app",
        "scope": "social_care.casework",
        "exp": int(time.time()) + 300,
        "iss": "https://council.example.gov.uk",
        "aud": "fedgate",
        "org": "E08000035",
    }
    answer.update(overrides)
    return answer


async def test_an_active_token_is_cached_until_reuse(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base_url = endpoint
    server.tokens["opaque-1"] = active()
    auth = authenticator(base_url, monkeypatch)
    principal = await auth(bearer("opaque-1"))
    assert (principal.subject, principal.client_id, principal.scopes) == (
        "worker-7",
        "case-app",
        {"social_care.casework"},
    )
    assert principal.attributes == {"org_code": "E08000035"}
    await auth(bearer("opaque-1"))
    assert server.calls == 1  # the second use came from the cache
    await auth.close()


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ({"active": False}, "the token is not active"),
        (active(exp=int(time.time()) - 3600), "the token has expired"),
        (active(iss="https://elsewhere.example"), "the token's issuer is not trusted"),
        (active(aud="another-api"), "the token is not meant for this service"),
        (active(nbf=int(time.time()) + 3600), "the token is not valid yet"),
    ],
)
async def test_refusals(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], phrase: str
) -> None:
    server, base_url = endpoint
    server.stale = True
    server.tokens["opaque-2"] = answer
    auth = authenticator(base_url, monkeypatch)
    with pytest.raises(InvalidTokenError) as raised:
        await auth(bearer("opaque-2"))
    assert raised.value.message == phrase
    await auth.close()


async def test_the_cache_never_outlives_the_token(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base_url = endpoint
    expires = int(time.time()) + 2  # at least a second away: the first two calls come before it
    server.tokens["short"] = active(exp=expires)
    auth = authenticator(base_url, monkeypatch)
    await auth(bearer("short"))
    await auth(bearer("short"))
    assert server.calls == 1
    time.sleep(expires - time.time() + 0.1)  # the token's exp passes: the cached answer must not be used
    with pytest.raises(InvalidTokenError, match="not active"):
        await auth(bearer("short"))
    assert server.calls == 2
    await auth.close()


async def test_an_unreachable_endpoint_fails_closed(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base_url = endpoint
    server.failing = True
    auth = authenticator(base_url, monkeypatch)
    with pytest.raises(AuthUnavailableError):
        await auth(bearer("opaque-3"))
    await auth.close()
    closed = authenticator("http://127.0.0.1:1", monkeypatch)
    with pytest.raises(AuthUnavailableError):
        await closed(bearer("opaque-3"))
    await closed.close()


async def test_an_answer_naming_a_member_twice_refuses_the_token(
    endpoint: tuple[IntrospectionServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which of two 'scope' (or 'active') members did the issuer mean? Neither is trusted: 401, not a guess."""
    server, base_url = endpoint
    text = json.dumps(active(scope="social_care.casework"))
    server.raw["twice"] = text[:-1] + ', "scope": "social_care.casework fedgate:explain"}'
    server.raw["inactive-then-active"] = '{"active": false, ' + text[1:]
    server.raw["broken"] = text[:-1]
    auth = authenticator(base_url, monkeypatch)
    for token in ("twice", "inactive-then-active"):
        with pytest.raises(InvalidTokenError) as raised:
            await auth(bearer(token))
        assert raised.value.http_status == 401
        assert raised.value.message == "the token's introspection answer is ambiguous"
    with pytest.raises(AuthUnavailableError):  # not JSON at all: the issuer is broken, not the token
        await auth(bearer("broken"))
    await auth.close()
