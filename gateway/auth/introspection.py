"""Opaque access tokens, checked with the issuer by RFC 7662 token introspection.

The introspection endpoint is called with fedgate's own client credentials (HTTP Basic, RFC 7662 §2.1).
A positive answer is cached — keyed by the token's SHA-256, never the token — until the token expires
or ``cache_seconds`` pass, whichever is sooner; a negative answer for a few seconds, to absorb
retries. If the endpoint cannot be reached the request fails with 503: fedgate never lets an
unverified token through.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import structlog
from cachetools import TLRUCache

from gateway.auth import strict_json
from gateway.auth.config import IntrospectionSettings
from gateway.auth.tokens import principal_from_claims
from gateway.errors import AuthUnavailableError, InvalidTokenError
from gateway.principal import Principal

log = structlog.get_logger("fedgate.auth")

NEGATIVE_CACHE_SECONDS = 5.0
_Entry = tuple[Principal | None, float]


def _expiry(key: str, entry: _Entry, now: float) -> float:
    return entry[1]


class Introspector:
    """Introspects opaque tokens at one endpoint."""

    def __init__(self, settings: IntrospectionSettings, client: httpx.AsyncClient, *, leeway_seconds: int = 30) -> None:
        self.settings = settings
        self.client = client
        self.leeway = leeway_seconds
        self._cache: TLRUCache[str, _Entry] = TLRUCache(maxsize=10_000, ttu=_expiry, timer=time.time)
        #: How many times the endpoint was called (for metrics and tests of the cache).
        self.calls = 0

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None:
            principal, _ = cached
            if principal is None:
                raise InvalidTokenError("the token is not active")
            return principal
        answer = await self._introspect(token)
        now = time.time()
        try:
            principal, expires = self._principal(answer, now)
        except InvalidTokenError:
            self._cache[digest] = (None, now + NEGATIVE_CACHE_SECONDS)
            raise
        self._cache[digest] = (principal, min(expires, now + self.settings.cache_seconds))
        return principal

    async def _introspect(self, token: str) -> dict[str, Any]:
        secret = self.settings.client_secret
        auth = (self.settings.client_id, secret.get_secret_value() if secret else "")
        self.calls += 1
        try:
            response = await self.client.post(
                str(self.settings.endpoint),
                data={"token": token, "token_type_hint": "access_token"},
                auth=auth,
                headers={"accept": "application/json"},
            )
            if response.status_code != 200:
                log.warning("introspection_failed", status=response.status_code)
                raise AuthUnavailableError("the token cannot be checked with its issuer right now")
            body = strict_json.loads(response.content)
        except strict_json.DuplicateMemberError as exc:  # which 'active' or 'scope' did the issuer mean?
            log.warning("introspection_ambiguous")
            raise InvalidTokenError("the token's introspection answer is ambiguous") from exc
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("introspection_failed", error=type(exc).__name__)
            raise AuthUnavailableError("the token cannot be checked with its issuer right now") from exc
        if not isinstance(body, dict):
            raise AuthUnavailableError("the token cannot be checked with its issuer right now")
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
