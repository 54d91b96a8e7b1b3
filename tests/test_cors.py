"""CORS: off by default; with exact origins listed, browser apps on those origins (and only those) may call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.support.servers import serving

APP = "https://care-app.leeds.gov.uk"
QUERY = {"query": '{ clinic { person(personId: "p03") { givenName } } }'}


def _settings(**cors: Any) -> Settings:
    document = {"catalog": "unused.yaml", "auth": {"enabled": False}, "logging": {"format": "console"}}
    if cors:
        document["cors"] = cors
    return Settings.model_validate(document)


@pytest.fixture
async def open_to_one_app(sqlite_clinic: Catalog) -> AsyncIterator[str]:
    settings = _settings(allow_origins=[APP], max_age_seconds=120)
    async with serving(create_app(settings, sqlite_clinic, None)) as url:
        yield url


@pytest.fixture
async def default(sqlite_clinic: Catalog) -> AsyncIterator[str]:
    async with serving(create_app(_settings(), sqlite_clinic, None)) as url:
        yield url


def _preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers}


async def test_cors_is_off_by_default(default: str) -> None:
    async with httpx.AsyncClient() as client:
        preflight = await client.options(f"{default}/graphql", headers=_preflight(APP))
        answer = await client.post(f"{default}/graphql", json=QUERY, headers={"Origin": APP})
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


async def test_a_listed_origin_gets_a_preflight_and_its_answers(open_to_one_app: str) -> None:
    async with httpx.AsyncClient() as client:
        preflight = await client.options(f"{open_to_one_app}/graphql", headers=_preflight(APP))
        answer = await client.post(f"{open_to_one_app}/graphql", json=QUERY, headers={"Origin": APP})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["access-control-max-age"] == "120"
    assert "access-control-allow-credentials" not in preflight.headers
    assert answer.json()["data"] == {"clinic": {"person": {"givenName": "Élodie"}}}
    assert answer.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize("origin", ["https://evil.example", "https://care-app.leeds.gov.uk.evil.example", "null"])
async def test_any_other_origin_gets_nothing(open_to_one_app: str, origin: str) -> None:
    async with httpx.AsyncClient() as client:
        preflight = await client.options(f"{open_to_one_app}/graphql", headers=_preflight(origin))
        answer = await client.post(f"{open_to_one_app}/graphql", json=QUERY, headers={"Origin": origin})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in answer.headers


async def test_a_header_not_allowed_fails_the_preflight(open_to_one_app: str) -> None:
    async with httpx.AsyncClient() as client:
        preflight = await client.options(f"{open_to_one_app}/graphql", headers=_preflight(APP, "x-debug"))
    assert preflight.status_code == 400


@pytest.mark.parametrize(
    "origin", ["*", "https://*.leeds.gov.uk", "https://care-app.leeds.gov.uk/", "care-app.leeds.gov.uk", "HTTPS://A"]
)
def test_only_exact_origins_are_accepted(origin: str, tmp_path: Any) -> None:
    (tmp_path / "fedgate.yaml").write_text(f"catalog: c.yaml\ncors:\n  allow_origins: ['{origin}']\n")
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path / "fedgate.yaml")
    assert "cors.allow_origins[0]" in str(error.value)
    assert ":3:" in str(error.value)
