"""Row filters and masks give identical answers from SQLite, PostgreSQL and MariaDB, equal to the reference.

The policy is tests/fixtures/clinic_rules.yaml; the reference (tests/support/policy_reference.py) applies the
documented semantics to the fixture rows in plain Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.endpoint import dumps
from gateway.policy.store import Policy
from gateway.principal import Principal
from gateway.service import Gateway
from schema.catalog import Catalog
from tests.conftest import MASTER, RULES, load_test_policy, run
from tests.fixtures.clinic_data import CASES, PEOPLE, VISITS
from tests.support.policy_reference import RefGrant, matches, ordered, pseudonym_key, row_key, shows_plainly, visible

ENGINES = ("sqlite", "postgres", "mariadb", "rest", "graphql")

PEOPLE_COLUMNS = {"person_id", "given_name", "family_name", "born", "nhs_number", "balance", "score", "updated_at"}
RECEPTION = [
    RefGrant(
        PEOPLE_COLUMNS | {"visit_count"},
        lambda row: row["active"] is True or (row["visit_count"] is not None and row["visit_count"] > 2),
        {"nhs_number": "show_last(4)", "family_name": "show_first(2)", "born": "year_only", "balance": "round(0)",
         "updated_at": "month_only"},
    )
]  # fmt: skip
AUDIT = [
    RefGrant(
        {"person_id", "given_name", "nhs_number", "score"},
        lambda row: row["person_id"] in {"p02", "p04", "p05", "p11"},
        {"nhs_number": "hash", "given_name": "redact"},
    )
]
RESEARCH = [
    RefGrant(
        {"born", "score", "balance", "postcode", "visit_count"},
        None,
        {"born": "month_only", "score": "round(1)", "balance": "round(-1)", "postcode": "postcode_district",
         "visit_count": "sql"},
        sql={"visit_count": lambda row: None if row["visit_count"] is None else row["visit_count"] * 10},
    )
]  # fmt: skip
LINKAGE_PEOPLE = [
    RefGrant({"person_id", "nhs_number", "given_name"}, None, {"nhs_number": "pseudonym", "given_name": "null"})
]
LINKAGE_CASES = [
    RefGrant(
        {"case_id", "nhs_number", "status", "opened"}, lambda row: row["status"] == "open", {"nhs_number": "pseudonym"}
    )
]


def principal(*scopes: str, client: str = "app", **attributes: Any) -> Principal:
    return Principal(
        subject=client, client_id=client, scopes=frozenset(scopes), attributes=attributes, authenticated=True
    )


@pytest.fixture(scope="module")
def gateways(policy_gateways: dict[str, Gateway]) -> dict[str, Gateway]:
    return policy_gateways


def _json(value: Any) -> Any:
    return orjson.loads(dumps(value))


async def _same_everywhere(gateways: dict[str, Gateway], query: str, who: Principal) -> Any:
    answers = {}
    for engine in ENGINES:
        response = await run(gateways[engine], query, None, who)
        assert response.errors == [], (engine, response.errors)
        answers[engine] = _json(response.data)
    for engine in ENGINES:
        assert answers[engine] == answers["sqlite"], engine
    return answers["sqlite"]


def _tie(grants: list[RefGrant], key: str = "person_id") -> Callable[[dict[str, Any]], Any]:
    if shows_plainly(grants, key):
        return lambda row: row["__raw__"][key]
    return lambda row: row_key(MASTER, row["__raw__"][key])


def _pick(rows: list[dict[str, Any]], fields: dict[str, str]) -> list[dict[str, Any]]:
    return [{graphql: row[column] for graphql, column in fields.items()} for row in rows]


async def test_filters_and_every_mask_of_one_grant(gateways: dict[str, Gateway]) -> None:
    who = principal("reception", min_visits="2")
    answer = await _same_everywhere(
        gateways,
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId givenName familyName born nhsNumber balance "
        "updatedAt visitCount } } }",
        who,
    )
    rows = ordered(visible(PEOPLE, RECEPTION), [], _tie(RECEPTION))
    fields = {
        "personId": "person_id",
        "givenName": "given_name",
        "familyName": "family_name",
        "born": "born",
        "nhsNumber": "nhs_number",
        "balance": "balance",
        "updatedAt": "updated_at",
        "visitCount": "visit_count",
    }
    assert answer == _json({"clinic": {"people": _pick(rows, fields)}})
    assert {row["personId"] for row in answer["clinic"]["people"]} == {"p01", "p03", "p05", "p07", "p09", "p11", "p13"}


async def test_callers_filter_and_sort_masked_values(gateways: dict[str, Gateway]) -> None:
    who = principal("reception", min_visits="2")
    answer = await _same_everywhere(
        gateways,
        '{ clinic { a: people(where: {nhsNumber: {like: "%0001"}}) { personId nhsNumber } '
        'b: people(where: {born: {eq: "1980-01-01"}}, orderBy: [{familyName: DESC}]) { personId familyName } '
        'c: people(where: {nhsNumber: {eq: "9990000001"}}) { personId } '
        "d: people(orderBy: [{balance: DESC}, {born: ASC}], limit: 3, offset: 1) { personId balance } } }",
        who,
    )
    seen = visible(PEOPLE, RECEPTION)
    tie = _tie(RECEPTION)
    assert answer["clinic"]["a"] == _json(_pick([r for r in seen if matches(r, {"nhs_number": {"like": "%0001"}})],
                                                {"personId": "person_id", "nhsNumber": "nhs_number"}))  # fmt: skip
    b = ordered([r for r in seen if matches(r, {"born": {"eq": dt.date(1980, 1, 1)}})], [("family_name", "DESC")], tie)
    assert answer["clinic"]["b"] == _json(_pick(b, {"personId": "person_id", "familyName": "family_name"}))
    # The stored NHS number is never matched: the filter applies to the masked value only.
    assert answer["clinic"]["c"] == []
    d = ordered(seen, [("balance", "DESC"), ("born", "ASC")], tie)[1:4]
    assert answer["clinic"]["d"] == _json(_pick(d, {"personId": "person_id", "balance": "balance"}))


async def test_a_table_reachable_only_through_a_relationship(gateways: dict[str, Gateway]) -> None:
    who = principal("reception", min_visits="2")
    answer = await _same_everywhere(
        gateways,
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId "
        "visits(orderBy: [{at: DESC}], limit: 2) { visitId } } } }",
        who,
    )
    expected = []
    for person in ordered(visible(PEOPLE, RECEPTION), [], _tie(RECEPTION)):
        own = sorted((v for v in VISITS if v["person_id"] == person["person_id"]), key=lambda v: v["at"], reverse=True)
        expected.append({"personId": person["person_id"], "visits": [{"visitId": v["visit_id"]} for v in own[:2]]})
    assert answer == {"clinic": {"people": expected}}
    for engine in ENGINES:  # no root field: visits of people the caller cannot see are out of reach
        refused = await run(gateways[engine], "{ clinic { visits { visitId } } }", None, who)
        assert refused.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_overlapping_grants_show_the_least_masked_value(gateways: dict[str, Gateway]) -> None:
    who = principal("reception", "audit", min_visits="2", people=["p02", "p04", "p05", "p11"])
    answer = await _same_everywhere(
        gateways,
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId givenName familyName nhsNumber score } } }",
        who,
    )
    grants = RECEPTION + AUDIT
    rows = ordered(visible(PEOPLE, grants), [], _tie(grants))
    fields = {"personId": "person_id", "givenName": "given_name", "familyName": "family_name",
              "nhsNumber": "nhs_number", "score": "score"}  # fmt: skip
    assert answer == _json({"clinic": {"people": _pick(rows, fields)}})
    by_id = {row["personId"]: row for row in answer["clinic"]["people"]}
    assert by_id["p05"]["givenName"] == "bob"  # both grants admit p05: reception shows the name
    assert by_id["p05"]["nhsNumber"] == "****0005"  # show_last(4) is less masked than hash
    assert by_id["p02"]["givenName"] == "[REDACTED]"  # only audit admits p02
    assert by_id["p02"]["familyName"] is None  # and audit does not grant family_name


async def test_de_identified_research_view(gateways: dict[str, Gateway]) -> None:
    who = principal("research")
    answer = await _same_everywhere(
        gateways,
        "{ clinic { people(orderBy: [{born: ASC}]) { born score balance postcode visitCount } } }",
        who,
    )
    rows = ordered(visible(PEOPLE, RESEARCH), [("born", "ASC")], _tie(RESEARCH))
    fields = {
        "born": "born",
        "score": "score",
        "balance": "balance",
        "postcode": "postcode",
        "visitCount": "visit_count",
    }
    assert answer == _json({"clinic": {"people": _pick(rows, fields)}})
    assert {row["postcode"] for row in answer["clinic"]["people"]} >= {"LS6", "ls6", "wf1", "M1", "EC1A", "SW1A"}


async def test_pseudonyms_join_departments_but_differ_per_recipient(gateways: dict[str, Gateway]) -> None:
    query = (
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId nhsNumber givenName "
        "cases(orderBy: [{caseId: ASC}]) { caseId nhsNumber } } } }"
    )
    first = await _same_everywhere(gateways, query, principal("linkage", client="recipient-one"))
    second = await _same_everywhere(gateways, query, principal("linkage", client="recipient-two"))
    key = pseudonym_key(MASTER, "recipient-one")
    people = ordered(visible(PEOPLE, LINKAGE_PEOPLE, pseudonym=key), [], _tie(LINKAGE_PEOPLE))
    cases = visible(CASES, LINKAGE_CASES, pseudonym=key)
    expected = [
        {
            "personId": person["person_id"],
            "nhsNumber": person["nhs_number"],
            "givenName": None,
            "cases": sorted(
                ({"caseId": c["case_id"], "nhsNumber": c["nhs_number"]} for c in cases
                 if person["nhs_number"] is not None and c["nhs_number"] == person["nhs_number"]),
                key=lambda c: c["caseId"],
            ),
        }
        for person in people
    ]  # fmt: skip
    assert first == {"clinic": {"people": expected}}
    assert [p["cases"] for p in first["clinic"]["people"] if p["personId"] == "p01"] == [[{
        "caseId": "c1", "nhsNumber": people[0]["nhs_number"]}]]  # fmt: skip
    one = {p["personId"]: p["nhsNumber"] for p in first["clinic"]["people"]}
    two = {p["personId"]: p["nhsNumber"] for p in second["clinic"]["people"]}
    assert one["p01"] != two["p01"]
    assert not set(one.values()) & set(two.values()) - {None}


def test_the_policy_fixture_loads_cleanly(engine_catalogs: dict[str, Catalog]) -> None:
    policy: Policy = load_test_policy(RULES, engine_catalogs["sqlite"])
    assert sorted(policy.scopes) == ["audit", "linkage", "reception", "research"]
