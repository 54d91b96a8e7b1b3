"""Credentials for HTTP departments, end to end against the dev issuer on loopback.

Token exchange (RFC 8693): a caller's real token goes to the gateway over HTTP; the gateway exchanges it
at the dev issuer and the department's API receives only the exchanged token, narrowed to its own
audience and carrying the caller as subject. Client credentials: one token for all fetches, refreshed
after the API refuses it. Every token is really signed, and verified by the API.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.base import NO_CONTEXT
from adapters.errors import SourceAuthError
from adapters.http_credentials import create_source_credential
from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from gateway.principal import Principal
from schema.catalog import load_catalog
from schema.credentials import ClientCredentials
from tests.conftest import run, started_gateway
from tests.fixtures.clinic_data import CASES, PEOPLE
from tests.support.bombs import MIB, bomb_response, compressed
from tests.support.http_clinic import clinic_rest_api, http_catalog_data, write_http_catalog
from tests.support.rest_api import RestApi
from tests.support.servers import free_port, gateway_app, serving

POLICY = Path(__file__).parent / "fixtures" / "clinic_policy.yaml"
AUDIENCES = {"clinic": "clinic-api", "council": "council-api"}
CLIENTS = [
    {"id": "full-app", "name": "A caller", "scopes": ["clinic.full"], "claims": {"organisation": "X1"}},
    {"id": "reception-app", "name": "Another caller", "scopes": ["clinic.reception"]},
    {
        "id": "fedgate-gateway",
        "name": "fedgate itself",
        "scopes": ["clinic.read", "council.read"],
        "exchange_audiences": list(AUDIENCES.values()),
    },
    {"id": "fedgate-service", "name": "fedgate's service account", "scopes": ["clinic.read"]},
]


def _counting(app: ASGIApp, log: list[str]) -> ASGIApp:
    """The app, noting each request's path (to count token requests)."""

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            log.append(scope["path"])
        await app(scope, receive, send)

    return counted


class Issuer:
    """The dev issuer on loopback, with its key, the clients' secrets and a count of token requests."""

    def __init__(self, directory: Path, port: int) -> None:
        self.settings = DevIssuerSettings.model_validate(
            {"port": port, "state_file": str(directory / "issuer.json"), "clients": CLIENTS, "enabled": True}
        )
        self.state = DevIssuerState.load_or_create(self.settings)
        self.url = self.settings.issuer
        self.token_url = f"{self.url}/oauth/token"
        self.paths: list[str] = []

    @property
    def token_requests(self) -> int:
        return self.paths.count("/oauth/token")

    def secret(self, client: str) -> str:
        return self.state.client_secrets[client]

    async def token(self, client: str) -> str:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                self.token_url, data={"grant_type": "client_credentials"}, auth=(client, self.secret(client))
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def verify(self, header: str | None, audience: str) -> dict[str, Any] | None:
        """The claims of a bearer token this issuer signed for ``audience``, or ``None``."""
        if header is None or not header.startswith("Bearer "):
            return None
        key = RSAKey.import_key(self.state.key.as_dict(private=False))
        try:
            decoded = jwt.decode(header.removeprefix("Bearer "), key, algorithms=["RS256"])
        except ValueError:
            return None
        claims = decoded.claims
        current = claims.get("iss") == self.url and claims.get("exp", 0) > time.time()
        return dict(claims) if current and claims.get("aud") == audience else None


@pytest.fixture
async def issuer(tmp_path: Path) -> AsyncIterator[Issuer]:
    port = free_port()
    found = Issuer(tmp_path, port)
    async with serving(_counting(create_dev_issuer_app(found.settings), found.paths), port):
        yield found


@dataclass
class Department:
    api: RestApi
    url: str
    #: Claims of every token the API accepted, by path.
    accepted: list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def department(issuer: Issuer) -> AsyncIterator[Department]:
    api = clinic_rest_api()
    accepted: list[tuple[str, dict[str, Any]]] = []

    def authorize(header: str | None, path: str) -> bool:
        audience = AUDIENCES[path.split("/")[1]]
        claims = issuer.verify(header, audience)
        if claims is not None:
            accepted.append((path, claims))
        return claims is not None

    api.behaviour.authorize = authorize
    async with serving(api.app) as url:
        yield Department(api, url, accepted)


