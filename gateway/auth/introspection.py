"""Opaque access tokens, checked with the issuer by RFC 7662 token introspection.

The introspection endpoint is called with fedgate's own client credentials (HTTP Basic, RFC 7662 §2.1).
A positive answer is cached — keyed by the token's SHA-256, never the token — until the token expires
or ``cache_seconds`` pass, whichever is sooner; a negative answer for a few seconds, to absorb
retries. If the endpoint cannot be reached the request fails with 503: fedgate never lets an
unverified token through.

Each call is bounded from start to end by ``auth.http_timeout_seconds``, and its answer is read by
:func:`adapters.http_body.read_body` within ``auth.max_response_bytes``. The endpoint has a circuit
breaker of its own (``auth.introspection.breaker``, :class:`gateway.execution.breaker.CircuitBreaker`):
after ``failures`` consecutive calls that found it unhealthy (no answer in time, unreachable, a 5xx or
429, an answer that is not a JSON object or is over the cap) requests needing it get 503 at once, with
``Retry-After`` the cool-down left, instead of each waiting out the timeout; then one call probes it.
Any other answer (a refusal of fedgate's credentials included) shows it is up. Cached answers never
touch the endpoint or its breaker.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog
from cachetools import TLRUCache

from adapters.http_body import read_body
from gateway.auth import strict_json
from gateway.auth.config import IntrospectionSettings
from gateway.auth.tokens import principal_from_claims
from gateway.errors import AuthUnavailableError, InvalidTokenError, SourceCircuitOpenError
from gateway.execution.breaker import CircuitBreaker
from gateway.metrics import CacheCounter
from gateway.principal import Principal

log = structlog.get_logger("fedgate.auth")

NEGATIVE_CACHE_SECONDS = 5.0
#: The breaker's name in its log lines.
BREAKER_NAME = "identity provider"
_UNAVAILABLE = "the token cannot be checked with its issuer right now"
_Entry = tuple[Principal | None, float]
_INTROSPECTION_CACHE = CacheCounter("introspection")


def _expiry(key: str, entry: _Entry, now: float) -> float:
    return entry[1]


class _Unhealthy(Exception):
    """The endpoint did not give a usable answer (``code`` says how): counts against its breaker."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Introspector:
    """Introspects opaque tokens at one endpoint, behind its circuit breaker."""

    def __init__(
        self,
        settings: IntrospectionSettings,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        max_bytes: int,
        leeway_seconds: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``timeout`` bounds each call from start to end; ``clock`` (monotonic seconds) paces the breaker."""
        self.settings = settings
        self.client = client
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.leeway = leeway_seconds
        self.breaker = CircuitBreaker(BREAKER_NAME, settings.breaker, probe_timeout=timeout, clock=clock)
        self._cache: TLRUCache[str, _Entry] = TLRUCache(maxsize=10_000, ttu=_expiry, timer=time.time)
        #: How many times the endpoint was called (for metrics and tests of the cache).
        self.calls = 0

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        _INTROSPECTION_CACHE.lookup(cached is not None)
        if cached is not None:
            principal, _ = cached
            if principal is None:
                raise InvalidTokenError("the token is not active")
            return principal
        answer = await self._guarded(token)
        now = time.time()
        try:
            principal, expires = self._principal(answer, now)
        except InvalidTokenError:
            self._cache[digest] = (None, now + NEGATIVE_CACHE_SECONDS)
            raise
        self._cache[digest] = (principal, min(expires, now + self.settings.cache_seconds))
        return principal

    async def _guarded(self, token: str) -> dict[str, Any]:
        """One call through the breaker: refused at once while it is open, its verdict recorded after."""
        try:
            permit = self.breaker.admit()
        except SourceCircuitOpenError as exc:
            raise AuthUnavailableError(_UNAVAILABLE, retry_after=exc.retry_after) from exc
        try:
            answer = await self._introspect(token)
        except _Unhealthy as exc:
            self.breaker.unhealthy(permit, exc.code)
            raise AuthUnavailableError(_UNAVAILABLE) from exc
        except InvalidTokenError:
            self.breaker.succeeded(permit)  # an answer, if an ambiguous one: the endpoint is up
            raise
        except AuthUnavailableError:
            self.breaker.succeeded(permit)  # it answered, refusing fedgate's credentials: no health verdict
            raise
        except BaseException:
            self.breaker.abandoned(permit)
            raise
        self.breaker.succeeded(permit)
        return answer

    async def _introspect(self, token: str) -> dict[str, Any]:
        secret = self.settings.client_secret
        auth = (self.settings.client_id, secret.get_secret_value() if secret else "")
        self.calls += 1
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream(
                    "POST",
                    str(self.settings.endpoint),
                    data={"token": token, "token_type_hint": "access_token"},
                    auth=auth,
                    headers={"accept": "application/json"},
                ) as response:
                    status = response.status_code
                    if status >= 500 or status == 429:
                        log.warning("introspection_failed", status=status)
                        raise _Unhealthy(f"HTTP_{status}")
                    if status != 200:
                        log.warning("introspection_failed", status=status)
                        raise AuthUnavailableError(_UNAVAILABLE)
                    content = await read_body(response, self.max_bytes, _too_large)
            body = strict_json.loads(content)
        except strict_json.DuplicateMemberError as exc:  # which 'active' or 'scope' did the issuer mean?
            log.warning("introspection_ambiguous")
            raise InvalidTokenError("the token's introspection answer is ambiguous") from exc
        except TimeoutError as exc:
            log.warning("introspection_failed", error="TimeoutError")
            raise _Unhealthy("TIMEOUT") from exc
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("introspection_failed", error=type(exc).__name__)
            raise _Unhealthy(type(exc).__name__) from exc
        if not isinstance(body, dict):
            log.warning("introspection_failed", error="not_an_object")
            raise _Unhealthy("NOT_AN_OBJECT")
        return body

    def _principal(self, answer: dict[str, Any], now: float) -> tuple[Principal, float]:
        if answer.get("active") is not True:
            raise InvalidTokenError("the token is not active")
        expires = answer.get("exp")
        if not isinstance(expires, int | float) or expires + self.leeway < now:
            raise InvalidTokenError("the token has expired")
        not_before = answer.get("nbf")
        if isinstance(not_before, int | float) and not_before - self.leeway > now:
            raise InvalidTokenError("the token is not valid yet")
        if self.settings.issuer is not None and answer.get("iss") != self.settings.issuer:
            raise InvalidTokenError("the token's issuer is not trusted")
        if self.settings.audiences:
            audience = answer.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if not set(self.settings.audiences) & {value for value in audiences if isinstance(value, str)}:
                raise InvalidTokenError("the token is not meant for this service")
        principal = principal_from_claims(
            answer, self.settings.claims, issuer=self.settings.issuer or answer.get("iss")
        )
        return principal, float(expires)


def _too_large() -> _Unhealthy:
    log.warning("introspection_failed", error="response_too_large")
    return _Unhealthy("RESPONSE_TOO_LARGE")
