"""A small OAuth 2.0 authorization server for the demo and development, built with authlib.

* ``POST /oauth/token``: the client-credentials grant (RFC 6749 §4.4), client authentication by HTTP
  Basic or form post; issues RFC 9068 JWT access tokens (``typ: at+jwt``) signed with RS256. Clients
  with ``exchange_audiences`` may also exchange a token it issued for one meant for one of those
  audiences (RFC 8693 token exchange, :mod:`gateway.auth.exchange_grant`).
* ``GET /.well-known/jwks.json``: its public signing key.
* ``GET /.well-known/openid-configuration`` (and ``oauth-authorization-server``): discovery metadata.

Signing key and client secrets are generated on first run and kept in ``dev_issuer.state_file``
(mode 0600). It refuses to start outside ``fedgate demo`` unless ``dev_issuer.enabled`` is true: a
production deployment trusts a real identity provider instead.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.dev_config import DevClient, DevIssuerSettings
from gateway.auth.exchange_grant import GRANT_TYPE as TOKEN_EXCHANGE
from gateway.auth.exchange_grant import ExchangeSubject, TokenExchangeGrant
from gateway.private_files import creation_problem, exists, read_private, replace_private


@dataclass(frozen=True)
class DevIssuerState:
    """The dev issuer's secrets: one RSA signing key and a secret per client."""

    key: RSAKey
    client_secrets: dict[str, str]

    @classmethod
    def load_or_create(cls, settings: DevIssuerSettings) -> DevIssuerState:
        """Read the state file, generating the key and any missing client secret (and saving) first.

        ValueError (a reason naming the file, never its content) if it cannot be read, is damaged or cannot
        be written."""
        state = _load(settings, create=True)
        assert state is not None
        return state

    @classmethod
    def check(cls, settings: DevIssuerSettings) -> None:
        """What :meth:`load_or_create` would trip on (ValueError), without writing anything."""
        _load(settings, create=False)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}


#: The largest state file read (it holds one RSA key and a secret per client).
MAX_STATE_FILE_BYTES = 1_000_000
_REGENERATE = "delete it to generate a new one (clients then need their new secrets)"


def _load(settings: DevIssuerSettings, *, create: bool) -> DevIssuerState | None:
    path = settings.state_path
    data: dict[str, Any] = _read_state(path) if exists(path) else {}
    missing = "key" not in data or any(client.id not in data.get("clients", {}) for client in settings.clients)
    if missing and not create:
        problem = creation_problem(path)
        if problem is not None:
            raise ValueError(problem)
        return None
    if "key" not in data:
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
        key.ensure_kid()
        data["key"] = key.as_dict(private=True)
    secrets_by_client: dict[str, str] = data.setdefault("clients", {})
    for client in settings.clients:
        secrets_by_client.setdefault(client.id, secrets.token_urlsafe(32))
    if missing:
        try:
            replace_private(path, json.dumps(data, indent=2).encode())
        except OSError as error:
            raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    return DevIssuerState(key=RSAKey.import_key(data["key"]), client_secrets=dict(secrets_by_client))


