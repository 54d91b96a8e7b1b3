"""The resource server: every request to /graphql is authenticated here (RFC 6750).

Only the ``Authorization: Bearer <token>`` header is accepted. A token in the URL (``access_token``)
is refused: URLs end up in logs and browser history. JWTs are verified locally against the issuer's
keys (:mod:`gateway.auth.tokens`); other tokens are introspected (:mod:`gateway.auth.introspection`).
Tokens and claim sets are never logged.

The issuers' keys are kept fresh by background refreshers (:mod:`gateway.auth.jwks`) that the
application's lifespan starts (:meth:`Authenticator.start`) and stops (:meth:`Authenticator.close`).
The JWKS refreshers and the introspection calls use separate connection pools, so a stalled
introspection endpoint cannot starve key refreshes of connections, nor the other way round.

A JWT that passed every check is remembered by its SHA-256 (never the token itself as the key) until it
expires or ``auth.token_cache_seconds`` pass, whichever is sooner: a client repeating its token, which
is what clients do, costs one hash instead of a signature check. Tokens that fail are not remembered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable

import httpx
from cachetools import TLRUCache
from pydantic import SecretStr
from starlette.requests import Request

from adapters.http_body import ACCEPT_ENCODING
from gateway.auth.config import AuthSettings
from gateway.auth.introspection import Introspector
from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import JwtVerifier, looks_like_jwt
from gateway.errors import InvalidAuthRequestError, InvalidTokenError, MissingTokenError
from gateway.metrics import CacheCounter
from gateway.principal import Principal

#: RFC 6750 §2.1 b64token.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def bearer_token(request: Request) -> str:
    """The request's bearer token; :class:`MissingTokenError` or :class:`InvalidAuthRequestError` otherwise."""
    if request.scope.get("query_string") and "access_token" in request.query_params:
        raise InvalidAuthRequestError("send the token in the Authorization header, not in the URL")
    headers = request.headers.getlist("authorization")
    if not headers:
        raise MissingTokenError("a bearer token is required")
    if len(headers) > 1:
        raise InvalidAuthRequestError("send exactly one Authorization header")
    scheme, _, credentials = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError("a bearer token is required")
    credentials = credentials.strip()
    if not credentials or not _B64TOKEN.match(credentials):
        raise InvalidAuthRequestError("the Authorization header must be 'Bearer <token>'")
    return credentials


_Verified = tuple[Principal, float]

_TOKEN_CACHE = CacheCounter("token")


def _until(key: bytes, entry: _Verified, now: float) -> float:
    return entry[1]


class Authenticator:
    """Turns a request's bearer token into a :class:`Principal`; one per gateway."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` (monotonic seconds) paces key refreshes and the introspection breaker, ``wall_clock``
        (epoch seconds) ages verified tokens; tests pass their own."""
        self.settings = settings
        self.wall_clock = wall_clock
        self._verified: TLRUCache[bytes, _Verified] = TLRUCache(
            maxsize=settings.token_cache_size, ttu=_until, timer=wall_clock
        )
        self._jwks_client = _client(settings)
        self._introspection_client = _client(settings)
        caches = {
            issuer.issuer: (
                issuer,
                JwksCache(
                    issuer,
                    self._jwks_client,
                    refresh_seconds=settings.jwks_refresh_seconds,
                    min_refresh_interval=settings.jwks_min_refresh_interval_seconds,
                    unknown_kid_wait=settings.unknown_kid_wait_seconds,
                    timeout=settings.http_timeout_seconds,
                    max_bytes=settings.max_response_bytes,
                    clock=clock,
                ),
            )
            for issuer in settings.issuers
        }
        self.jwt = JwtVerifier(caches, settings.max_token_bytes) if caches else None
        self.introspector = (
            Introspector(
                settings.introspection,
                self._introspection_client,
                timeout=settings.http_timeout_seconds,
                max_bytes=settings.max_response_bytes,
                clock=clock,
            )
            if settings.introspection is not None
            else None
        )

    def start(self) -> None:
        """Start the issuers' key refreshers on the running event loop (each fetches its keys at once, in
        the background)."""
        if self.jwt is not None:
            for _, keys in self.jwt.issuers.values():
                keys.start()

    def jwks(self, issuer: str) -> JwksCache:
        assert self.jwt is not None
        return self.jwt.issuers[issuer][1]

    async def __call__(self, request: Request) -> Principal:
        token = bearer_token(request)
        if len(token) > self.settings.max_token_bytes:
            raise InvalidTokenError("the token is too large")
        if self.jwt is not None and looks_like_jwt(token):
            return await self._verified_jwt(token)
        if self.introspector is not None:
            return dataclasses.replace(await self.introspector.verify(token), token=SecretStr(token))
        raise InvalidTokenError("the token is malformed")

    async def _verified_jwt(self, token: str) -> Principal:
        assert self.jwt is not None
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        _TOKEN_CACHE.lookup(cached is not None)
        if cached is not None:
            return cached[0]
        principal = dataclasses.replace(await self.jwt.verify(token), token=SecretStr(token))
        seconds = self.settings.token_cache_seconds
        if seconds and principal.expires_at is not None:
            self._verified[digest] = (principal, min(principal.expires_at, self.wall_clock() + seconds))
        return principal

    async def close(self) -> None:
        """Stop the key refreshers and close the connections."""
        if self.jwt is not None:
            for _, keys in self.jwt.issuers.values():
                await keys.stop()
        await self._jwks_client.aclose()
        await self._introspection_client.aclose()


def _client(settings: AuthSettings) -> httpx.AsyncClient:
    """A client for the identity providers: no redirects; only the content codings fedgate inflates within
    ``max_response_bytes``."""
    return httpx.AsyncClient(
        timeout=settings.http_timeout_seconds,
        follow_redirects=False,
        headers={"accept-encoding": ACCEPT_ENCODING},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
