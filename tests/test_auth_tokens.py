"""The resource server against really signed tokens and a real JWKS endpoint on loopback.

Every attack named in RFC 8725 that applies to a resource server is tried and must be refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.bearer import Authenticator
from gateway.auth.config import AuthSettings
from gateway.errors import (
    AuthUnavailableError,
    InvalidAuthRequestError,
    InvalidTokenError,
    MissingTokenError,
)
from tests.support.servers import serving

ISSUER = "https://idp.example.test/realms/nhs"
AUDIENCE = "fedgate"


def _key(kind: str, kid: str) -> Any:
    parameters = {"kid": kid, "use": "sig"}
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    if kind == "EC":
        return ECKey.generate_key("P-256", parameters=parameters, private=True)
    return OKPKey.generate_key("Ed25519", parameters=parameters, private=True)


@dataclass
class IdentityProvider:
    """A JWKS endpoint whose keys the tests change, counting how often it is fetched."""

    keys: list[Any] = field(default_factory=list)
    fetches: int = 0
    failing: bool = False
    base_url: str = ""
    #: The issuer its discovery document claims (the tests set it to the server's own URL).
    issuer: str = ISSUER
    #: Stalled: a JWKS request gets no answer until ``release`` is set (at the latest when the test ends).
    stalled: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    #: Any other answer to give instead of the keys (a gzip bomb, say).
    answer: Response | None = None
    #: The headers of the last JWKS request.
    headers: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.fetches += 1
            self.headers = dict(request.headers)
            if self.stalled:
                await self.release.wait()
            if self.failing:
                return Response("unavailable", status_code=503)
            if self.answer is not None:
                return self.answer
            return JSONResponse({"keys": [key.as_dict(private=False) for key in self.keys]})

        async def discovery(request: Request) -> Response:
            return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.base_url}/jwks"})

        return Starlette(routes=[Route("/jwks", jwks), Route("/.well-known/openid-configuration", discovery)])


RSA_A = _key("RSA", "rsa-a")
RSA_B = _key("RSA", "rsa-b")
EC_KEY = _key("EC", "ec-1")
ED_KEY = _key("OKP", "ed-1")
ATTACKER = _key("RSA", "rsa-a")  # the same kid as a real key: kid is only a look-up key


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "client_id": "gp-app",
        "scope": "health.read dwp.read",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "org": "B86001",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def sign(payload: dict[str, Any], key: Any = RSA_A, alg: str = "RS256", **header: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, payload, key, algorithms=[alg])


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def request_with(*headers: tuple[str, str], query: str = "") -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "query_string": query.encode(),
    }
    return Request(scope)


def bearer(token: str) -> Request:
    return request_with(("authorization", f"Bearer {token}"))


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    async with identity_provider() as provider:
        yield provider


@contextlib.asynccontextmanager
async def identity_provider() -> AsyncIterator[IdentityProvider]:
    """An :class:`IdentityProvider` holding RSA_A, EC_KEY and ED_KEY, served until the block ends."""
    provider = IdentityProvider(keys=[RSA_A, EC_KEY, ED_KEY])
    async with serving(provider.app()) as base_url:
        provider.base_url = base_url
        try:
            yield provider
        finally:
            provider.release.set()  # a stalled request must end for the server to stop


class Clock:
    """A clock the tests move forward (monotonic by default; ``start=time.time()`` for a wall clock)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def authenticator(
    idp: IdentityProvider,
    clock: Clock | None = None,
    *,
    wall: Clock | None = None,
    token_cache_seconds: int = 60,
    **issuer: Any,
) -> Authenticator:
    settings = {
        "issuers": [
            {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "jwks_uri": f"{idp.base_url}/jwks",
                "claims": {"attributes": {"org_code": "org"}},
                **issuer,
            }
        ],
        "jwks_min_refresh_interval_seconds": 60,
        "token_cache_seconds": token_cache_seconds,
    }
    return started(
        Authenticator(AuthSettings.model_validate(settings), clock=clock or Clock(), wall_clock=wall or time.time)
    )


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition`` holds (what a background task does takes a few turns of the loop)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


def started(auth: Authenticator) -> Authenticator:
    """``auth`` with its key refreshers running, as the application's lifespan starts them."""
    auth.start()
    return auth