def _read_state(path: Path) -> dict[str, Any]:
    """The state file's JSON, checked: a private RSA key (if any) and a secret per client."""
    content = read_private(path, limit=MAX_STATE_FILE_BYTES)
    try:
        data = json.loads(content)
    except ValueError:
        raise ValueError(f"{path} is not the JSON fedgate writes: {_REGENERATE}") from None
    clients = data.get("clients", {}) if isinstance(data, dict) else None
    if not isinstance(clients, dict) or not all(isinstance(value, str) for value in clients.values()):
        raise ValueError(f"{path} does not hold the dev issuer's state: {_REGENERATE}")
    if "key" in data:
        try:
            key = RSAKey.import_key(data["key"])
        except (ValueError, TypeError, JoseError):
            key = None
        if key is None or not key.is_private:
            raise ValueError(f"{path} does not hold a private RSA signing key: {_REGENERATE}")
    return dict(data)


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: DevClient, secret: str) -> None:
        self.client = client
        self.secret = secret

    def get_client_id(self) -> str:
        return self.client.id

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in {"client_secret_basic", "client_secret_post"}

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == TOKEN_EXCHANGE:
            return bool(self.client.exchange_audiences)
        return grant_type == "client_credentials"

    def may_exchange_for(self, audience: str) -> bool:
        return audience in self.client.exchange_audiences

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have; all of its scopes when none are requested."""
        allowed = self.client.scopes
        if not scope:
            return " ".join(allowed)
        return " ".join(item for item in scope.split() if item in allowed)


class _TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    def __init__(self, settings: DevIssuerSettings, state: DevIssuerState) -> None:
        super().__init__(issuer=settings.issuer, alg="RS256")
        self.settings = settings
        self.state = state

    def get_jwks(self) -> KeySet:
        return KeySet([self.state.key])

    def get_audiences(self, client: _Client, user: object, scope: str) -> str:
        if isinstance(user, ExchangeSubject):
            return user.audience
        return self.settings.audience

    def get_extra_claims(self, client: _Client, grant_type: str, user: object, scope: str) -> dict[str, Any]:
        if isinstance(user, ExchangeSubject):
            # The exchanging client acts for the subject; the token ends when the subject's does.
            lifetime = min(self.settings.token_lifetime_seconds, user.expires_at - int(time.time()))
            return {"act": {"sub": client.get_client_id()}, "exp": int(time.time()) + lifetime}
        return dict(client.client.claims)

    def _get_expires_in(self, client: _Client, grant_type: str) -> int:
        return self.settings.token_lifetime_seconds


class _FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth 2.0 request whose form body has already been read (Starlette reads bodies asynchronously)."""

    def __init__(self, method: str, uri: str, headers: Headers, form: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class DevAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server, adapted to Starlette (requests are read before being handed over)."""

    def __init__(self, settings: DevIssuerSettings, state: DevIssuerState) -> None:
        super().__init__(scopes_supported=sorted({scope for client in settings.clients for scope in client.scopes}))
        self.settings = settings
        self.clients = {client.id: _Client(client, state.client_secrets[client.id]) for client in settings.clients}
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_token_generator("default", _TokenGenerator(settings, state))
        # What the token-exchange grant checks subject tokens against: this issuer's own access tokens.
        self.subject_token_key = state.key
        self.issuer = settings.issuer
        self.audience = settings.audience

    def query_client(self, client_id: str) -> _Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system."""

    def create_oauth2_request(self, request: tuple[str, str, Headers, bytes]) -> OAuth2Request:
        method, uri, headers, body = request
        return _FormRequest(method, uri, headers, dict(parse_qsl(body.decode("utf-8", "replace"))))

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return JSONResponse(body, status_code=status, headers=dict(headers))


def create_dev_issuer_app(settings: DevIssuerSettings) -> Starlette:
    """The dev issuer as an ASGI application."""
    state = DevIssuerState.load_or_create(settings)
    server = DevAuthorizationServer(settings, state)
    metadata = {
        "issuer": settings.issuer,
        "token_endpoint": f"{settings.issuer}/oauth/token",
        "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"]
        + ([TOKEN_EXCHANGE] if any(client.exchange_audiences for client in settings.clients) else []),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": server.scopes_supported,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }

    async def token(request: Request) -> Response:
        body = await request.body()
        response: Response = server.create_token_response((request.method, str(request.url), request.headers, body))
        return response

    async def jwks(request: Request) -> Response:
        return JSONResponse(state.public_jwks(), headers={"cache-control": "max-age=300"})

    async def discovery(request: Request) -> Response:
        return JSONResponse(metadata)

    return Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/.well-known/jwks.json", jwks, methods=["GET"]),
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
        ]
    )
