"""The dev issuer's RFC 8693 token-exchange grant: what it issues, and everything it refuses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from tests.support.servers import free_port, serving

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
CLIENTS = [
    {"id": "caller-app", "name": "A caller", "scopes": ["clinic.full"], "claims": {"organisation": "X1"}},
    {"id": "gateway", "name": "fedgate", "scopes": ["api.read", "api.list"], "exchange_audiences": ["clinic-api"]},
]


class Server:
    def __init__(self, settings: DevIssuerSettings, url: str) -> None:
        self.settings = settings
        self.state = DevIssuerState.load_or_create(settings)
        self.url = url

    def secret(self, client: str) -> str:
        return self.state.client_secrets[client]

    async def post(self, client: str, secret: str | None = None, **form: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(f"{self.url}/oauth/token", data=form, auth=(client, secret or self.secret(client)))

    async def caller_token(self) -> str:
        response = await self.post("caller-app", grant_type="client_credentials")
        return str(response.json()["access_token"])

    def sign(self, key: RSAKey | None = None, **claims: Any) -> str:
        """A subject token signed with this issuer's key (or another), with these claims over sane defaults."""
        now = int(time.time())
        body = {"iss": self.url, "aud": "fedgate", "sub": "someone", "client_id": "caller-app", "iat": now,
                "jti": "j1", "exp": now + 300, "scope": "clinic.full", **claims}  # fmt: skip
        signing = key or self.state.key
        return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": signing.kid}, body, signing)

    async def exchange(self, subject_token: str, client: str = "gateway", **form: str) -> httpx.Response:
        fields = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ACCESS_TOKEN,
                  "audience": "clinic-api", **form}  # fmt: skip
        return await self.post(client, **{name: value for name, value in fields.items() if value != "-"})


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    port = free_port()
    settings = DevIssuerSettings.model_validate(
        {"port": port, "state_file": str(tmp_path / "issuer.json"), "clients": CLIENTS, "enabled": True}
    )
    async with serving(create_dev_issuer_app(settings), port) as url:
        yield Server(settings, url)


async def test_a_caller_token_is_exchanged_for_one_narrowed_to_the_audience(server: Server) -> None:
    caller = await server.caller_token()
    response = await server.exchange(caller, scope="api.read")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api.read"
    assert 0 < body["expires_in"] <= server.settings.token_lifetime_seconds
    async with httpx.AsyncClient() as http:
        keys = KeySet.import_key_set((await http.get(f"{server.url}/.well-known/jwks.json")).json())
    token = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["iss"] == server.url
    assert claims["aud"] == "clinic-api"
    assert claims["sub"] == "caller-app"  # the subject of the caller's token
    assert claims["client_id"] == "gateway"
    assert claims["act"] == {"sub": "gateway"}
    assert claims["scope"] == "api.read"
    assert "organisation" not in claims
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(f"{server.url}/.well-known/oauth-authorization-server")).json()
    assert EXCHANGE in metadata["grant_types_supported"]


async def test_without_a_scope_the_client_gets_its_scopes_and_never_outlives_the_subject(server: Server) -> None:
    expires = int(time.time()) + 90
    response = await server.exchange(server.sign(exp=expires))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "api.read api.list"
    assert body["expires_in"] <= 90
    claims = jwt.decode(body["access_token"], server.state.key, algorithms=["RS256"]).claims
    assert claims["exp"] <= expires
    assert claims["sub"] == "someone"


def _other_key() -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, private=True)
    key.ensure_kid()
    return key


@pytest.mark.parametrize(
    ("case", "error", "status"),
    [
        ("client may not exchange", "unauthorized_client", 400),
        ("wrong client secret", "invalid_client", 401),
        ("no subject token", "invalid_request", 400),
        ("wrong subject token type", "invalid_request", 400),
        ("signed by another key", "invalid_request", 400),
        ("tampered", "invalid_request", 400),
        ("expired", "invalid_request", 400),
        ("meant for another audience", "invalid_request", 400),
        ("from another issuer", "invalid_request", 400),
        ("not an access token", "invalid_request", 400),
        ("garbage", "invalid_request", 400),
        ("no audience", "invalid_request", 400),
        ("audience not allowed", "invalid_target", 400),
        ("scope beyond the client's", "invalid_scope", 400),
        ("actor token", "invalid_request", 400),
        ("resource", "invalid_request", 400),
        ("a refresh token asked for", "invalid_request", 400),
    ],
)
async def test_refusals(server: Server, case: str, error: str, status: int) -> None:
    good = server.sign()
    header, _, signature = good.split(".")
    requests: dict[str, Any] = {
        "client may not exchange": lambda: server.exchange(good, client="caller-app"),
        "wrong client secret": lambda: server.post("gateway", "wrong", grant_type=EXCHANGE, subject_token=good,
                                                   subject_token_type=ACCESS_TOKEN, audience="clinic-api"),
        "no subject token": lambda: server.exchange("-"),
        "wrong subject token type": lambda: server.exchange(good, subject_token_type="urn:x:saml"),
        "signed by another key": lambda: server.exchange(server.sign(key=_other_key())),
        "tampered": lambda: server.exchange(f"{header}.{server.sign(sub='admin').split('.')[1]}.{signature}"),
        "expired": lambda: server.exchange(server.sign(exp=int(time.time()) - 5)),
        "meant for another audience": lambda: server.exchange(server.sign(aud="clinic-api")),
        "from another issuer": lambda: server.exchange(server.sign(iss="https://elsewhere.example")),
        "not an access token": lambda: server.exchange(
            jwt.encode({"alg": "RS256", "kid": server.state.key.kid}, jwt.decode(good, server.state.key).claims,
                       server.state.key)),
        "garbage": lambda: server.exchange("not-a-token"),
        "no audience": lambda: server.exchange(good, audience="-"),
        "audience not allowed": lambda: server.exchange(good, audience="council-api"),
        "scope beyond the client's": lambda: server.exchange(good, scope="api.read api.write"),
        "actor token": lambda: server.exchange(good, actor_token=good, actor_token_type=ACCESS_TOKEN),
        "resource": lambda: server.exchange(good, resource="https://clinic.example/api"),
        "a refresh token asked for": lambda: server.exchange(
            good, requested_token_type="urn:ietf:params:oauth:token-type:refresh_token"),
    }  # fmt: skip
    response = await requests[case]()
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()
