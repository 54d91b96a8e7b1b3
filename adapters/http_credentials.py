"""How fedgate authenticates to a department's HTTP API: the ``Authorization`` header of each request.

One :class:`SourceCredential` per source, built from the catalog's ``credential`` (:mod:`schema.credentials`):

* ``none``: no header; ``bearer``: a static service token; ``basic``: HTTP basic;
* ``client_credentials`` (RFC 6749 §4.4): fedgate's own token from the authorisation server, cached
  until shortly before it expires; concurrent fetches wait for one refresh (single flight);
* ``token_exchange`` (RFC 8693): the caller's token is exchanged at the authorisation server for one
  narrowed to the department's ``audience``. The exchanged token is cached per (SHA-256 of the caller's
  token, audience) until shortly before it expires. The caller's own token is sent only to the
  authorisation server, never to the department; a fetch without one (authentication disabled) fails
  closed with ``SOURCE_AUTH_FAILED``.

Token requests are plain form posts (RFC 6749 §4.4 and §5, RFC 8693 §2) with the client authenticated
by HTTP basic (``client_secret_basic``, the default) or in the form (``client_secret_post``). authlib's
httpx integration was not used: it now targets the ``httpx2`` fork and warns on ``httpx``. A token
endpoint that cannot be reached is ``SOURCE_UNAVAILABLE``; one that refuses is ``SOURCE_AUTH_FAILED``.
Tokens and secrets are never logged.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from adapters.base import FetchContext
from adapters.errors import SourceAuthError, SourceError, SourceTimeoutError, SourceUnavailableError
from adapters.http_body import ACCEPT_ENCODING, read_body
from schema.credentials import (
    BasicCredential,
    BearerCredential,
    ClientCredentials,
    Credential,
    NoCredential,
    TokenExchange,
)

log = structlog.get_logger("fedgate.adapters.http")

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a grant name
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a type name
#: A cached token is renewed this long before it expires (at most; a tenth of its lifetime if shorter).
REFRESH_MARGIN_SECONDS = 30.0
#: Exchanged tokens kept at most (one per recent caller token and audience); the oldest go first.
MAX_EXCHANGED_TOKENS = 4096
#: The largest token response read (after decompression); a larger one is a refusal.
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")


class SourceCredential(abc.ABC):
    """fedgate's credential for one source: the ``Authorization`` header for requests made on behalf of ``context``.

    Not to be confused with :class:`gateway.auth.bearer.Authenticator`, which verifies the callers' tokens.
    """

    def __init__(self, department: str) -> None:
        self.department = department

    @abc.abstractmethod
    async def authorization(self, context: FetchContext, *, timeout: float) -> str | None:
        """The header value, or ``None`` for no header."""

    def invalidate(self, context: FetchContext) -> None:  # noqa: B027 - optional
        """Forget a cached token the API refused (so the next fetch asks for a new one)."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release the token endpoint's connections."""

    def refused(self, what: str) -> SourceAuthError:
        return SourceAuthError(self.department, f"department '{self.department}': {what}")


class NoSourceCredential(SourceCredential):
    """No credential."""

    async def authorization(self, context: FetchContext, *, timeout: float) -> str | None:
        return None


class StaticSourceCredential(SourceCredential):
    """A fixed header: a service bearer token or HTTP basic credentials."""

    def __init__(self, department: str, value: str | None) -> None:
        super().__init__(department)
        self._value = value

    async def authorization(self, context: FetchContext, *, timeout: float) -> str | None:
        if self._value is None:
            raise self.refused("its credential was not loaded from the environment")
        return self._value


class _Cached:
    """A token and the monotonic time after which it is renewed."""

    __slots__ = ("expires", "token")

    def __init__(self, token: str, expires: float) -> None:
        self.token = token
        self.expires = expires


