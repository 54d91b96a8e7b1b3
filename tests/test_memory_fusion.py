"""Fusion over in-memory departments: a child level joined laterally into its parent's statement.

The clinic department's memory adapter advertises LATERAL joins (tests/support/memory_source.py
evaluates fusion's one statement as the nested loop LATERAL means). Each query runs fused and unfused;
the two must give the same, hand-written answer, in one statement fewer. Expected values come from
tests/fixtures/clinic_data.py (visits are at 09:00 UTC on 2026-01-<day> unless noted).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from adapters.errors import SourceUnavailableError
from gateway.plan.nodes import FusedChild
from schema.catalog import Catalog, load_catalog
from tests.conftest import CLINIC_CATALOG, run
from tests.fixtures.clinic_data import ROWS
from tests.support.memory_source import MemoryFederation, memory_gateway

FUSED = ["fused", "separate"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CLINIC_CATALOG)


def _at(day: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, 9, 0, 0, tzinfo=dt.UTC)


async def _answer(
    catalog: Catalog, mode: str, query: str, variables: dict[str, Any] | None = None
) -> tuple[Any, dict[str, int], MemoryFederation]:
    """Data and statements of ``query`` with clinic fused (``mode == "fused"``) or not."""
    lateral = ("clinic",) if mode == "fused" else ()
    async with memory_gateway(catalog, ROWS, lateral_joins=lateral) as federation:
        response = await run(federation.gateway, query, variables)
    assert response.errors == []
    return response.data, response.statements, federation


@pytest.mark.parametrize("mode", FUSED)
async def test_a_page_of_parents_each_with_its_own_page_of_children(catalog: Catalog, mode: str) -> None:
    query = (
        "{ clinic { people(orderBy: [{givenName: DESC}], limit: 4, offset: 1) { personId "
        "visits(orderBy: [{at: DESC}], limit: 2, offset: 1) { visitId at cost } } } }"
    )
    data, statements, federation = await _answer(catalog, mode, query)
    # Given names descending: 日本 (skipped), Ölaf, Élodie, dave, carol. Each keeps its 2nd and 3rd latest visits.
    assert data == {
        "clinic": {
            "people": [
                {
                    "personId": "p09",
                    "visits": [
                        {"visitId": 15, "at": _at(10), "cost": Decimal("180.00")},
                        {"visitId": 14, "at": _at(8), "cost": Decimal("30.00")},
                    ],
                },
                {"personId": "p03", "visits": []},
                {"personId": "p11", "visits": []},
                {"personId": "p10", "visits": [{"visitId": 17, "at": _at(11), "cost": Decimal("60.00")}]},
            ]
        }
    }
    clinic = federation["clinic"]
    if mode == "fused":
        assert statements == {"clinic": 1}
        (received,) = clinic.received
        assert received.fused and received.tables == ("people", "visits")
        assert "LEFT JOIN LATERAL" in received.sql
    else:
        assert statements == {"clinic": 2}
        assert [(received.tables, received.fused) for received in clinic.received] == [
            (("people",), False),
            (("visits",), False),
        ]


@pytest.mark.parametrize("mode", FUSED)
async def test_variables_on_both_sides_of_a_fused_statement(catalog: Catalog, mode: str) -> None:
    query = (
        "query($name: String, $kind: String, $n: Int) { clinic { people(where: {givenName: {like: $name}}) { "
        "personId visits(where: {kind: {eq: $kind}}, limit: $n) { visitId kind } } } }"
    )
    lateral = ("clinic",) if mode == "fused" else ()
    async with memory_gateway(catalog, ROWS, lateral_joins=lateral) as federation:
        first = await run(federation.gateway, query, {"name": "%a%", "kind": "gp", "n": 1})
        second = await run(federation.gateway, query, {"name": "%o%", "kind": "ae", "n": 2})  # the same plan
    assert first.errors == second.errors == []
    # A lowercase "a": alice, back\slash, Ölaf, carol, dave; each one's first GP visit.
    assert first.data == {
        "clinic": {
            "people": [
                {"personId": "p01", "visits": [{"visitId": 1, "kind": "gp"}]},
                {"personId": "p07", "visits": [{"visitId": 8, "kind": "gp"}]},
                {"personId": "p09", "visits": [{"visitId": 13, "kind": "gp"}]},
                {"personId": "p10", "visits": [{"visitId": 18, "kind": "gp"}]},
                {"personId": "p11", "visits": []},
            ]
        }
    }
    # A lowercase "o": Élodie, Zoë, bob, 50% off, carol; only bob has been to A&E.
    assert second.data == {
        "clinic": {
            "people": [
                {"personId": "p03", "visits": []},
                {"personId": "p04", "visits": []},
                {"personId": "p05", "visits": [{"visitId": 5, "kind": "ae"}]},
                {"personId": "p06", "visits": []},
                {"personId": "p10", "visits": []},
            ]
        }
    }
    per_request = 1 if mode == "fused" else 2
    assert first.statements == second.statements == {"clinic": per_request}


@pytest.mark.parametrize("mode", FUSED)
async def test_a_lookup_with_its_children(catalog: Catalog, mode: str) -> None:
    query = (
        '{ clinic { found: person(personId: "p01") { givenName visits { visitId } } '
        'missing: person(personId: "nobody") { visits { visitId } } } }'
    )
    data, statements, _ = await _answer(catalog, mode, query)
    assert data == {
        "clinic": {
            "found": {"givenName": "alice", "visits": [{"visitId": 1}, {"visitId": 2}, {"visitId": 3}]},
            "missing": None,
        }
    }
    # Unfused, the look-up that found nobody sends no child statement.
    assert statements == ({"clinic": 2} if mode == "fused" else {"clinic": 3})


@pytest.mark.parametrize("mode", FUSED)
async def test_many_parents_sharing_one_child(catalog: Catalog, mode: str) -> None:
    query = "{ clinic { visits(limit: 4, offset: 2) { visitId person { personId givenName } } } }"
    data, statements, _ = await _answer(catalog, mode, query)
    bob = {"personId": "p05", "givenName": "bob"}
    assert data == {
        "clinic": {
            "visits": [
                {"visitId": 3, "person": {"personId": "p01", "givenName": "alice"}},
                {"visitId": 4, "person": {"personId": "p03", "givenName": "Élodie"}},
                {"visitId": 5, "person": bob},
                {"visitId": 6, "person": bob},
            ]
        }
    }
    assert statements == ({"clinic": 1} if mode == "fused" else {"clinic": 2})


@pytest.mark.parametrize("mode", FUSED)
async def test_a_fused_level_with_a_level_below_it(catalog: Catalog, mode: str) -> None:
    query = "{ clinic { people(limit: 3) { personId visits(limit: 2) { visitId person { personId } } } } }"
    data, statements, federation = await _answer(catalog, mode, query)
    p01 = {"personId": "p01"}
    assert data == {
        "clinic": {
            "people": [
                {"personId": "p01", "visits": [{"visitId": 1, "person": p01}, {"visitId": 2, "person": p01}]},
                {"personId": "p02", "visits": []},
                {"personId": "p03", "visits": [{"visitId": 4, "person": {"personId": "p03"}}]},
            ]
        }
    }
    tables = [received.tables for received in federation["clinic"].received]
    if mode == "fused":  # only a root scan is fused: the level below runs as its own batched statement
        assert (statements, tables) == ({"clinic": 2}, [("people", "visits"), ("people",)])
    else:
        assert (statements, tables) == ({"clinic": 3}, [("people",), ("visits",), ("people",)])


async def test_another_department_is_never_fused(catalog: Catalog) -> None:
    query = '{ clinic { person(personId: "p07") { givenName cases { caseId notes } } } }'
    async with memory_gateway(catalog, ROWS, lateral_joins=("clinic", "council")) as federation:
        response = await run(federation.gateway, query)
    assert response.errors == []
    assert response.data == {
        "clinic": {"person": {"givenName": "back\\slash", "cases": [{"caseId": "c3", "notes": "50% done"}]}}
    }
    assert response.statements == {"clinic": 1, "council": 1}
    assert not any(received.fused for adapter in federation.adapters.values() for received in adapter.received)


@pytest.mark.parametrize("mode", FUSED)
async def test_a_failed_child_table_fails_its_whole_fused_statement(catalog: Catalog, mode: str) -> None:
    query = "{ clinic { people(limit: 2) { personId visits { visitId } } } }"
    lateral = ("clinic",) if mode == "fused" else ()
    async with memory_gateway(catalog, ROWS, lateral_joins=lateral) as federation:
        federation["clinic"].fail("visits", SourceUnavailableError)
        response = await run(federation.gateway, query)
    extensions = {"code": "SOURCE_UNAVAILABLE", "department": "clinic", "retryable": True}
    message = "department 'clinic' is unavailable"
    if mode == "fused":
        # One statement reads both tables: the parents are lost with their children.
        assert response.data == {"clinic": {"people": None}}
        assert response.errors == [{"message": message, "path": ["clinic", "people"], "extensions": extensions}]
        assert response.statements == {"clinic": 1}
    else:
        assert response.data == {
            "clinic": {"people": [{"personId": "p01", "visits": None}, {"personId": "p02", "visits": None}]}
        }
        assert response.errors == [
            {"message": message, "path": ["clinic", "people", index, "visits"], "extensions": extensions}
            for index in range(2)
        ]
        assert response.statements == {"clinic": 2}


def test_split_rows_with_the_child_key_after_other_columns() -> None:
    # Parent: (person_id); then _fedgate_prn; child: (visit_id, person_id); then the child's _fedgate_rn.
    fused = FusedChild(edge_index=0, parent_width=1, child_width=2, child_key_index=1)
    rows = [
        ("p1", 1, 10, "p1", 1),
        ("p1", 1, 11, "p1", 2),
        ("p2", 2, None, None, None),  # the LEFT JOIN's nulls: no child
        ("p3", 3, None, "p3", 1),  # a child whose other column is null is still a child
    ]
    assert fused.split(rows) == ([("p1",), ("p2",), ("p3",)], [[(10, "p1"), (11, "p1")], [], [(None, "p3")]])
    assert fused.split([]) == ([], [])
