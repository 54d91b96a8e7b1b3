"""Remote GraphQL departments against a real GraphQL API on loopback (tests/support/graphql_api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.graphql_source import GraphQLAdapter
from gateway.principal import ANONYMOUS
from gateway.service import GraphQLRequest
from schema.catalog import load_catalog
from schema.types import ColumnType
from tests.conftest import first_error, run, started_gateway
from tests.fixtures.clinic_data import PEOPLE, VISITS
from tests.support.graphql_api import RemoteGraphQL
from tests.support.http_clinic import HttpClinic, http_catalog_data, write_http_catalog
from tests.support.servers import serving

Remote = HttpClinic[RemoteGraphQL]


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Remote]:
    api = RemoteGraphQL()
    async with serving(api.app) as url:
        endpoint = f"{url}/graphql"
        harness = HttpClinic("graphql", api, endpoint, {"clinic": endpoint, "council": endpoint}, tmp_path)
        try:
            yield harness
        finally:
            await harness.stop()


async def test_values_travel_as_typed_variables_never_in_the_document(remote: Remote) -> None:
    gateway = await remote.gateway()
    response = await run(
        gateway,
        'query($id: String!) { clinic { people(where: {personId: {eq: $id}, born: {gte: "1970-06-01"}, '
        "active: {eq: true}}) { personId givenName } } }",
        {"id": "p03"},
    )
    assert response.errors == []
    assert response.data == {"clinic": {"people": [{"personId": "p03", "givenName": "Élodie"}]}}
    (request,) = remote.api.log
    assert "p03" not in request.query and "1970" not in request.query and "true" not in request.query
    assert request.query.startswith("query FedgateFetch($v0: String!, $v1: Date!, $v2: Boolean!, $pageSize: Int!, ")
    assert "people(where: {personId: {eq: $v0}, born: {gte: $v1}, active: {eq: $v2}}, first: $pageSize" in request.query
    assert request.variables == {"v0": "p03", "v1": "1970-06-01", "v2": True, "pageSize": 4, "pageAfter": None}


async def test_relay_and_offset_pages_key_set_chunks_and_an_ignored_argument(remote: Remote) -> None:
    remote.api.always_ignored = frozenset({"kind"})
    gateway = await remote.gateway()
    response = await run(
        gateway,
        '{ clinic { people { personId visits(where: {kind: {eq: "gp"}}) { visitId } } } }',
    )
    assert response.errors == []
    assert response.data is not None
    assert {p["personId"]: [v["visitId"] for v in p["visits"]] for p in response.data["clinic"]["people"]} == {
        p["person_id"]: [v["visit_id"] for v in VISITS if v["person_id"] == p["person_id"] and v["kind"] == "gp"]
        for p in PEOPLE
    }
    people = [r for r in remote.api.log if "people(" in r.query]
    assert [r.variables["pageAfter"] is None for r in people] == [True, False, False, False]  # 13 people, 4 a page
    visits = [r for r in remote.api.log if "visits(" in r.query]
    # The ignored kind is sent anyway (and re-applied); the key set, split last, 2 keys a request.
    assert all("visits(kind: $v0, personIds: $v1, limit: $pageSize, offset: $pageOffset)" in r.query for r in visits)
    assert all(len(r.variables["v1"]) <= 2 and r.variables["v0"] == "gp" for r in visits)
    assert sorted({key for r in visits for key in r.variables["v1"]}) == sorted(p["person_id"] for p in PEOPLE)


async def test_a_namespaced_field_and_a_row_filter_literal(remote: Remote) -> None:
    gateway = await remote.gateway()
    response = await run(gateway, '{ council { cases(where: {status: {eq: "closed"}}) { caseId opened } } }')
    assert response.errors == []
    assert response.data is not None
    assert [(c["caseId"], str(c["opened"])) for c in response.data["council"]["cases"]] == [
        ("c2", "2024-03-03"),
        ("c5", "2023-05-05"),
    ]
    (request,) = remote.api.log
    # Only the columns the statement needs are selected (status: fedgate filters on it again).
    assert "{ council { cases(status: $v0) { caseId opened status } } }" in request.query
    assert request.variables == {"v0": "closed"}


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [
        ({"status": 500}, "SOURCE_UNAVAILABLE"),
        ({"status": 400}, "SOURCE_QUERY_FAILED"),
        ({"status": 401}, "SOURCE_AUTH_FAILED"),
        ({"error_code": "UNAUTHENTICATED"}, "SOURCE_AUTH_FAILED"),
        ({"error_code": "INTERNAL_SERVER_ERROR"}, "SOURCE_QUERY_FAILED"),
    ],
)
async def test_remote_failures_are_mapped_and_their_messages_kept_out(
    remote: Remote, behaviour: dict[str, Any], code: str
) -> None:
    gateway = await remote.gateway()
    for name, value in behaviour.items():
        setattr(remote.api.behaviour, name, value)
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert response.data == {"clinic": {"people": None}}
    error = first_error(response)
    assert error["extensions"]["code"] == code
    assert error["message"].startswith("department 'clinic' ")
    assert "9990000001" not in error["message"] and "who are you" not in error["message"]


async def test_a_remote_that_rejects_the_document_fails_the_fetch(remote: Remote) -> None:
    data = http_catalog_data("graphql", {"clinic": remote.url, "council": remote.url})
    data["departments"][0]["tables"][0]["graphql"]["fields"]["postcode"] = "postCode"  # not in the remote schema
    gateway = await started_gateway(load_catalog(write_http_catalog(remote.directory, data)))
    remote.gateways.append(gateway)
    response = await run(gateway, "{ clinic { people { postcode } } }")
    assert first_error(response)["extensions"]["code"] == "SOURCE_QUERY_FAILED"
    assert "postCode" not in first_error(response)["message"]


async def test_a_bearer_credential_health_explain_and_introspection(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMOTE_TOKEN", "remote-service-token")
    remote.api.behaviour.required_authorization = "Bearer remote-service-token"
    gateway = await remote.gateway(credential={"kind": "bearer", "token_env": "REMOTE_TOKEN"})
    assert all(health.ok for health in await gateway.sources.health())
    assert remote.api.log[0].query == "{ __typename }"

    prepared = gateway.prepare(
        GraphQLRequest('{ clinic { people(where: {personId: {eq: "p01"}}) { born } } }'), ANONYMOUS
    )
    shown = prepared.bound.statement(prepared.bound.plan.scans[0]).display_sql
    assert shown.startswith(
        f"POST {remote.url} {{ people(where.personId.eq: {{:p0}}) }} (pages: relay)\nthen in fedgate:"
    )

    adapter = gateway.sources.adapter("clinic")
    assert isinstance(adapter, GraphQLAdapter)
    tables = {table.name: table for table in await adapter.introspect()}
    assert set(tables) == {"visits"}  # the only root field returning a list of objects
    columns = {column.name: (column.native_type, column.type, column.nullable) for column in tables["visits"].columns}
    assert columns == {
        "visitId": ("Int", ColumnType.INTEGER, False),
        "personId": ("String", ColumnType.STRING, False),
        "at": ("DateTime", None, False),
        "kind": ("String", ColumnType.STRING, False),
        "cost": ("Decimal", None, True),
    }

    remote.api.behaviour.status = 503
    assert [(h.ok, h.code) for h in await gateway.sources.health()] == [(False, "SOURCE_UNAVAILABLE")] * 2
    # A 200 carrying a GraphQL error is not healthy either.
    remote.api.behaviour.status, remote.api.behaviour.error_code = None, "UNAUTHENTICATED"
    assert [(h.ok, h.code) for h in await gateway.sources.health()] == [(False, "SOURCE_AUTH_FAILED")] * 2