def _catalog_data(department: Department, credential: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    urls = {name: f"{department.url}/{name}" for name in AUDIENCES}
    data = http_catalog_data("rest", urls)
    for entry in data["departments"]:
        entry["source"]["credential"] = credential(entry["name"])
    return data


def _exchange(issuer: Issuer, **overrides: Any) -> Callable[[str], dict[str, Any]]:
    def credential(name: str) -> dict[str, Any]:
        return {
            "kind": "token_exchange",
            "token_url": issuer.token_url,
            "client_id": "fedgate-gateway",
            "client_secret_env": "FEDGATE_EXCHANGE_SECRET",
            "audience": AUDIENCES[name],
            "scope": f"{name}.read",
            **overrides,
        }

    return credential


async def test_token_exchange_end_to_end(
    issuer: Issuer, department: Department, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_EXCHANGE_SECRET", issuer.secret("fedgate-gateway"))
    write_http_catalog(tmp_path, _catalog_data(department, _exchange(issuer))).rename(tmp_path / "catalog.yaml")
    shutil.copy(POLICY, tmp_path / "policy.yaml")
    settings = {
        "catalog": "catalog.yaml",
        "auth": {"issuers": [{"issuer": issuer.url, "audiences": ["fedgate"], "profile": "rfc9068"}]},
        "policy": {"file": "policy.yaml"},
        "purposes": {"required": False},
        "agreements": {"required": False},
        "audit": {"enabled": False},
        "logging": {"format": "console", "level": "warning"},
    }
    (tmp_path / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    caller = await issuer.token("full-app")
    query = {"query": "{ clinic { people { personId cases { caseId } } } }"}
    async with (
        serving(gateway_app(tmp_path / "fedgate.yaml")) as gateway_url,
        httpx.AsyncClient() as http,
    ):
        first = await http.post(f"{gateway_url}/graphql", json=query, headers={"authorization": f"Bearer {caller}"})
        exchanges = issuer.token_requests
        second = await http.post(f"{gateway_url}/graphql", json=query, headers={"authorization": f"Bearer {caller}"})
        after_second = issuer.token_requests
        other = await issuer.token("reception-app")
        third = await http.post(
            f"{gateway_url}/graphql",
            json={"query": "{ clinic { people { personId } } }"},
            headers={"authorization": f"Bearer {other}"},
        )
        after_third = issuer.token_requests
    for response in (first, second, third):
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()
    people = first.json()["data"]["clinic"]["people"]
    assert [p["personId"] for p in people] == sorted(p["person_id"] for p in PEOPLE)
    known = {p["nhs_number"] for p in PEOPLE if p["nhs_number"]}
    assert sum(len(p["cases"]) for p in people) == len([c for c in CASES if c["nhs_number"] in known])
    # One exchange per department audience (plus the caller's own token); cached for the second request.
    assert exchanges == 3
    assert after_second == exchanges
    assert after_third == after_second + 2  # a new caller: its own token + one exchange (clinic only)

    # The API only ever saw exchanged tokens: never a caller's token.
    headers = [value for request in department.api.log for value in request.headers.values()]
    assert not any(caller in value or other in value for value in headers)
    # Every request with a token had an exchanged one; the others are the background health checks, which
    # carry no credential at all (and ask for one row).
    with_token = [request for request in department.api.log if "authorization" in request.headers]
    assert with_token and len(department.accepted) == len(with_token)
    checks = [request for request in department.api.log if "authorization" not in request.headers]
    assert all({("page_size", "1"), ("limit", "1")} & set(request.params) for request in checks)
    for path, claims in department.accepted:
        name = path.split("/")[1]
        assert claims["aud"] == AUDIENCES[name]
        assert claims["sub"] in {"full-app", "reception-app"}
        assert claims["client_id"] == "fedgate-gateway"
        assert claims["act"] == {"sub": "fedgate-gateway"}
        assert claims["scope"] == f"{name}.read"
        assert "organisation" not in claims  # the exchanging client's own claims are not copied
    assert {claims["sub"] for _, claims in department.accepted} == {"full-app", "reception-app"}


async def test_token_exchange_fails_closed_without_a_caller_token(
    issuer: Issuer, department: Department, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_EXCHANGE_SECRET", issuer.secret("fedgate-gateway"))
    catalog = load_catalog(write_http_catalog(tmp_path, _catalog_data(department, _exchange(issuer))))
    gateway = await started_gateway(catalog)  # authentication disabled: no caller token at all
    try:
        response = await run(gateway, "{ clinic { people { personId } } }")
        health = await gateway.sources.health()
    finally:
        await gateway.stop()
    assert response.data == {"clinic": {"people": None}}
    assert response.errors[0]["extensions"]["code"] == "SOURCE_AUTH_FAILED"
    assert "caller's token" in response.errors[0]["message"]
    assert issuer.token_requests == 0
    # Health asks the API without a credential: refused (401), but up.
    assert all(h.ok for h in health)
    assert department.accepted == []


@pytest.mark.parametrize(
    ("overrides", "secret", "code"),
    [
        ({}, "not-the-secret", "SOURCE_AUTH_FAILED"),
        ({"audience": "somebody-else"}, None, "SOURCE_AUTH_FAILED"),
        ({"scope": "clinic.read clinic.write"}, None, "SOURCE_AUTH_FAILED"),
        ({"client_auth": "client_secret_post"}, None, None),
        ({"token_url": f"http://127.0.0.1:{free_port()}/oauth/token"}, None, "SOURCE_UNAVAILABLE"),
    ],
)
async def test_token_endpoint_refusals_and_outages(
    issuer: Issuer,
    department: Department,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
    secret: str | None,
    code: str | None,
) -> None:
    monkeypatch.setenv("FEDGATE_EXCHANGE_SECRET", secret or issuer.secret("fedgate-gateway"))
    catalog = load_catalog(write_http_catalog(tmp_path, _catalog_data(department, _exchange(issuer, **overrides))))
    gateway = await started_gateway(catalog)
    caller = Principal(subject="full-app", token=SecretStr(await issuer.token("full-app")), authenticated=True)
    try:
        response = await run(gateway, "{ clinic { people(limit: 2) { personId } } }", principal=caller)
    finally:
        await gateway.stop()
    if code is None:
        assert response.errors == []
        assert department.accepted[0][1]["sub"] == "full-app"
    else:
        assert response.errors[0]["extensions"]["code"] == code
        assert department.api.log == []


async def test_client_credentials_are_fetched_once_and_renewed_when_refused(
    issuer: Issuer, department: Department, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_SERVICE_SECRET", issuer.secret("fedgate-service"))

    def credential(name: str) -> dict[str, Any]:
        return {
            "kind": "client_credentials",
            "token_url": issuer.token_url,
            "client_id": "fedgate-service",
            "client_secret_env": "FEDGATE_SERVICE_SECRET",
            "scope": "clinic.read",
        }

    # Client-credentials tokens from the dev issuer are for its own audience.
    department.api.behaviour.authorize = lambda header, path: issuer.verify(header, "fedgate") is not None
    gateway = await started_gateway(load_catalog(write_http_catalog(tmp_path, _catalog_data(department, credential))))
    try:
        queries = [run(gateway, f'{{ clinic {{ person(personId: "p0{n}") {{ personId }} }} }}') for n in range(1, 9)]
        answers = await asyncio.gather(*queries)
        assert all(answer.errors == [] for answer in answers)
        assert issuer.token_requests == 1  # eight concurrent fetches, one token request
        council = await run(gateway, "{ council { cases { caseId } } }")
        assert council.errors == []
        assert issuer.token_requests == 2  # the other department's adapter has its own
        # The API refuses the token once: that fetch fails, and the cached token is dropped.
        refusals = [True]

        def refuse_once(header: str | None, path: str) -> bool:
            if refusals:
                return not refusals.pop()
            return issuer.verify(header, "fedgate") is not None

        department.api.behaviour.authorize = refuse_once
        failed = await run(gateway, '{ clinic { person(personId: "p01") { personId } } }')
        assert failed.errors[0]["extensions"]["code"] == "SOURCE_AUTH_FAILED"
        again = await run(gateway, '{ clinic { person(personId: "p01") { personId } } }')
        assert again.errors == []
        assert issuer.token_requests == 3
    finally:
        await gateway.stop()


async def test_a_token_endpoint_bomb_is_refused_holding_no_more_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token response that inflates to 128 MiB is refused at 64 KiB; a compressed one under it is read."""
    answers: list[Response] = []

    async def token(request: Request) -> Response:
        return answers.pop(0)

    monkeypatch.setenv("FEDGATE_SERVICE_SECRET", "s3cret")
    async with serving(Starlette(routes=[Route("/token", token, methods=["POST"])])) as url:
        credential = ClientCredentials.model_validate(
            {
                "kind": "client_credentials",
                "token_url": f"{url}/token",
                "client_id": "fedgate-service",
                "client_secret_env": "FEDGATE_SERVICE_SECRET",
            }
        )
        source = create_source_credential("clinic", credential, True)
        answers.append(bomb_response(128 * MIB))
        tracemalloc.start()
        try:
            with pytest.raises(SourceAuthError) as refused:
                await source.authorization(NO_CONTEXT, timeout=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB while reading a token endpoint's bomb"
        assert (
            refused.value.message == "department 'clinic': its authorisation server answered with an oversized response"
        )
        body = json.dumps({"access_token": "t0ken", "token_type": "Bearer", "expires_in": 300}).encode()
        answers.append(Response(compressed(body), media_type="application/json", headers={"content-encoding": "gzip"}))
        assert await source.authorization(NO_CONTEXT, timeout=5) == "Bearer t0ken"
        await source.close()