class TokenEndpointSourceCredential(SourceCredential):
    """Tokens from an OAuth 2.0 token endpoint, cached per key until shortly before they expire."""

    def __init__(self, department: str, credential: ClientCredentials | TokenExchange, verify: ssl.SSLContext | bool):
        super().__init__(department)
        self.credential = credential
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        #: Token requests made (for tests and metrics).
        self.requests = 0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._verify,
                follow_redirects=False,
                trust_env=False,
                headers={"accept-encoding": ACCEPT_ENCODING},
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _token(self, key: str, timeout: float, **parameters: str) -> str:
        """The cached token for ``key``, or a new one (one request at a time per key)."""
        cached = self._fresh(key)
        if cached is not None:
            return cached
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                cached = self._fresh(key)
                if cached is not None:
                    return cached
                token, lifetime = await self._request(timeout, **parameters)
                if lifetime is not None:
                    margin = min(REFRESH_MARGIN_SECONDS, lifetime / 10)
                    self._cache[key] = _Cached(token, time.monotonic() + lifetime - margin)
                    self._cache.move_to_end(key)
                    while len(self._cache) > MAX_EXCHANGED_TOKENS:
                        self._cache.popitem(last=False)
                return token
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(key, None)

    def _fresh(self, key: str) -> str | None:
        cached = self._cache.get(key)
        if cached is None:
            return None
        if cached.expires <= time.monotonic():
            del self._cache[key]
            return None
        return cached.token

    def _forget(self, key: str) -> None:
        self._cache.pop(key, None)

    async def _request(self, timeout: float, **parameters: str) -> tuple[str, float | None]:
        """Ask the token endpoint; returns the access token and its lifetime in seconds (if given)."""
        secret = self.credential.client_secret
        if secret is None:
            raise self.refused("its client secret was not loaded from the environment")
        self.requests += 1
        form = dict(parameters)
        headers = {"accept": "application/json"}
        if self.credential.client_auth == "client_secret_basic":
            pair = f"{quote(self.credential.client_id, safe='')}:{quote(secret.get_secret_value(), safe='')}"
            headers["authorization"] = f"Basic {base64.b64encode(pair.encode()).decode('ascii')}"
        else:
            form.update(client_id=self.credential.client_id, client_secret=secret.get_secret_value())
        try:
            async with self._http().stream(
                "POST", self.credential.token_url, data=form, headers=headers, timeout=httpx.Timeout(timeout)
            ) as response:
                status = response.status_code
                body = await read_body(response, MAX_TOKEN_RESPONSE_BYTES, self._too_large)
        except httpx.TimeoutException as exc:
            self._log(exc, None)
            raise SourceTimeoutError(
                self.department, f"department '{self.department}': its authorisation server did not answer in time"
            ) from exc
        except httpx.HTTPError as exc:
            self._log(exc, None)
            raise self._unavailable() from exc
        token = _json_object(body)
        if status >= 500 or status == 429:
            self._log(None, status)
            raise self._unavailable()
        if status != 200 or token is None:
            error = token.get("error") if token else None
            self._log(None, status, error if isinstance(error, str) and _OAUTH_ERROR.match(error) else None)
            raise self.refused("its authorisation server refused to issue a token")
        access_token = token.get("access_token")
        token_type = str(token.get("token_type", "")).lower()
        if not isinstance(access_token, str) or not access_token or token_type != "bearer":  # noqa: S105
            self._log(None, status, "no_bearer_token")
            raise self.refused("its authorisation server returned no usable bearer token")
        expires_in = token.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return access_token, float(expires_in)
        return access_token, None

    def _too_large(self) -> SourceError:
        self._log(None, None, "response_too_large")
        return self.refused("its authorisation server answered with an oversized response")

    def _unavailable(self) -> SourceError:
        return SourceUnavailableError(
            self.department, f"department '{self.department}': its authorisation server is unavailable"
        )

    def _log(self, exc: BaseException | None, status: int | None, oauth_error: str | None = None) -> None:
        log.warning(
            "token_request_failed",
            department=self.department,
            status=status,
            error=type(exc).__name__ if exc is not None else None,
            oauth_error=oauth_error,
        )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class ClientCredentialsSourceCredential(TokenEndpointSourceCredential):
    """fedgate's own token (client credentials grant), shared by every fetch."""

    credential: ClientCredentials

    async def authorization(self, context: FetchContext, *, timeout: float) -> str | None:
        parameters = {"grant_type": "client_credentials"}
        if self.credential.scope:
            parameters["scope"] = self.credential.scope
        if self.credential.audience:
            parameters["audience"] = self.credential.audience
        return f"Bearer {await self._token('service', timeout, **parameters)}"

    def invalidate(self, context: FetchContext) -> None:
        self._forget("service")


class TokenExchangeSourceCredential(TokenEndpointSourceCredential):
    """The caller's token exchanged (RFC 8693) for one meant for this department only."""

    credential: TokenExchange

    def _key(self, context: FetchContext) -> str:
        assert context.subject_token is not None
        digest = hashlib.sha256(context.subject_token.get_secret_value().encode("utf-8")).hexdigest()
        return f"{digest} {self.credential.audience}"

    async def authorization(self, context: FetchContext, *, timeout: float) -> str | None:
        if context.subject_token is None:
            raise self.refused("it needs the caller's token for a token exchange, and the request has none")
        parameters = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": context.subject_token.get_secret_value(),
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": self.credential.audience,
        }
        if self.credential.scope:
            parameters["scope"] = self.credential.scope
        return f"Bearer {await self._token(self._key(context), timeout, **parameters)}"

    def invalidate(self, context: FetchContext) -> None:
        if context.subject_token is not None:
            self._forget(self._key(context))


def create_source_credential(
    department: str, credential: Credential, verify: ssl.SSLContext | bool
) -> SourceCredential:
    """fedgate's credential for a source, from its catalog ``credential``; ``verify`` is the TLS setting of its API."""
    if isinstance(credential, NoCredential):
        return NoSourceCredential(department)
    if isinstance(credential, BearerCredential):
        token = credential.token
        return StaticSourceCredential(department, None if token is None else f"Bearer {token.get_secret_value()}")
    if isinstance(credential, BasicCredential):
        password = credential.password
        if password is None:
            return StaticSourceCredential(department, None)
        pair = f"{credential.username}:{password.get_secret_value()}".encode()
        return StaticSourceCredential(department, f"Basic {base64.b64encode(pair).decode('ascii')}")
    if isinstance(credential, ClientCredentials):
        return ClientCredentialsSourceCredential(department, credential, verify)
    return TokenExchangeSourceCredential(department, credential, verify)
