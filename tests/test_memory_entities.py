"""Entity merge (the Person entity of tests/fixtures/person_catalog.yaml) over in-memory departments.

Expected records are written by hand from tests/fixtures/person_data.py, whose docstring says what each
person is for. The link threshold is 0.9: Dee's only link row (0.62) and Eve's link to council (0.7)
give possible matches, never merged records. No server, no file, no network.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from adapters.errors import SourceTimeoutError, SourceUnavailableError
from schema.catalog import Catalog, load_catalog
from tests.conftest import run
from tests.fixtures.person_data import ROWS
from tests.support.memory_source import memory_gateway
from tests.support.person_federation import PERSON_CATALOG

D = dt.date

FULL = """
query One($n: String!) {
  person(nhsNumber: $n) {
    nhsNumber givenName familyName dateOfBirth
    patient { postcode }
    spells { spellId }
    councilClients { clientId laCode }
    councilCases { caseId status }
    dwpCustomer { nino givenName dateOfBirth }
    claims { claimId weeklyAmount }
    links { linkId score method }
    possibleMatches {
      link { linkId } dwpCustomer { nino } councilClients { clientId } councilCases { caseId } claims { claimId }
    }
  }
}
"""


def _customer(nino: str, given: str, born: dt.date) -> dict[str, Any]:
    return {"nino": nino, "givenName": given, "dateOfBirth": born}


def _link(link_id: int, score: float, method: str = "deterministic") -> dict[str, Any]:
    return {"linkId": link_id, "score": score, "method": method}


def _claims(*claims: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"claimId": claim, "weeklyAmount": Decimal(amount)} for claim, amount in claims]


def _ids(name: str, *values: str) -> list[dict[str, str]]:
    return [{name: value} for value in values]


EMPTY: dict[str, Any] = {
    "patient": None,
    "spells": [],
    "councilClients": [],
    "councilCases": [],
    "dwpCustomer": None,
    "claims": [],
    "possibleMatches": [],
}

EXPECTED: dict[str, dict[str, Any] | None] = {
    # Everything linked confidently; health's date of birth (1950-01-01) beats DWP's (1950-01-02).
    "9990000001": {
        **EMPTY,
        "nhsNumber": "9990000001", "givenName": "Ann", "familyName": "Lee", "dateOfBirth": D(1950, 1, 1),
        "patient": {"postcode": "LS1 1AA"},
        "spells": _ids("spellId", "S1", "S2"),
        "councilClients": [{"clientId": "C1", "laCode": "E08000035"}],
        "councilCases": [{"caseId": "K1", "status": "open"}, {"caseId": "K2", "status": "closed"}],
        "dwpCustomer": _customer("QQ000001A", "Ann", D(1950, 1, 2)),
        "claims": _claims(("D1", "108.55"), ("D2", "90.00")),
        "links": [_link(1, 1.0)],
    },
    # Health's "Bob" beats DWP's "Robert"; no council record.
    "9990000002": {
        **EMPTY,
        "nhsNumber": "9990000002", "givenName": "Bob", "familyName": "Stone", "dateOfBirth": D(1980, 5, 5),
        "patient": {"postcode": "LS2 2BB"},
        "dwpCustomer": _customer("QQ000002B", "Robert", D(1980, 5, 5)),
        "claims": _claims(("D3", "85.10")),
        "links": [_link(2, 0.97)],
    },
    # No health record and no DWP link: nothing to merge a name or date of birth from.
    "9990000003": {
        **EMPTY,
        "nhsNumber": "9990000003", "givenName": None, "familyName": None, "dateOfBirth": None,
        "councilClients": [{"clientId": "C3", "laCode": "E08000036"}],
        "councilCases": [{"caseId": "K3", "status": "open"}],
        "links": [_link(3, 1.0)],
    },
    # Her one link row scores 0.62: DWP and council records only as a possible match.
    "9990000004": {
        **EMPTY,
        "nhsNumber": "9990000004", "givenName": "Dee", "familyName": "Low", "dateOfBirth": D(1962, 3, 3),
        "patient": {"postcode": None},
        "spells": _ids("spellId", "S3"),
        "links": [_link(4, 0.62, "probabilistic")],
        "possibleMatches": [
            {
                "link": {"linkId": 4}, "dwpCustomer": {"nino": "QQ000004D"},
                "councilClients": _ids("clientId", "C4"), "councilCases": _ids("caseId", "K4"),
                "claims": _ids("claimId", "D4"),
            }
        ],
    },
    # Confident to DWP (0.99); the council record only through a 0.7 link.
    "9990000005": {
        **EMPTY,
        "nhsNumber": "9990000005", "givenName": "Eve", "familyName": "Park", "dateOfBirth": D(2001, 12, 31),
        "patient": {"postcode": "WF1 1AA"},
        "spells": _ids("spellId", "S4"),
        "dwpCustomer": _customer("QQ000005C", "Eve", D(2001, 12, 31)),
        "claims": _claims(("D5", "72.65")),
        "links": [_link(5, 0.99), _link(6, 0.7, "probabilistic")],
        "possibleMatches": [
            {
                "link": {"linkId": 6}, "dwpCustomer": None, "councilClients": _ids("clientId", "C5"),
                "councilCases": _ids("caseId", "K5"), "claims": [],
            }
        ],
    },
    # A patient the link table does not know is nobody.
    "9990000006": None,
    # No given name in health: DWP's "Gus" is next in authority.
    "9990000007": {
        **EMPTY,
        "nhsNumber": "9990000007", "givenName": "Gus", "familyName": "Grey", "dateOfBirth": D(1970, 7, 7),
        "patient": {"postcode": None},
        "dwpCustomer": _customer("QQ000007A", "Gus", D(1970, 7, 7)),
        "links": [_link(7, 1.0)],
    },
    "9990000999": None,
}  # fmt: skip

OPEN_CLAIM_OR_CASE = '{or: [{claims: {status: {eq: "open"}}}, {councilCases: {status: {eq: "open"}}}]}'
UNAVAILABLE = "department '{}' is unavailable"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PERSON_CATALOG, resolve_secrets=False)


def _unavailable(department: str, path: list[str | int]) -> dict[str, Any]:
    return {
        "message": UNAVAILABLE.format(department),
        "path": path,
        "extensions": {"code": "SOURCE_UNAVAILABLE", "department": department, "retryable": True},
    }


# --- merged records ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nhs", sorted(EXPECTED))
async def test_merged_person_records(catalog: Catalog, nhs: str) -> None:
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, FULL, {"n": nhs})
    assert response.errors == []
    assert response.data == {"person": EXPECTED[nhs]}


async def test_a_page_takes_one_statement_per_member_table_for_every_person(catalog: Catalog) -> None:
    query = (
        "{ people(limit: 100) { nhsNumber givenName patient { postcode } claims { claimId } councilCases { caseId } } }"
    )
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    assert response.data == {
        "people": [
            {"nhsNumber": "9990000001", "givenName": "Ann", "patient": {"postcode": "LS1 1AA"},
             "claims": _ids("claimId", "D1", "D2"), "councilCases": _ids("caseId", "K1", "K2")},
            {"nhsNumber": "9990000002", "givenName": "Bob", "patient": {"postcode": "LS2 2BB"},
             "claims": _ids("claimId", "D3"), "councilCases": []},
            {"nhsNumber": "9990000003", "givenName": None, "patient": None, "claims": [],
             "councilCases": _ids("caseId", "K3")},
            {"nhsNumber": "9990000004", "givenName": "Dee", "patient": {"postcode": None}, "claims": [],
             "councilCases": []},
            {"nhsNumber": "9990000005", "givenName": "Eve", "patient": {"postcode": "WF1 1AA"},
             "claims": _ids("claimId", "D5"), "councilCases": []},
            {"nhsNumber": "9990000007", "givenName": "Gus", "patient": {"postcode": None}, "claims": [],
             "councilCases": []},
        ]
    }  # fmt: skip
    # The page of keys with its link rows in one statement; then one statement per member table for all
    # six (DWP twice: claims, and customers for the merged given name).
    assert response.statements == {"linkage": 1, "health": 1, "dwp": 2, "council": 1}
    assert federation.received() == {"council": 1, "dwp": 2, "health": 1, "linkage": 1}
    assert sorted(received.tables for received in federation["dwp"].received) == [("claims",), ("customers",)]
    people = ["9990000001", "9990000002", "9990000003", "9990000004", "9990000005", "9990000007"]
    assert federation["health"].key_sets("patients") == [people]
    # Only identifiers of confident link rows are looked up: not Dee's QQ000004D nor C4, nor Eve's C5.
    assert federation["dwp"].key_sets("claims") == [["QQ000001A", "QQ000002B", "QQ000005C", "QQ000007A"]]
    assert federation["council"].key_sets("cases") == [["C1", "C3"]]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("{}", ["9990000001", "9990000002", "9990000003", "9990000004", "9990000005", "9990000007"]),
        # Emergency spells: Ann (S1), Dee (S3), and Finn (S5), who is not in the link table.
        ('{spells: {method: {eq: "emergency"}}}', ["9990000001", "9990000004"]),
        # Open claims: D1 Ann, D3 Bob (D4 is behind Dee's 0.62 link, D9 unlinked); open cases: K1 Ann, K3 Cara.
        (OPEN_CLAIM_OR_CASE, ["9990000001", "9990000002", "9990000003"]),
        # E08000035 clients: C1 (Ann, confident), C4 and C5 (low-confidence links only).
        ('{councilClients: {laCode: {eq: "E08000035"}}}', ["9990000001"]),
        ('{nhsNumber: {eq: "9990000006"}}', []),
    ],
)
async def test_cross_department_filters_and_counts(catalog: Catalog, where: str, expected: list[str]) -> None:
    query = f"{{ people(where: {where}) {{ nhsNumber }} peopleCount(where: {where}) }}"
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    assert response.data == {"people": [{"nhsNumber": nhs} for nhs in expected], "peopleCount": len(expected)}


async def test_pages_of_people_are_in_key_order(catalog: Catalog) -> None:
    query = (
        "{ a: people(limit: 2, offset: 1) { nhsNumber } "
        f"b: people(where: {OPEN_CLAIM_OR_CASE}, limit: 1, offset: 1) {{ nhsNumber }} "
        "c: people(limit: 2, offset: 10) { nhsNumber } }"
    )
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    assert response.data == {
        "a": [{"nhsNumber": "9990000002"}, {"nhsNumber": "9990000003"}],
        "b": [{"nhsNumber": "9990000002"}],
        "c": [],
    }


# --- a member department that fails -----------------------------------------------------------------


async def test_a_failed_member_is_null_and_merged_fields_fall_back_only_past_answered_sources(
    catalog: Catalog,
) -> None:
    query = (
        '{ ann: person(nhsNumber: "9990000001") { givenName familyName claims { claimId } spells { spellId } } '
        '  gus: person(nhsNumber: "9990000007") { givenName dateOfBirth dwpCustomer { nino } } }'
    )
    async with memory_gateway(catalog, ROWS) as federation:
        federation["dwp"].fail()
        response = await run(federation.gateway, query)
    # Ann's name comes from health, first in authority, which answered. Gus has no name in health, and
    # DWP, next in authority, failed: his name is null with DWP's error, not guessed. His date of birth
    # comes from health.
    assert response.data == {
        "ann": {"givenName": "Ann", "familyName": "Lee", "claims": None, "spells": _ids("spellId", "S1", "S2")},
        "gus": {"givenName": None, "dateOfBirth": D(1970, 7, 7), "dwpCustomer": None},
    }
    assert sorted(response.errors, key=lambda error: error["path"]) == [
        _unavailable("dwp", ["ann", "claims"]),
        _unavailable("dwp", ["gus", "dwpCustomer"]),
        _unavailable("dwp", ["gus", "givenName"]),
    ]
    sources = response.extensions["sources"]
    assert sources["dwp"] == {"status": "failed", "code": "SOURCE_UNAVAILABLE", "retryable": True, "statements": 3}
    assert {name: sources[name]["status"] for name in ("health", "linkage")} == {
        "health": "complete",
        "linkage": "complete",
    }


async def test_a_failed_member_table_leaves_its_departments_other_tables(catalog: Catalog) -> None:
    query = '{ person(nhsNumber: "9990000001") { dwpCustomer { givenName } claims { claimId } } }'
    async with memory_gateway(catalog, ROWS) as federation:
        federation["dwp"].fail("claims", SourceTimeoutError)
        response = await run(federation.gateway, query)
    assert response.data == {"person": {"dwpCustomer": {"givenName": "Ann"}, "claims": None}}
    assert response.errors == [
        {
            "message": "department 'dwp' did not answer within 5 s",
            "path": ["person", "claims"],
            "extensions": {"code": "SOURCE_TIMEOUT", "department": "dwp", "retryable": True},
        }
    ]


async def test_a_failed_member_of_a_possible_match(catalog: Catalog) -> None:
    query = (
        '{ person(nhsNumber: "9990000004") { patient { postcode } '
        "possibleMatches { link { linkId } dwpCustomer { nino } councilClients { clientId } } } }"
    )
    async with memory_gateway(catalog, ROWS) as federation:
        federation["council"].fail()
        response = await run(federation.gateway, query)
    assert response.data == {
        "person": {
            "patient": {"postcode": None},
            "possibleMatches": [{"link": {"linkId": 4}, "dwpCustomer": {"nino": "QQ000004D"}, "councilClients": None}],
        }
    }
    assert response.errors == [_unavailable("council", ["person", "possibleMatches", 0, "councilClients"])]


async def test_without_the_link_table_nobody_can_be_found(catalog: Catalog) -> None:
    async with memory_gateway(catalog, ROWS) as federation:
        federation["linkage"].fail()
        lookup = await run(federation.gateway, '{ person(nhsNumber: "9990000001") { nhsNumber } }')
        page = await run(federation.gateway, "{ people(limit: 2) { nhsNumber patient { postcode } } }")
    assert lookup.data == {"person": None}
    assert lookup.errors == [_unavailable("linkage", ["person"])]
    assert page.data == {"people": None}
    assert page.errors == [_unavailable("linkage", ["people"])]
    # The page's keys come with its link rows: nothing else is asked once that statement fails.
    assert page.statements == {"linkage": 1}


async def test_filters_and_counts_fail_whole_rather_than_partial(catalog: Catalog) -> None:
    query = (
        f"{{ people(where: {OPEN_CLAIM_OR_CASE}) {{ nhsNumber }} peopleCount(where: {OPEN_CLAIM_OR_CASE}) "
        "total: peopleCount }"
    )
    async with memory_gateway(catalog, ROWS) as federation:
        federation["council"].fail(error=SourceUnavailableError)
        response = await run(federation.gateway, query)
    # DWP alone would give Ann and Bob: a partial answer that reads as complete. Both fields are null.
    assert response.data == {"people": None, "peopleCount": None, "total": 6}
    assert sorted(error["path"] for error in response.errors) == [["people"], ["peopleCount"]]
    for error in response.errors:
        assert error["extensions"] == {"code": "INCOMPLETE_RESULT", "departments": ["council"], "retryable": True}
