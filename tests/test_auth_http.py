"""Authenticated GraphQL over HTTP: tokens from the dev issuer, the gateway app served on loopback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.support.servers import free_port, gateway_app, serving

POLICY = Path(__file__).parent / "fixtures" / "clinic_policy.yaml"
CLIENTS = {
    "full-app": ["clinic.full"],
    "reception-app": ["clinic.reception"],
    "research-app": ["clinic.research"],
    "empty-app": ["clinic.nothing"],
}


def write_settings(directory: Path, catalog: Catalog, issuer_port: int, **policy: Any) -> Settings:
    (directory / "catalog.yaml").write_text(
        yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    shutil.copy(POLICY, directory / "policy.yaml")
    settings = {
        "catalog": "catalog.yaml",
        "auth": {
            "issuers": [{"issuer": f"http://127.0.0.1:{issuer_port}", "audiences": ["fedgate"], "profile": "rfc9068"}]
        },
        "policy": {"file": "policy.yaml", **policy},
        # Scopes alone decide here: purposes and agreements have their own tests (tests/test_governance_*.py).
        "purposes": {"required": False},
        "agreements": {"required": False},
        "audit": {"enabled": False},
        "dev_issuer": {
            "port": issuer_port,
            "state_file": "issuer.json",
            "clients": [{"id": name, "name": name, "scopes": scopes} for name, scopes in CLIENTS.items()],
        },
        "logging": {"format": "console", "level": "warning"},
    }
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    return load_settings(directory / "fedgate.yaml")


class Deployment:
    """The gateway and the dev issuer, both served on loopback."""

    def __init__(self, settings: Settings, gateway_url: str) -> None:
        self.settings = settings
        self.url = f"{gateway_url}/graphql"

    async def token(self, client: str) -> str:
        issuer = self.settings.dev_issuer
        assert issuer is not None
        secret = DevIssuerState.load_or_create(issuer).client_secrets[client]
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{issuer.issuer}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client, secret)
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def query(self, query: str, client: str | None = None, **headers: str) -> httpx.Response:
        if client is not None:
            headers["authorization"] = f"Bearer {await self.token(client)}"
        async with httpx.AsyncClient() as http:
            return await http.post(self.url, json={"query": query}, headers=headers)


async def _deploy(sqlite_clinic: Catalog, directory: Path, **policy: Any) -> AsyncIterator[Deployment]:
    issuer_port = free_port()
    settings = write_settings(directory, sqlite_clinic, issuer_port, **policy)
    assert settings.dev_issuer is not None
    gateway = gateway_app(directory / "fedgate.yaml")
    async with serving(create_dev_issuer_app(settings.dev_issuer), issuer_port), serving(gateway) as url:
        yield Deployment(settings, url)


@pytest.fixture
async def deployment(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[Deployment]:
    async for value in _deploy(sqlite_clinic, tmp_path):
        yield value


async def test_no_token_gets_a_bare_challenge(deployment: Deployment) -> None:
    response = await deployment.query("{ __typename }")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="fedgate"'
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


async def test_an_invalid_token_is_named_without_detail(deployment: Deployment) -> None:
    token = await deployment.token("full-app")
    header, payload, signature = token.split(".")
    response = await deployment.query("{ __typename }", authorization=f"Bearer {header}.{payload}.{signature[:-4]}AAAA")
    assert response.status_code == 401
    expected = (
        'Bearer realm="fedgate", error="invalid_token", error_description="the token' + "'" + 's signature is invalid"'
    )
    assert response.headers["www-authenticate"] == expected
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"


async def test_a_malformed_header_is_a_400(deployment: Deployment) -> None:
    response = await deployment.query("{ __typename }", authorization="Bearer two tokens")
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_a_token_that_grants_nothing_is_a_403_naming_useful_scopes(deployment: Deployment) -> None:
    response = await deployment.query("{ clinic { people { givenName } } }", "empty-app")
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="clinic.full clinic.reception clinic.research"' in challenge
    assert "data" not in response.json()


async def _type_fields(deployment: Deployment, client: str, type_name: str) -> list[str] | None:
    response = await deployment.query(f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}', client)
    found = response.json()["data"]["__type"]
    return None if found is None else [field["name"] for field in found["fields"]]


async def test_each_caller_sees_only_its_slice_of_the_schema(deployment: Deployment) -> None:
    full = await _type_fields(deployment, "full-app", "ClinicPerson")
    assert full is not None
    assert {"nhsNumber", "balance", "visits", "cases"} <= set(full)
    reception = await _type_fields(deployment, "reception-app", "ClinicPerson")
    # No NHS number, so no join to the council's cases either (it would reveal the number).
    assert reception == ["personId", "givenName", "familyName", "visits"]
    assert await _type_fields(deployment, "reception-app", "ClinicQuery") == ["people", "person", "visits", "visit"]
    research = await _type_fields(deployment, "research-app", "ClinicPerson")
    assert research == ["born", "score"]
    # The primary key is hidden, so there is no look-up by it; the council is invisible.
    assert await _type_fields(deployment, "research-app", "ClinicQuery") == ["people"]
    assert await _type_fields(deployment, "research-app", "CouncilCase") is None


async def test_a_hidden_field_is_refused_like_one_that_does_not_exist(deployment: Deployment) -> None:
    hidden = await deployment.query("{ clinic { people { givenName nhsNumber } } }", "reception-app")
    missing = await deployment.query("{ clinic { people { givenName shoeSize } } }", "reception-app")
    assert hidden.status_code == missing.status_code == 200
    assert "data" not in hidden.json()
    (error,) = hidden.json()["errors"]
    (other,) = missing.json()["errors"]
    assert error["extensions"]["code"] == other["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["message"] == "Cannot query field 'nhsNumber' on type 'ClinicPerson'."
    filtered = await deployment.query(
        '{ clinic { people(where: {nhsNumber: {eq: "9990000001"}}) { givenName } } }', "reception-app"
    )
    assert filtered.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_callers_with_different_rights_share_nothing(deployment: Deployment) -> None:
    query = "{ clinic { people(limit: 2) { givenName nhsNumber } } }"
    allowed = await deployment.query(query, "full-app")
    assert allowed.json()["data"]["clinic"]["people"][0]["nhsNumber"] == "9990000001"
    refused = await deployment.query(query, "reception-app")  # the same text, validated and planned again
    assert "data" not in refused.json()
    again = await deployment.query(query, "full-app")
    assert again.json() == allowed.json()


async def test_full_visibility_refuses_fields_outside_the_grants(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    async for deployment in _deploy(sqlite_clinic, tmp_path, schema_visibility="full"):
        schema_view = await _type_fields(deployment, "reception-app", "ClinicPerson")
        assert schema_view is not None
        assert "nhsNumber" in schema_view
        refused = await deployment.query(
            "{ clinic { people { givenName nhsNumber cases { caseId } } } }", "reception-app"
        )
        body = refused.json()
        assert "data" not in body
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN_FIELD"
        assert error["message"] == (
            "the query asks for fields outside your grants: ClinicPerson.cases, ClinicPerson.nhsNumber"
        )
        sorted_on_hidden = await deployment.query(
            "{ clinic { people(orderBy: [{born: ASC}]) { givenName } } }", "reception-app"
        )
        assert sorted_on_hidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN_FIELD"
        fine = await deployment.query('{ clinic { person(personId: "p01") { givenName } } }', "reception-app")
        assert fine.json()["data"] == {"clinic": {"person": {"givenName": "alice"}}}
