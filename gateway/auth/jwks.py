"""An issuer's signing keys, fetched over HTTPS in the background and held in memory.

* The JWKS comes from the configured ``jwks_uri`` or, failing that, OpenID Connect discovery
  (``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must match exactly).
* Fetching is the job of one *refresher* task per issuer, started and cancelled with the application
  (:meth:`JwksCache.start`, :meth:`JwksCache.stop`, from the app's lifespan), never of a request. It
  fetches at start-up, then every ``jwks_refresh_seconds``; after a failure, again after
  ``jwks_min_refresh_interval``. Only one fetch is ever in flight (single flight), each bounded by
  ``http_timeout_seconds`` from start to end, its responses read by :func:`adapters.http_body.read_body`
  within ``max_response_bytes``.
* A request never waits for a refresh while the keys it needs are held, however slow or stalled the
  issuer is: a refresh that is due is only *asked for*. A request naming a key id the cache does not
  hold (the issuer rotated its keys) asks the refresher for a fetch, at most one per
  ``jwks_min_refresh_interval`` (joining the one in flight, if any), and waits for it no longer than
  ``unknown_kid_wait_seconds``: then 503 (:class:`AuthUnavailableError`, ``Retry-After``). A flood of
  invented key ids therefore cannot hammer the issuer, nor hold requests.
* If a refresh fails, the keys already held keep working; while no keys were ever fetched every JWT
  fails with 503, never a pass.
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

from adapters.http_body import read_body
from gateway.auth import strict_json
from gateway.auth.config import IssuerSettings
from gateway.errors import AuthUnavailableError, InvalidTokenError
from gateway.tasks import cancel_and_wait

log = structlog.get_logger("fedgate.auth")

PublicKey = RSAKey | ECKey | OKPKey
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
_UNAVAILABLE = "the identity provider's keys cannot be fetched"


class JwksCache:
    """The signing keys of one issuer, and the task that keeps them fresh."""

    def __init__(
        self,
        issuer: IssuerSettings,
        client: httpx.AsyncClient,
        *,
        refresh_seconds: float,
        min_refresh_interval: float,
        unknown_kid_wait: float,
        timeout: float,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic seconds) decides when a refresh is due; tests pass their own."""
        self.issuer = issuer
        self.clock = clock
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.min_refresh_interval = min_refresh_interval
        self.unknown_kid_wait = unknown_kid_wait
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._keys: dict[str | None, PublicKey] = {}
        self._attempted_at: float | None = None
        self._succeeded = False
        self._jwks_uri: str | None = str(issuer.jwks_uri) if issuer.jwks_uri else None
        self._task: asyncio.Task[None] | None = None
        #: Set to have the refresher fetch now rather than when its timer says.
        self._wake = asyncio.Event()
        #: The fetch in flight, and the one asked for to follow it: each resolved when that fetch ends.
        self._current: asyncio.Future[None] | None = None
        self._next: asyncio.Future[None] | None = None
        #: How many times the JWKS was fetched (for metrics and tests of the rate limit).
        self.fetches = 0

    # --- the refresher, owned by the application's lifespan ----------------------------------------

    def start(self) -> None:
        """Start the refresher (it fetches at once). Called from the application's lifespan."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"jwks-refresher {self.issuer.issuer}")

    async def stop(self) -> None:
        """Cancel the refresher and wait for it to end."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        try:
            while True:
                await self._attempt()
                await self._sleep()
        finally:
            for waiting in (self._current, self._next):  # nobody waits for a fetch that will not happen
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)
            self._current = self._next = None

    async def _sleep(self) -> None:
        """Until a refresh is due by the clock, or a request asks for one."""
        if self._next is not None:  # asked for while the last fetch was in flight
            return
        try:
            async with asyncio.timeout(max(self._due() - self.clock(), 0.0)):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _due(self) -> float:
        """When the next periodic refresh is due (a failed one is retried sooner)."""
        if self._attempted_at is None:
            return self.clock()
        interval = self.refresh_seconds if self._succeeded else self.min_refresh_interval
        return self._attempted_at + interval

    async def _attempt(self) -> None:
        """One fetch; whatever its outcome, every request waiting for it is released."""
        self._wake.clear()
        self._current, self._next = self._next or asyncio.get_running_loop().create_future(), None
        self._attempted_at = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                keys = await self._fetch()
        except Exception as exc:  # the refresher outlives any one failed fetch
            self._succeeded = False
            if not isinstance(exc, AuthUnavailableError):  # already logged with its cause
                log.warning("jwks_fetch_failed", issuer=self.issuer.issuer, error=type(exc).__name__)
            if self._keys:
                log.warning("jwks_refresh_failed_using_cached_keys", issuer=self.issuer.issuer)
        else:
            self._keys, self._succeeded = keys, True
        finally:
            current, self._current = self._current, None
            if not current.done():
                current.set_result(None)

    # --- what requests ask ---------------------------------------------------------------------

    async def key(self, kid: str | None, algorithm: str) -> PublicKey:
        """The key for ``kid`` usable with ``algorithm``, from the keys held; an unknown ``kid`` waits for
        (at most one, rate-limited) fetch, no longer than ``unknown_kid_wait``."""
        if self._current is None and self.clock() >= self._due():
            self._wake.set()  # a refresh is due: the refresher does it; this request does not wait
        key = self._find(kid, algorithm)
        if key is not None:
            return key
        if not self._may_fetch():
            raise InvalidTokenError("the token is signed with an unknown key")
        await self._fetched()
        key = self._find(kid, algorithm)
        if key is not None:
            return key
        if not self._keys:
            raise AuthUnavailableError(_UNAVAILABLE)
        raise InvalidTokenError("the token is signed with an unknown key")

    def _may_fetch(self) -> bool:
        """Whether a request may have the keys fetched for it now: always while none are held, else at
        most once per ``min_refresh_interval`` (one fetch in flight is joined for free)."""
        if not self._keys or self._current is not None or self._attempted_at is None:
            return True
        return self.clock() - self._attempted_at >= self.min_refresh_interval

    async def _fetched(self) -> None:
        """Wait, at most ``unknown_kid_wait``, for the fetch in flight or (asking for it) the next one."""
        if self._task is None:
            log.error("jwks_refresher_not_running", issuer=self.issuer.issuer)
            raise AuthUnavailableError(_UNAVAILABLE)
        waiting = self._current
        if waiting is None:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            waiting = self._next
            self._wake.set()
        try:
            async with asyncio.timeout(self.unknown_kid_wait):
                await asyncio.shield(waiting)
        except TimeoutError:
            raise AuthUnavailableError(_UNAVAILABLE) from None

    def _find(self, kid: str | None, algorithm: str) -> PublicKey | None:
        wanted = _KEY_TYPES.get(algorithm[:2])
        if kid is not None:
            key = self._keys.get(kid)
            return key if key is not None and key.key_type == wanted else None
        candidates = [key for key in self._keys.values() if key.key_type == wanted]
        return candidates[0] if len(candidates) == 1 else None

    # --- fetching ----------------------------------------------------------------------------------

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

    def _too_large(self) -> AuthUnavailableError:
        log.warning("jwks_fetch_failed", issuer=self.issuer.issuer, error="response_too_large")
        return AuthUnavailableError(_UNAVAILABLE)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self.client.stream("GET", url, headers={"accept": "application/json"}) as response:
                if response.status_code != 200:
                    log.warning("jwks_fetch_failed", issuer=self.issuer.issuer, status=response.status_code)
                    raise AuthUnavailableError(_UNAVAILABLE)
                content = await read_body(response, self.max_bytes, self._too_large)
            body = strict_json.loads(content)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks_fetch_failed", issuer=self.issuer.issuer, error=type(exc).__name__)
            raise AuthUnavailableError(_UNAVAILABLE) from exc
        if not isinstance(body, dict):
            raise AuthUnavailableError(_UNAVAILABLE)
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
