"""Entities under policy: what a caller may join on, merged values from what they may read, semi-joins
over visible rows only, and the schema each caller sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.principal import Principal
from gateway.service import Gateway
from gateway.settings import Settings
from schema.catalog import Catalog
from tests.conftest import FIXTURES, load_test_policy, make_settings, run, started_gateway
from tests.support.person_federation import sqlite_people

__all__ = ["sqlite_people"]

POLICY = FIXTURES / "person_policy.yaml"


def who(*scopes: str, **attributes: Any) -> Principal:
    return Principal(subject="t", client_id="t", scopes=frozenset(scopes), attributes=attributes, authenticated=True)


async def _gateway(catalog: Catalog, settings: Settings | None = None) -> Gateway:
    policy = load_test_policy(POLICY, catalog)
    return await started_gateway(catalog, settings, policy=policy)


@pytest.fixture(scope="module")
async def gateway(sqlite_people: Catalog) -> AsyncIterator[Gateway]:
    started = await _gateway(sqlite_people)
    try:
        yield started
    finally:
        await started.stop()


async def _fields(gateway: Gateway, principal: Principal, type_name: str) -> set[str] | None:
    response = await run(gateway, f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}', None, principal)
    found = response.data["__type"] if response.data else None
    return None if found is None else {field["name"] for field in found["fields"]}


async def test_a_caseworker_sees_the_members_they_may_join(gateway: Gateway) -> None:
    caseworker = who("caseworker", org_code="E08000035")
    fields = await _fields(gateway, caseworker, "Person")
    # No DWP grant: no DWP members; no family name or spells; the merged name has health as a source.
    assert fields == {"nhsNumber", "givenName", "dateOfBirth", "patient", "councilClients", "councilCases", "links",
                      "possibleMatches"}  # fmt: skip
    query = """{ person(nhsNumber: "9990000003") { givenName councilClients { clientId } councilCases { caseId } } }"""
    response = await run(gateway, query, None, caseworker)
    # Cara's client record is another council's: hidden. Cases carry no council code, so they show.
    assert response.errors == []
    assert response.data == {"person": {"givenName": None, "councilClients": [], "councilCases": [{"caseId": "K3"}]}}


async def test_semi_joins_see_only_the_rows_the_caller_may_see(gateway: Gateway) -> None:
    query = '{ people(where: {councilClients: {givenName: {eq: "Cara"}}}) { nhsNumber } }'
    everyone = await run(gateway, query, None, who("everything"))
    assert everyone.data == {"people": [{"nhsNumber": "9990000003"}]}
    caseworker = await run(gateway, query, None, who("caseworker", org_code="E08000035"))
    assert caseworker.errors == []
    assert caseworker.data == {"people": []}


async def test_a_pseudonymised_key_gives_no_person_field(gateway: Gateway) -> None:
    principal = who("pseudonymous_index")
    assert await _fields(gateway, principal, "Person") is None
    response = await run(gateway, '{ person(nhsNumber: "9990000001") { nhsNumber } }', None, principal)
    assert response.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_members_joined_through_a_masked_identifier_are_not_offered(gateway: Gateway) -> None:
    principal = who("hashed_nino")
    fields = await _fields(gateway, principal, "Person")
    assert fields is not None
    assert "claims" not in fields
    assert "spells" in fields
    response = await run(gateway, '{ people(where: {claims: {status: {eq: "open"}}}) { nhsNumber } }', None, principal)
    assert response.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_no_link_table_no_person(gateway: Gateway) -> None:
    response = await run(gateway, "{ __schema { queryType { fields { name } } } }", None, who("health_only"))
    names = {field["name"] for field in response.data["__schema"]["queryType"]["fields"]}
    assert names == {"health"}


@pytest.mark.parametrize("mode", ["reject", "null"])
async def test_full_visibility_refuses_or_nulls_what_the_caller_may_not_join(sqlite_people: Catalog, mode: str) -> None:
    settings = make_settings()
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"schema_visibility": "full", "forbidden_fields": mode})}
    )
    gateway = await _gateway(sqlite_people, settings)
    try:
        principal = who("caseworker", org_code="E08000035")
        response = await run(
            gateway, '{ person(nhsNumber: "9990000001") { givenName claims { claimId } } }', None, principal
        )
        filtered = await run(
            gateway, '{ people(where: {claims: {status: {eq: "open"}}}) { nhsNumber } }', None, principal
        )
    finally:
        await gateway.stop()
    if mode == "reject":
        assert response.data is None
        assert response.errors[0]["extensions"]["code"] == "FORBIDDEN_FIELD"
        assert "Person.claims" in response.errors[0]["message"]
    else:
        assert response.data == {"person": {"givenName": "Ann", "claims": None}}
        assert response.errors[0]["extensions"] == {"code": "FORBIDDEN_COLUMN", "field": "Person.claims"}
        assert response.errors[0]["path"] == ["person", "claims"]
    # A condition on what the caller may not read is refused in every mode: ignoring it would change the answer.
    assert filtered.data is None
    assert filtered.errors[0]["extensions"]["code"] == "FORBIDDEN_FIELD"


async def test_explain_shows_each_step_and_the_keys_it_moved(gateway: Gateway) -> None:
    where = '{councilCases: {status: {eq: "open"}}, spells: {method: {eq: "emergency"}}}'
    response = await run(
        gateway, f"{{ people(where: {where}) {{ nhsNumber }} }}", None, who("everything", "fedgate:explain")
    )
    assert response.data == {"people": [{"nhsNumber": "9990000001"}]}
    steps = [entry for entry in response.extensions["plan"] if entry.get("role", "").startswith("people step")]
    # Exact SQLite counts: 5 spells against 6 cases, so spells first. Emergencies: Ann, Dee and Finn;
    # of those only Ann has a confident council id (C1), which has an open case.
    assert [(step["department"], step["keys"]) for step in steps] == [
        ("health", {"in": 0, "out": 3}),
        ("council", {"in": 1, "out": 1}),
    ]
    assert "receives the keys found so far" in steps[1]["role"]


async def test_a_page_of_people_counts_only_the_link_rows_the_caller_may_see(gateway: Gateway) -> None:
    # Deterministic links: 9990000001, -02, -03, -05 (link 5; link 6 is probabilistic) and -07; 9990000004
    # has only a probabilistic link. The page and the link rows are one statement (gateway/planning/
    # page_links.py): the filter must hold in both, or -04 would take a place on the page and -05 would
    # show link 6.
    query = "{ people(limit: 2, offset: 2) { nhsNumber links { linkId } } }"
    response = await run(gateway, query, None, who("deterministic_links"))
    assert response.errors == []
    assert response.data == {
        "people": [
            {"nhsNumber": "9990000003", "links": [{"linkId": 3}]},
            {"nhsNumber": "9990000005", "links": [{"linkId": 5}]},
        ]
    }