async def test_a_valid_token_becomes_a_principal(idp: IdentityProvider) -> None:
    auth = authenticator(idp)
    principal = await auth(bearer(sign(claims())))
    assert principal.subject == "user-1"
    assert principal.client_id == "gp-app"
    assert principal.scopes == {"health.read", "dwp.read"}
    assert principal.attributes == {"org_code": "B86001"}
    assert principal.issuer == ISSUER
    await auth.close()


@pytest.mark.parametrize(("key", "alg"), [(RSA_A, "PS256"), (EC_KEY, "ES256"), (ED_KEY, "Ed25519")])
async def test_each_allowed_algorithm(idp: IdentityProvider, key: Any, alg: str) -> None:
    auth = authenticator(idp)
    assert (await auth(bearer(sign(claims(), key, alg)))).subject == "user-1"
    await auth.close()


async def test_eddsa_is_accepted_though_rfc_9864_deprecates_the_name(idp: IdentityProvider) -> None:
    auth = authenticator(idp)
    with pytest.warns(SecurityWarning, match="EdDSA"):
        assert (await auth(bearer(sign(claims(), ED_KEY, "EdDSA")))).subject == "user-1"
    await auth.close()


async def _refused(auth: Authenticator, token: str, phrase: str) -> None:
    with pytest.raises(InvalidTokenError) as raised:
        await auth(bearer(token))
    assert raised.value.message == phrase
    assert raised.value.challenge("fedgate").startswith('Bearer realm="fedgate", error="invalid_token"')
    await auth.close()


async def test_an_algorithm_outside_the_issuers_list(idp: IdentityProvider) -> None:
    await _refused(
        authenticator(idp, algorithms=["ES256"]), sign(claims()), "the token's signing algorithm is not accepted"
    )


async def test_expired_not_yet_valid_and_issued_in_the_future(idp: IdentityProvider) -> None:
    now = int(time.time())
    await _refused(authenticator(idp), sign(claims(exp=now - 120)), "the token has expired")
    await _refused(authenticator(idp), sign(claims(nbf=now + 600)), "the token is not valid yet")
    await _refused(authenticator(idp), sign(claims(iat=now + 600)), "the token was issued in the future")
    # Within the leeway (30 s by default) a just-expired token still passes.
    auth = authenticator(idp)
    assert (await auth(bearer(sign(claims(exp=now - 5))))).subject == "user-1"
    await auth.close()


async def test_wrong_issuer_and_wrong_audience(idp: IdentityProvider) -> None:
    await _refused(authenticator(idp), sign(claims(iss="https://evil.example")), "the token's issuer is not trusted")
    await _refused(authenticator(idp), sign(claims(aud="another-api")), "the token is not meant for this service")
    auth = authenticator(idp)
    assert (await auth(bearer(sign(claims(aud=["another-api", AUDIENCE]))))).subject == "user-1"
    await auth.close()


async def test_missing_required_claims(idp: IdentityProvider) -> None:
    await _refused(authenticator(idp), sign(claims(exp=None)), "the token lacks a required claim")
    await _refused(authenticator(idp), sign(claims(sub=None)), "the token lacks a required claim")


async def test_unknown_kid_then_rotated_key(idp: IdentityProvider) -> None:
    clock = Clock()
    auth = authenticator(idp, clock)
    assert (await auth(bearer(sign(claims())))).subject == "user-1"
    assert idp.fetches == 1
    idp.keys = [RSA_B]  # the issuer rotates its key...
    clock.now += 61  # ...after the minimum refresh interval
    assert (await auth(bearer(sign(claims(), RSA_B)))).subject == "user-1"
    assert idp.fetches == 2
    await auth.close()


async def test_a_flood_of_unknown_kids_does_not_hammer_the_issuer(idp: IdentityProvider) -> None:
    clock = Clock()
    auth = authenticator(idp, clock)
    await auth(bearer(sign(claims())))
    strangers = [_key("RSA", uuid.uuid4().hex) for _ in range(3)]
    for index in range(60):
        with pytest.raises(InvalidTokenError, match="unknown key"):
            await auth(bearer(sign(claims(), strangers[index % 3])))
    assert idp.fetches == 1  # within the minimum interval, unknown kids trigger no fetch at all
    clock.now += 61
    for index in range(60):
        with pytest.raises(InvalidTokenError, match="unknown key"):
            await auth(bearer(sign(claims(), strangers[index % 3])))
    assert idp.fetches == 2  # one refresh per interval, however many tokens
    await auth.close()


