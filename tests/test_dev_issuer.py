"""The development authorization server: client credentials, RFC 9068 tokens, discovery, safety rails."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from gateway.auth.bearer import Authenticator
from gateway.auth.config import AuthSettings
from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from gateway.cli import app
from gateway.configuration import load_configuration
from gateway.settings import Settings
from schema.catalog import Catalog
from tests.support.servers import free_port, serving
from tests.test_auth_http import write_settings
from tests.test_auth_tokens import bearer


@pytest.fixture
async def issuer(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[tuple[Settings, str]]:
    port = free_port()
    settings = write_settings(tmp_path, sqlite_clinic, port)
    assert settings.dev_issuer is not None
    async with serving(create_dev_issuer_app(settings.dev_issuer), port) as url:
        yield settings, url


def _secret(settings: Settings, client: str) -> str:
    assert settings.dev_issuer is not None
    return DevIssuerState.load_or_create(settings.dev_issuer).client_secrets[client]


async def test_client_credentials_issue_verifiable_at_jwt_tokens(issuer: tuple[Settings, str]) -> None:
    settings, url = issuer
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("reception-app", _secret(settings, "reception-app")),
        )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "clinic.reception"
    authenticator = Authenticator(settings.auth)
    authenticator.start()
    principal = await authenticator(bearer(body["access_token"]))
    assert (principal.subject, principal.client_id, principal.scopes) == (
        "reception-app",
        "reception-app",
        {"clinic.reception"},
    )
    await authenticator.close()


async def test_scopes_are_limited_to_the_clients_own(issuer: tuple[Settings, str]) -> None:
    settings, url = issuer
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": "clinic.reception clinic.full"},
            auth=("reception-app", _secret(settings, "reception-app")),
        )
    assert response.json()["scope"] == "clinic.reception"


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("reception-app", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "password", "username": "a", "password": "b"}, None, 400, "unsupported_grant_type"),
    ],
)
async def test_refusals(
    issuer: tuple[Settings, str], data: dict[str, str], auth: tuple[str, str] | None, status: int, error: str
) -> None:
    _, url = issuer
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}/oauth/token", data=data, auth=auth)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_discovery_and_public_keys(issuer: tuple[Settings, str]) -> None:
    _, url = issuer
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(f"{url}/.well-known/openid-configuration")).json()
        keys = (await http.get(metadata["jwks_uri"])).json()["keys"]
    assert metadata["issuer"] == url
    assert metadata["token_endpoint"] == f"{url}/oauth/token"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert "d" not in keys[0]  # never the private part


def test_state_is_private_and_stable(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    settings = write_settings(tmp_path, sqlite_clinic, 8001)
    assert settings.dev_issuer is not None
    first = DevIssuerState.load_or_create(settings.dev_issuer)
    mode = stat.S_IMODE(settings.dev_issuer.state_path.stat().st_mode)
    assert mode == 0o600
    second = DevIssuerState.load_or_create(settings.dev_issuer)
    assert second.client_secrets == first.client_secrets
    assert second.key.kid == first.key.kid


def test_it_runs_only_in_the_demo_unless_enabled(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    settings = write_settings(tmp_path, sqlite_clinic, free_port())
    assert settings.dev_issuer is not None and not settings.dev_issuer.enabled
    config = tmp_path / "fedgate.yaml"
    assert load_configuration(config).dev_issuer is None
    assert not settings.dev_issuer.state_path.exists()  # not run, so its state is not made either
    assert load_configuration(config, demo=True).dev_issuer == settings.dev_issuer
    assert settings.dev_issuer.state_path.exists()
    document = yaml.safe_load(config.read_text())
    document["dev_issuer"]["enabled"] = True
    config.write_text(yaml.safe_dump(document))
    assert load_configuration(config).dev_issuer is not None


async def test_fedgate_token_prints_a_token(issuer: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = issuer
    config = tmp_path / "fedgate.yaml"
    # The command blocks on HTTP while the issuer is served on this event loop: run it on a thread.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["token", "--client", "research-app", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    authenticator = Authenticator(AuthSettings.model_validate(settings.auth.model_dump()))
    authenticator.start()
    assert (await authenticator(bearer(token))).scopes == {"clinic.research"}
    await authenticator.close()
    unknown = CliRunner().invoke(app, ["token", "--client", "nobody", "--config", str(config)])
    assert unknown.exit_code == 2
