"""Execution over in-memory departments (tests/support/memory_source.py): batching, order and pages,
exact values, and partial results when a department fails. No server, no file, no network.

Expected values are written by hand from tests/fixtures/clinic_data.py, never taken from fedgate's
output. Text orders are by code point: "" < "5" < "A".."Z" < "a".."z" < "É" < "Ö" < "日".
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest

from adapters.errors import (
    SourceError,
    SourceQueryError,
    SourceResponseError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from gateway.settings import Settings
from schema.catalog import Catalog, load_catalog
from tests.conftest import CLINIC_CATALOG, run
from tests.fixtures.clinic_data import ROWS
from tests.support.memory_source import memory_gateway

UTC = dt.UTC
NESTED = (
    "query($n: Int) { clinic { people(limit: $n) { personId visits { visitId kind person { givenName } } "
    "cases { caseId status } } } }"
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CLINIC_CATALOG)


def _settings(**execution: Any) -> Settings:
    return Settings.model_validate(
        {
            "catalog": "unused.yaml",
            "auth": {"enabled": False},
            "logging": {"format": "console"},
            "execution": execution,
        }
    )


# --- batching ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "visit_keys", "visitor_keys", "nhs_numbers"),
    [
        (1, ["p01"], ["p01"], ["9990000001"]),
        (5, ["p01", "p02", "p03", "p04", "p05"], ["p01", "p03", "p05"], [f"999000000{i}" for i in (1, 2, 3, 5)]),
        (
            100,
            [f"p{i:02}" for i in range(1, 14)],
            ["p01", "p03", "p05", "p06", "p07", "p09", "p10", "p12"],
            [f"999000000{i}" for i in (1, 2, 3, 5, 6, 7, 8, 9)] + [f"99900000{i}" for i in (10, 11, 12, 13)],
        ),
    ],
)
async def test_one_statement_per_nesting_level_however_many_parents(
    catalog: Catalog, limit: int, visit_keys: list[str], visitor_keys: list[str], nhs_numbers: list[str]
) -> None:
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, NESTED, {"n": limit})
    assert response.errors == []
    # people; the visits of every parent; the visitors of every visit; council's cases of every parent.
    assert response.statements == {"clinic": 3, "council": 1}
    assert federation.received() == {"clinic": 3, "council": 1}
    clinic, council = federation["clinic"], federation["council"]
    assert [received.tables for received in clinic.received] == [("people",), ("visits",), ("people",)]
    # Each child level got every parent's key in one key set (p04 has no NHS number; no visits for
    # p02, p04, p08, p11, p13).
    assert clinic.key_sets("visits") == [visit_keys]
    assert clinic.key_sets("people") == [visitor_keys]
    assert council.key_sets("cases") == [nhs_numbers]
    assert len(response.data["clinic"]["people"]) == min(limit, 13)  # type: ignore[index]
    assert response.extensions == {
        "sources": {
            "clinic": {"status": "complete", "statements": 3},
            "council": {"status": "complete", "statements": 1},
        }
    }


async def test_nested_levels_are_attached_to_their_own_parents(catalog: Catalog) -> None:
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, NESTED, {"n": 3})
    assert response.errors == []
    alice = {"givenName": "alice"}
    assert response.data == {
        "clinic": {
            "people": [
                {
                    "personId": "p01",
                    "visits": [
                        {"visitId": 1, "kind": "gp", "person": alice},
                        {"visitId": 2, "kind": "ae", "person": alice},
                        {"visitId": 3, "kind": "gp", "person": alice},
                    ],
                    "cases": [{"caseId": "c1", "status": "open"}, {"caseId": "c2", "status": "closed"}],
                },
                {"personId": "p02", "visits": [], "cases": []},
                {
                    "personId": "p03",
                    "visits": [{"visitId": 4, "kind": "clinic", "person": {"givenName": "Élodie"}}],
                    "cases": [],
                },
            ]
        }
    }


async def test_a_child_level_with_no_parent_keys_is_never_sent(catalog: Catalog) -> None:
    query = (
        '{ clinic { nobody: people(where: {personId: {eq: "nobody"}}) { visits { visitId } } '
        'p04: person(personId: "p04") { givenName cases { caseId } } } }'
    )
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    # No parent row for the first; the second's only parent has a null NHS number: council is never asked.
    assert response.data == {"clinic": {"nobody": [], "p04": {"givenName": "Zoë", "cases": []}}}
    assert response.statements == {"clinic": 2}
    assert federation.received() == {"clinic": 2}
    assert response.extensions == {"sources": {"clinic": {"status": "complete", "statements": 2}}}


# --- exact values, order and pages ------------------------------------------------------------------


async def test_every_column_type_comes_back_as_its_canonical_value(catalog: Catalog) -> None:
    query = (
        '{ clinic { p01: person(personId: "p01") { personId nhsNumber givenName familyName born score balance '
        "active updatedAt visitCount postcode } "
        'p04: person(personId: "p04") { familyName born score balance active updatedAt visitCount postcode } '
        "visit: visit(visitId: 6) { at cost } } }"
    )
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    assert response.data == {
        "clinic": {
            "p01": {
                "personId": "p01",
                "nhsNumber": "9990000001",
                "givenName": "alice",
                "familyName": "smith",
                "born": dt.date(1980, 1, 2),
                "score": 1.5,
                "balance": Decimal("10.50"),
                "active": True,
                "updatedAt": dt.datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC),
                "visitCount": 3,
                "postcode": "LS6 2AB",
            },
            "p04": {
                "familyName": "o'Brien",
                "born": None,
                "score": None,
                "balance": None,
                "active": None,
                "updatedAt": None,
                "visitCount": None,
                "postcode": None,
            },
            "visit": {"at": dt.datetime(2026, 1, 3, 23, 0, 0, tzinfo=UTC), "cost": Decimal("30.00")},
        }
    }
    clinic = response.data["clinic"]
    # Types, not only values: a bool is not 1, decimals lose trailing zeros, datetimes are in UTC.
    assert type(clinic["p01"]["active"]) is bool and type(clinic["p01"]["visitCount"]) is int
    assert str(clinic["p01"]["balance"]) == "10.5" and str(clinic["visit"]["cost"]) == "30"
    assert clinic["visit"]["at"].utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # Given names by code point: "", "50% off", "Alice", "Eve", "Zoë", "alice", "back\slash", "bob",
        # "carol", "dave", "Élodie", "Ölaf", "日本".
        (
            "orderBy: [{givenName: ASC}]",
            ["p08", "p06", "p02", "p12", "p04", "p01", "p07", "p05", "p10", "p11", "p03", "p09", "p13"],
        ),
        ("orderBy: [{givenName: ASC}], limit: 4, offset: 1", ["p06", "p02", "p12", "p04"]),
        ("orderBy: [{givenName: DESC}], limit: 3", ["p13", "p09", "p03"]),
        # Nulls last ascending (p05 has no family name); the two "smith"s in key order either way.
        (
            "orderBy: [{familyName: ASC}]",
            ["p03", "p12", "p02", "p10", "p08", "p09", "p04", "p01", "p11", "p06", "p07", "p13", "p05"],
        ),
        (
            "orderBy: [{familyName: DESC}]",
            ["p05", "p13", "p07", "p06", "p01", "p11", "p04", "p09", "p08", "p10", "p02", "p12", "p03"],
        ),
        # Several keys: by date of birth (p01 and p10 share 1980-01-02), then given name descending.
        ('where: {born: {eq: "1980-01-02"}}, orderBy: [{born: ASC}, {givenName: DESC}]', ["p10", "p01"]),
        # The default order is the primary key.
        ("limit: 2, offset: 11", ["p12", "p13"]),
        ("offset: 13", []),
        ('where: {givenName: {like: "%a%"}}', ["p01", "p07", "p09", "p10", "p11"]),
        ('where: {givenName: {like: "A%"}}', ["p02"]),
    ],
)
async def test_root_order_filters_and_pages(catalog: Catalog, arguments: str, expected: list[str]) -> None:
    async with memory_gateway(catalog, ROWS) as federation:
        response = await run(federation.gateway, f"{{ clinic {{ people({arguments}) {{ personId }} }} }}")
    assert response.errors == []
    assert [person["personId"] for person in response.data["clinic"]["people"]] == expected  # type: ignore[index]
    assert response.statements == {"clinic": 1}


@pytest.mark.parametrize("window_functions", [True, False], ids=["paged-by-source", "paged-by-gateway"])
async def test_each_parent_gets_its_own_page_of_children(catalog: Catalog, window_functions: bool) -> None:
    query = (
        '{ clinic { people(where: {personId: {in: ["p01", "p03", "p05", "p07", "p09", "p13"]}}) { personId '
        "visits(orderBy: [{at: DESC}], limit: 2, offset: 1) { visitId } } } }"
    )
    async with memory_gateway(catalog, ROWS, window_functions=window_functions) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    visits = {p["personId"]: [v["visitId"] for v in p["visits"]] for p in response.data["clinic"]["people"]}  # type: ignore[index]
    # Latest first, skipping the latest: p07's are 12, 11, 10, 9, 8; p05's 6 (23:00), 5 (09:00).
    assert visits == {"p01": [2, 1], "p03": [], "p05": [5], "p07": [11, 10], "p09": [15, 14], "p13": []}
    assert response.statements == {"clinic": 2}
    child_sql = federation["clinic"].received[1].sql
    assert ("ROW_NUMBER() OVER (PARTITION BY" in child_sql) is window_functions


# --- a department that fails ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "message", "retryable"),
    [
        (SourceUnavailableError, "SOURCE_UNAVAILABLE", "department 'council' is unavailable", True),
        (SourceTimeoutError, "SOURCE_TIMEOUT", "department 'council' did not answer within 5 s", True),
        (SourceQueryError, "SOURCE_QUERY_FAILED", "department 'council' could not run the query", False),
        (SourceResponseError, "SOURCE_BAD_RESPONSE", "department 'council' failed (SOURCE_BAD_RESPONSE)", False),
    ],
)
async def test_a_failed_child_department_is_null_at_each_of_its_paths(
    catalog: Catalog, error: type[SourceError], code: str, message: str, retryable: bool
) -> None:
    query = "{ clinic { people(limit: 3) { personId cases { caseId } visits(limit: 1) { visitId } } } }"
    async with memory_gateway(catalog, ROWS) as federation:
        federation["council"].fail(error=error)
        response = await run(federation.gateway, query)
    assert response.data == {
        "clinic": {
            "people": [
                {"personId": "p01", "cases": None, "visits": [{"visitId": 1}]},
                {"personId": "p02", "cases": None, "visits": []},
                {"personId": "p03", "cases": None, "visits": [{"visitId": 4}]},
            ]
        }
    }
    extensions = {"code": code, "department": "council", "retryable": retryable}
    assert response.errors == [
        {"message": message, "path": ["clinic", "people", index, "cases"], "extensions": extensions}
        for index in range(3)
    ]
    assert response.extensions == {
        "sources": {
            "clinic": {"status": "complete", "statements": 2},
            "council": {"status": "failed", "code": code, "retryable": retryable, "statements": 1},
        }
    }
    assert federation.received() == {"clinic": 2, "council": 1}


async def test_a_failed_table_fails_only_the_fields_that_read_it(catalog: Catalog) -> None:
    query = (
        '{ clinic { person(personId: "p01") { givenName visits { visitId } } } '
        'council { case(caseId: "c3") { status } } }'
    )
    async with memory_gateway(catalog, ROWS) as federation:
        federation["clinic"].fail("visits", SourceTimeoutError)
        response = await run(federation.gateway, query)
    assert response.data == {
        "clinic": {"person": {"givenName": "alice", "visits": None}},
        "council": {"case": {"status": "open"}},
    }
    assert response.errors == [
        {
            "message": "department 'clinic' did not answer within 5 s",
            "path": ["clinic", "person", "visits"],
            "extensions": {"code": "SOURCE_TIMEOUT", "department": "clinic", "retryable": True},
        }
    ]
    # The department answered one statement and failed the other: it is reported failed.
    assert response.extensions == {
        "sources": {
            "clinic": {"status": "failed", "code": "SOURCE_TIMEOUT", "retryable": True, "statements": 2},
            "council": {"status": "complete", "statements": 1},
        }
    }


async def test_a_failed_root_is_null_and_the_other_departments_still_answer(catalog: Catalog) -> None:
    query = "{ clinic { people(limit: 2) { personId visits { visitId } } } council { cases(limit: 2) { caseId } } }"
    async with memory_gateway(catalog, ROWS) as federation:
        federation["clinic"].fail()
        response = await run(federation.gateway, query)
    assert response.data == {"clinic": {"people": None}, "council": {"cases": [{"caseId": "c1"}, {"caseId": "c2"}]}}
    assert response.errors == [
        {
            "message": "department 'clinic' is unavailable",
            "path": ["clinic", "people"],
            "extensions": {"code": "SOURCE_UNAVAILABLE", "department": "clinic", "retryable": True},
        }
    ]
    # The child level of a failed root is never sent.
    assert response.statements == {"clinic": 1, "council": 1}
    assert [received.tables for received in federation["clinic"].received] == [("people",)]


async def test_a_strict_operation_fails_whole(catalog: Catalog) -> None:
    query = "query Q @strict { clinic { people(limit: 1) { personId cases { caseId } } } }"
    async with memory_gateway(catalog, ROWS) as federation:
        federation["council"].fail()
        response = await run(federation.gateway, query)
    assert (response.data, response.strict_failure, response.http_status) == (None, True, 503)
    assert response.errors == [
        {
            "message": "department 'council' is unavailable; the operation is @strict, so nothing is returned",
            "extensions": {"code": "SOURCE_UNAVAILABLE", "department": "council", "retryable": True},
        }
    ]
    assert response.extensions["sources"]["council"] == {
        "status": "failed",
        "code": "SOURCE_UNAVAILABLE",
        "retryable": True,
        "statements": 1,
    }


async def test_a_stalled_department_times_out_at_the_request_deadline(catalog: Catalog) -> None:
    query = "{ clinic { people(limit: 1) { personId } } council { cases(limit: 1) { caseId } } }"
    async with memory_gateway(catalog, ROWS, settings=_settings(request_timeout_seconds=0.1)) as federation:
        federation["council"].stall(30)
        started = time.monotonic()
        response = await run(federation.gateway, query)
        elapsed = time.monotonic() - started
    assert elapsed < 0.5  # the 0.1 s deadline, not the source's 5 s timeout nor the 30 s stall
    assert response.data == {"clinic": {"people": [{"personId": "p01"}]}, "council": {"cases": None}}
    (error,) = response.errors
    assert error["path"] == ["council", "cases"]
    assert error["extensions"] == {"code": "SOURCE_TIMEOUT", "department": "council", "retryable": True}
    assert error["message"].startswith("department 'council' did not answer within 0.")
    assert response.extensions["sources"]["council"]["status"] == "failed"


async def test_repeated_failures_open_the_breaker_and_stop_statements_reaching_the_source(catalog: Catalog) -> None:
    query = "{ council { cases(limit: 1) { caseId } } }"
    async with memory_gateway(catalog, ROWS) as federation:
        council = federation["council"]
        council.fail(error=SourceUnavailableError)
        failures = [await run(federation.gateway, query) for _ in range(5)]
        council.heal()  # the source is back, but the breaker does not know yet
        refused = await run(federation.gateway, query)
    assert [response.errors[0]["extensions"]["code"] for response in failures] == ["SOURCE_UNAVAILABLE"] * 5
    (error,) = refused.errors
    assert error["extensions"] == {
        "code": "SOURCE_CIRCUIT_OPEN",
        "department": "council",
        "retryable": True,
        "retryAfter": 10,
    }
    # Five statements reached the adapter (the default breaker opens after five); the sixth never did.
    assert council.count() == 5
    assert refused.statements == {}
    assert refused.extensions == {
        "sources": {"council": {"status": "failed", "code": "SOURCE_CIRCUIT_OPEN", "retryable": True, "statements": 0}}
    }