async def test_tampered_payload(idp: IdentityProvider) -> None:
    header, _, signature = sign(claims()).split(".")
    forged = claims(scope="health.read dwp.read fedgate:explain admin")
    await _refused(authenticator(idp), f"{header}.{_b64(forged)}.{signature}", "the token's signature is invalid")


async def test_alg_none(idp: IdentityProvider) -> None:
    token = f"{_b64({'alg': 'none', 'kid': 'rsa-a'})}.{_b64(claims())}."
    await _refused(authenticator(idp), token, "the token's signing algorithm is not accepted")


def _handmade(header: dict[str, Any], payload: dict[str, Any], sign_input: Any) -> str:
    """A token built byte by byte, for headers and algorithms no honest library will produce."""
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    signature = base64.urlsafe_b64encode(sign_input(signing_input.encode())).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


async def test_rs256_to_hs256_key_confusion(idp: IdentityProvider) -> None:
    """HMAC-signed with the issuer's *public* key as the secret, as a confused verifier would check it."""
    public_pem = RSA_A.as_pem(private=False)
    token = _handmade(
        {"alg": "HS256", "kid": "rsa-a"}, claims(), lambda data: hmac.new(public_pem, data, hashlib.sha256).digest()
    )
    await _refused(authenticator(idp), token, "the token's signing algorithm is not accepted")
    # Even an issuer misconfigured to list only HS256 could not be configured: HMAC is not accepted at all.
    with pytest.raises(ValueError, match="HS256"):
        authenticator(idp, algorithms=["HS256"])


async def test_token_supplied_keys_are_ignored(idp: IdentityProvider) -> None:
    """jwk / jku / x5u in the header must never be used: the attacker's own key signs these tokens."""
    attacker_jwk = ATTACKER.as_dict(private=False)
    await _refused(authenticator(idp), sign(claims(), ATTACKER, jwk=attacker_jwk), "the token's signature is invalid")
    fetches = idp.fetches
    token = sign(claims(), ATTACKER, jku=f"{idp.base_url}/jwks?attacker=1", x5u="https://evil.example/cert")
    await _refused(authenticator(idp), token, "the token's signature is invalid")
    assert idp.fetches == fetches + 1  # only the configured JWKS URI, once, for the new authenticator


def _signed_text(header: str, payload: str) -> str:
    """A token signed with the issuer's real key over header and payload JSON written as given."""
    encode = lambda text: base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()  # noqa: E731
    signing_input = f"{encode(header)}.{encode(payload)}"
    signature = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), RSA_A)
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_a_member_named_twice_makes_a_correctly_signed_token_invalid(idp: IdentityProvider) -> None:
    """Issuer, proxy and fedgate could each read a different 'scope': the token is refused, not guessed at."""
    payload = json.dumps(claims(scope="health.read"))
    header = '{"alg": "RS256", "kid": "rsa-a"}'
    assert (await authenticator(idp)(bearer(_signed_text(header, payload)))).scopes == {"health.read"}
    twice = payload[:-1] + ', "scope": "health.read fedgate:explain"}'
    await _refused(authenticator(idp), _signed_text(header, twice), "the token is malformed")
    nested = payload[:-1] + ', "act": {"sub": "a", "sub": "b"}}'
    await _refused(authenticator(idp), _signed_text(header, nested), "the token is malformed")
    await _refused(authenticator(idp), _signed_text('{"alg": "RS256", "kid": "rsa-a", "alg": "RS256"}', payload),
                   "the token is malformed")  # fmt: skip
    await _refused(authenticator(idp), _signed_text(header, payload[:-1] + ', "n": NaN}'), "the token is malformed")


async def test_unknown_critical_headers_are_refused(idp: IdentityProvider) -> None:
    header = {"alg": "RS256", "kid": "rsa-a", "crit": ["urn:example:mandatory"], "urn:example:mandatory": True}
    rs256 = JWSRegistry.algorithms["RS256"]
    token = _handmade(header, claims(), lambda data: rs256.sign(data, RSA_A))
    await _refused(authenticator(idp), token, "the token uses critical extensions fedgate does not support")


