"""End to end over HTTP: `fedgate serve` in its own process on a free port, queried with httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from gateway.graphiql import ASSETS
from schema.catalog import Catalog
from tests.support.servers import fedgate_serve, free_port, wait_until_healthy

QUERY = '{ clinic { person(personId: "p03") { givenName born balance updatedAt cases { caseId } } } }'


@pytest.fixture(scope="module")
def server(sqlite_clinic: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("http")
    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(sqlite_clinic.model_dump(mode="json", by_alias=True, exclude_none=True)))
    settings = {
        "catalog": str(catalog_file),
        "server": {"max_body_bytes": 4096},
        "graphiql": {"assets_url": "https://assets.example.gov.uk/npm"},
        "auth": {"enabled": False},
        "logging": {"format": "json", "level": "warning"},
    }
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    port = free_port()
    process = fedgate_serve(directory / "fedgate.yaml", port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, port)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_post_json(server: str) -> None:
    response = httpx.post(f"{server}/graphql", json={"query": QUERY})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "data": {
            "clinic": {
                "person": {
                    "givenName": "Élodie",
                    "born": "1990-12-31",
                    "balance": "100",
                    "updatedAt": "2026-03-04T05:06:07+00:00",
                    "cases": [],
                }
            }
        },
        "extensions": {
            "sources": {
                "clinic": {"status": "complete", "statements": 1},
                "council": {"status": "complete", "statements": 1},
            }
        },
    }


def test_get_with_query_string_and_variables(server: str) -> None:
    response = httpx.get(
        f"{server}/graphql",
        params={
            "query": "query($id: String!) { clinic { person(personId: $id) { givenName } } }",
            "variables": '{"id": "p05"}',
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {"clinic": {"person": {"givenName": "bob"}}},
        "extensions": {"sources": {"clinic": {"status": "complete", "statements": 1}}},
    }


def test_graphql_response_media_type_gives_400_for_invalid_documents(server: str) -> None:
    body = {"query": "{ clinic { people { nope } } }"}
    strict = httpx.post(f"{server}/graphql", json=body, headers={"accept": "application/graphql-response+json"})
    assert strict.status_code == 400
    assert strict.headers["content-type"] == "application/graphql-response+json"
    assert strict.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in strict.json()
    legacy = httpx.post(f"{server}/graphql", json=body, headers={"accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }"}', {"content-type": "text/plain"}, 400, "BAD_REQUEST"),
        (b'{"query": 42}', {"content-type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "variables": [1]}', {"content-type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"query": "' + b"x" * 5000 + b'"}', {"content-type": "application/json"}, 413, "REQUEST_TOO_LARGE"),
        (b"[]", {"content-type": "application/json"}, 400, "BAD_REQUEST"),
        (
            b'{"query": "{ __typename }"}',
            {"content-type": "application/json", "accept": "text/csv"},
            406,
            "BAD_REQUEST",
        ),
    ],
)
def test_malformed_http_requests(server: str, content: bytes, headers: dict[str, str], status: int, code: str) -> None:
    response = httpx.post(f"{server}/graphql", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), ("application/graphql-response+json", 400)])
def test_a_mutation_over_post_fails_validation_with_the_spec_status(server: str, accept: str, status: int) -> None:
    """GraphQL over HTTP: a well-formed request that cannot run is 200 with application/json and 4xx with
    application/graphql-response+json; fedgate's schema has no mutation type, so the operation is invalid."""
    response = httpx.post(f"{server}/graphql", json={"query": "mutation { clinic { x } }"}, headers={"accept": accept})
    assert response.status_code == status
    assert response.headers["content-type"] == accept
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "mutation" in error["message"]


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_a_mutation_over_get_is_405_with_an_allow_header(server: str, accept: str) -> None:
    query = "query Q { __typename } mutation M { clinic { x } }"
    response = httpx.get(f"{server}/graphql", params={"query": query, "operationName": "M"}, headers={"accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "METHOD_NOT_ALLOWED"}
    chosen = httpx.get(f"{server}/graphql", params={"query": query, "operationName": "Q"}, headers={"accept": accept})
    assert chosen.status_code == 200
    assert chosen.json()["data"] == {"__typename": "Query"}


def test_batches(server: str) -> None:
    response = httpx.post(f"{server}/graphql", json=[{"query": "{ __typename }"}, {"query": "{ nope }"}])
    assert response.status_code == 200
    first, second = response.json()
    assert first == {"data": {"__typename": "Query"}}
    assert second["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    too_many = httpx.post(f"{server}/graphql", json=[{"query": "{ __typename }"}] * 11)
    assert too_many.json()["errors"][0]["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "batch_size"}


def test_graphiql_for_browsers(server: str) -> None:
    response = httpx.get(f"{server}/graphql", headers={"accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "https://assets.example.gov.uk" in policy
    assert "frame-ancestors 'none'" in policy
    for asset in ASSETS:
        assert f"https://assets.example.gov.uk/npm/{asset.path}" in response.text
        assert f'integrity="{asset.integrity}"' in response.text
    assert "shouldPersistHeaders: false" in response.text


def test_health_and_readiness(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["departments"]) == {"clinic", "council"}
    assert all(check["ok"] for check in body["departments"].values())


def test_other_methods_and_paths_go_through_the_router(server: str) -> None:
    refused = httpx.put(f"{server}/graphql", json={"query": QUERY})
    assert refused.status_code == 405
    assert set(refused.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert httpx.get(f"{server}/nothing-here").status_code == 404
