"""An issuer's signing keys, fetched over HTTPS and cached.

* The JWKS comes from the configured ``jwks_uri`` or, failing that, OpenID Connect discovery
  (``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must match exactly).
* Keys are re-fetched every ``jwks_refresh_seconds``, and early when a token names a key id the cache
  does not hold (the issuer rotated its keys) — but at most once per ``jwks_min_refresh_interval``, and
  concurrent requests share one fetch, so a flood of invented key ids cannot hammer the issuer.
* If a refresh fails, the keys already held keep working; if no keys were ever fetched the request
  fails with 503 (:class:`AuthUnavailableError`), never a pass.
* Only public signature keys are kept: symmetric (``oct``) keys, encryption keys and private key
  material are dropped, so no key-confusion attack can find an HMAC secret to use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from gateway.auth import strict_json
from gateway.auth.config import IssuerSettings
from gateway.errors import AuthUnavailableError, InvalidTokenError

log = structlog.get_logger("fedgate.auth")

PublicKey = RSAKey | ECKey | OKPKey
MAX_JWKS_BYTES = 512 * 1024
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


class JwksCache:
    """The signing keys of one issuer."""

    def __init__(
        self,
        issuer: IssuerSettings,
        client: httpx.AsyncClient,
        *,
        refresh_seconds: int,
        min_refresh_interval: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.min_refresh_interval = min_refresh_interval
        self._keys: dict[str | None, PublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._jwks_uri: str | None = str(issuer.jwks_uri) if issuer.jwks_uri else None
        self._lock = asyncio.Lock()
        #: How many times the JWKS was fetched (for metrics and tests of the rate limit).
        self.fetches = 0

    async def key(self, kid: str | None, algorithm: str) -> PublicKey:
        """The key for ``kid`` usable with ``algorithm``; refreshes once (rate-limited) on a miss."""
        now = self.clock()
        if self._fetched_at is None or now - self._fetched_at > self.refresh_seconds:
            await self._refresh(force=self._fetched_at is None)
        key = self._find(kid, algorithm)
        if key is None and await self._refresh(force=False):
            key = self._find(kid, algorithm)
        if key is None:
            raise InvalidTokenError("the token is signed with an unknown key")
        return key

    def _find(self, kid: str | None, algorithm: str) -> PublicKey | None:
        wanted = _KEY_TYPES.get(algorithm[:2])
        if kid is not None:
            key = self._keys.get(kid)
            return key if key is not None and key.key_type == wanted else None
        candidates = [key for key in self._keys.values() if key.key_type == wanted]
        return candidates[0] if len(candidates) == 1 else None

    async def _refresh(self, *, force: bool) -> bool:
        """Fetch the JWKS unless one was attempted within the minimum interval; True if keys changed."""
        async with self._lock:
            now = self.clock()
            if not force and self._attempted_at is not None and now - self._attempted_at < self.min_refresh_interval:
                return False
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except AuthUnavailableError:
                if not self._keys:
                    raise
                log.warning("jwks_refresh_failed_using_cached_keys", issuer=self.issuer.issuer)
                return False
            changed = keys.keys() != self._keys.keys()
            self._keys = keys
            self._fetched_at = now
            return changed

    async def _fetch(self) -> dict[str | None, PublicKey]:
        uri = self._jwks_uri or await self._discover()
        document = await self._get_json(uri)
        self.fetches += 1
        keys: dict[str | None, PublicKey] = {}
        for data in document.get("keys", []) if isinstance(document.get("keys"), list) else []:
            key = _public_signing_key(data)
            if key is not None:
                keys[data.get("kid")] = key
        log.info("jwks_fetched", issuer=self.issuer.issuer, keys=len(keys))
        return keys

    async def _discover(self) -> str:
        base = self.issuer.issuer.rstrip("/")
        metadata = await self._get_json(f"{base}/.well-known/openid-configuration")
        if metadata.get("issuer") != self.issuer.issuer or not isinstance(metadata.get("jwks_uri"), str):
            log.error("discovery_mismatch", issuer=self.issuer.issuer)
            raise AuthUnavailableError("the identity provider's metadata does not match its configuration")
        self._jwks_uri = str(metadata["jwks_uri"])
        return self._jwks_uri

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.client.get(url, headers={"accept": "application/json"})
            if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
                raise AuthUnavailableError("the identity provider's keys cannot be fetched")
            body = strict_json.loads(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks_fetch_failed", issuer=self.issuer.issuer, error=type(exc).__name__)
            raise AuthUnavailableError("the identity provider's keys cannot be fetched") from exc
        if not isinstance(body, dict):
            raise AuthUnavailableError("the identity provider's keys cannot be fetched")
        return body


def _public_signing_key(data: Any) -> PublicKey | None:
    """A verification key from one JWK, or None for anything else (oct, encryption keys, bad input)."""
    if not isinstance(data, dict) or data.get("use", "sig") != "sig" or data.get("kty") not in {"RSA", "EC", "OKP"}:
        return None
    public = {name: value for name, value in data.items() if name not in _PRIVATE_MEMBERS}
    try:
        key = KeySet.import_key_set({"keys": [public]}).keys[0]
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return key if isinstance(key, RSAKey | ECKey | OKPKey) else None