async def test_rfc9068_issuers_require_at_jwt(idp: IdentityProvider) -> None:
    await _refused(
        authenticator(idp, profile="rfc9068"),
        sign(claims(), typ="JWT"),
        "the token is not a JWT access token (typ at+jwt)",
    )
    auth = authenticator(idp, profile="rfc9068")
    assert (await auth(bearer(sign(claims(), typ="at+jwt")))).client_id == "gp-app"
    await auth.close()
    await _refused(
        authenticator(idp, profile="rfc9068"), sign(claims(jti=None), typ="at+jwt"), "the token lacks a required claim"
    )


async def test_oversized_tokens_are_refused_before_decoding(idp: IdentityProvider) -> None:
    token = sign(claims(padding="x" * 10_000))
    await _refused(authenticator(idp), token, "the token is too large")
    assert idp.fetches == 0


async def test_scp_arrays_and_malformed_scopes(idp: IdentityProvider) -> None:
    auth = authenticator(idp, claims={"scopes": "scp"})
    principal = await auth(bearer(sign(claims(scp=["a", "b"]))))
    assert principal.scopes == {"a", "b"}
    await auth.close()
    await _refused(authenticator(idp), sign(claims(scope=["not", "a", "string"])), "the token's scopes are malformed")


@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        ((), "", MissingTokenError),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "", MissingTokenError),
        ((("authorization", "Bearer"),), "", InvalidAuthRequestError),
        ((("authorization", "Bearer a b"),), "", InvalidAuthRequestError),
        ((("authorization", "Bearer x"), ("authorization", "Bearer y")), "", InvalidAuthRequestError),
        ((), "access_token=abc", InvalidAuthRequestError),
    ],
)
async def test_malformed_requests(
    idp: IdentityProvider, headers: tuple[tuple[str, str], ...], query: str, error: type[Exception]
) -> None:
    auth = authenticator(idp)
    with pytest.raises(error):
        await auth(request_with(*headers, query=query))
    await auth.close()


async def test_unreachable_keys_fail_closed_then_recover(idp: IdentityProvider) -> None:
    idp.failing = True
    clock = Clock()
    auth = authenticator(idp, clock)
    with pytest.raises(AuthUnavailableError):
        await auth(bearer(sign(claims())))
    idp.failing = False
    assert (await auth(bearer(sign(claims())))).subject == "user-1"
    await auth.close()


async def test_cached_keys_survive_an_outage(idp: IdentityProvider) -> None:
    clock = Clock()
    auth = authenticator(idp, clock)
    await auth(bearer(sign(claims())))
    idp.failing = True
    clock.now += 3600  # past jwks_refresh_seconds: a refresh is due; this request has it done, in the background
    assert (await auth(bearer(sign(claims())))).subject == "user-1"
    await eventually(lambda: idp.fetches == 2)  # it was, and it failed
    assert (await auth(bearer(sign(claims())))).subject == "user-1"
    assert idp.fetches == 2  # a failed refresh is retried after jwks_min_refresh_interval, not per request
    await auth.close()


async def test_discovery_finds_the_jwks(idp: IdentityProvider) -> None:
    idp.issuer = idp.base_url
    settings = AuthSettings.model_validate({"issuers": [{"issuer": idp.base_url, "audiences": [AUDIENCE]}]})
    auth = started(Authenticator(settings))
    assert (await auth(bearer(sign(claims(iss=idp.base_url))))).issuer == idp.base_url
    assert idp.fetches == 1
    await auth.close()


async def test_discovery_metadata_for_another_issuer_fails_closed(idp: IdentityProvider) -> None:
    settings = AuthSettings.model_validate({"issuers": [{"issuer": idp.base_url, "audiences": [AUDIENCE]}]})
    auth = started(Authenticator(settings))  # the metadata claims ISSUER, not the configured issuer
    with pytest.raises(AuthUnavailableError):
        await auth(bearer(sign(claims(iss=idp.base_url))))
    assert idp.fetches == 0
    await auth.close()


async def test_tokens_and_claims_never_reach_the_logs(idp: IdentityProvider) -> None:
    token = sign(claims(exp=int(time.time()) - 3600))
    with structlog.testing.capture_logs() as logs:
        auth = authenticator(idp)
        with pytest.raises(InvalidTokenError):
            await auth(bearer(token))
        await auth(bearer(sign(claims())))
        await auth.close()
    text = json.dumps(logs, default=str)
    assert token[:40] not in text
    assert "B86001" not in text
    assert "user-1" not in text


async def test_several_issuers_each_with_their_own_keys(idp: IdentityProvider) -> None:
    council = IdentityProvider(keys=[RSA_B])
    async with serving(council.app()) as council_url:
        settings = AuthSettings.model_validate(
            {
                "issuers": [
                    {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": f"{idp.base_url}/jwks"},
                    {
                        "issuer": "https://idp.council.example",
                        "audiences": [AUDIENCE],
                        "jwks_uri": f"{council_url}/jwks",
                    },
                ]
            }
        )
        auth = started(Authenticator(settings, clock=Clock()))
        nhs = await auth(bearer(sign(claims())))
        council_principal = await auth(bearer(sign(claims(iss="https://idp.council.example"), RSA_B)))
        assert (nhs.issuer, council_principal.issuer) == (ISSUER, "https://idp.council.example")
        with pytest.raises(InvalidTokenError, match="unknown key"):
            # The council's key cannot vouch for a token claiming to come from the NHS issuer.
            await auth(bearer(sign(claims(), RSA_B)))
        await auth.close()


class CountingVerifier:
    """Wraps the authenticator's JWT verifier to count full verifications (signature and claims)."""

    def __init__(self, auth: Authenticator) -> None:
        assert auth.jwt is not None
        self.verify, self.calls = auth.jwt.verify, 0
        auth.jwt.verify = self  # type: ignore[method-assign]

    async def __call__(self, token: str) -> Any:
        self.calls += 1
        return await self.verify(token)


async def test_a_repeated_token_is_verified_once_until_the_cache_time_passes(idp: IdentityProvider) -> None:
    wall = Clock(start=time.time())
    auth = authenticator(idp, wall=wall, token_cache_seconds=60)
    counter = CountingVerifier(auth)
    token = sign(claims(exp=int(wall.now) + 3600))
    first, second = await auth(bearer(token)), await auth(bearer(token))
    assert (first.subject, second.subject, counter.calls) == ("user-1", "user-1", 1)
    assert second.token is not None and second.token.get_secret_value() == token
    wall.now += 61
    assert (await auth(bearer(token))).subject == "user-1"
    assert counter.calls == 2
    await auth.close()


async def test_a_cached_token_is_forgotten_when_it_expires(idp: IdentityProvider) -> None:
    wall = Clock(start=time.time())
    auth = authenticator(idp, wall=wall, token_cache_seconds=3600)
    counter = CountingVerifier(auth)
    token = sign(claims(exp=int(wall.now) + 5))
    await auth(bearer(token))
    wall.now += 6  # past the token's exp, within the cache time: it must be verified again
    await auth(bearer(token))
    assert counter.calls == 2
    await auth.close()


async def test_no_cache_verifies_every_time(idp: IdentityProvider) -> None:
    auth = authenticator(idp, token_cache_seconds=0)
    counter = CountingVerifier(auth)
    token = sign(claims())
    for _ in range(3):
        await auth(bearer(token))
    assert counter.calls == 3
    await auth.close()


async def test_a_cached_token_does_not_vouch_for_a_tampered_copy(idp: IdentityProvider) -> None:
    auth = authenticator(idp, token_cache_seconds=60)
    token = sign(claims())
    await auth(bearer(token))
    header, payload, signature = token.split(".")
    forged = _b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "scope": "everything"})
    with pytest.raises(InvalidTokenError, match="signature is invalid"):  # same signature, other claims
        await auth(bearer(f"{header}.{forged}.{signature}"))
    other = sign(claims(), ATTACKER).split(".")[2]
    # same header and claims, another signature: the cache must key on the whole token, signature included
    await _refused(auth, f"{header}.{payload}.{other}", "the token's signature is invalid")


async def test_a_refused_token_is_not_remembered(idp: IdentityProvider) -> None:
    auth = authenticator(idp, token_cache_seconds=60)
    counter = CountingVerifier(auth)
    token = sign(claims(), ATTACKER)
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            await auth(bearer(token))
    assert counter.calls == 2
    await auth.close()
