"""Entities when a department fails: partial records, never partial filters or counts; chunked key sets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from demo.load import write_sqlite
from schema.catalog import Catalog
from tests.conftest import make_settings, run, started_gateway
from tests.fixtures.person_data import ROWS
from tests.support.person_federation import person_catalog


def _catalog(directory: Path, missing: str | None = None) -> Catalog:
    catalog = person_catalog(directory)
    for department in catalog.departments:
        if department.name != missing:
            write_sqlite(directory / f"{department.name}.db", catalog, department, ROWS)
    return catalog


async def test_a_failed_member_is_null_on_every_person_with_an_error(tmp_path: Path) -> None:
    gateway = await started_gateway(_catalog(tmp_path, missing="dwp"))
    try:
        response = await run(
            gateway,
            '{ person(nhsNumber: "9990000001") { nhsNumber familyName claims { claimId } spells { spellId } } '
            "  people(limit: 2) { nhsNumber claims { claimId } } }",
        )
    finally:
        await gateway.stop()
    spells = [{"spellId": "S1"}, {"spellId": "S2"}]
    assert response.data == {
        "person": {"nhsNumber": "9990000001", "familyName": "Lee", "claims": None, "spells": spells},
        "people": [{"nhsNumber": "9990000001", "claims": None}, {"nhsNumber": "9990000002", "claims": None}],
    }
    paths = sorted(error["path"] for error in response.errors)
    assert paths == [["people", 0, "claims"], ["people", 1, "claims"], ["person", "claims"]]
    assert {error["extensions"]["code"] for error in response.errors} == {"SOURCE_UNAVAILABLE"}
    assert {error["extensions"]["department"] for error in response.errors} == {"dwp"}


async def test_a_merged_field_is_null_when_a_more_authoritative_source_failed(tmp_path: Path) -> None:
    gateway = await started_gateway(_catalog(tmp_path, missing="health"))
    try:
        response = await run(
            gateway, '{ person(nhsNumber: "9990000001") { givenName dwpCustomer { givenName dateOfBirth } } }'
        )
    finally:
        await gateway.stop()
    # DWP answered "Ann", but health, first in authority, failed: the merged name is null, not DWP's.
    assert response.data == {
        "person": {"givenName": None, "dwpCustomer": {"givenName": "Ann", "dateOfBirth": dt.date(1950, 1, 2)}}
    }
    assert [(e["path"], e["extensions"]["code"]) for e in response.errors] == [
        (["person", "givenName"], "SOURCE_UNAVAILABLE")
    ]


async def test_filters_and_counts_fail_whole_rather_than_partial(tmp_path: Path) -> None:
    gateway = await started_gateway(_catalog(tmp_path, missing="council"))
    try:
        where = '{or: [{claims: {status: {eq: "open"}}}, {councilCases: {status: {eq: "open"}}}]}'
        response = await run(
            gateway, f"{{ people(where: {where}) {{ nhsNumber }} peopleCount(where: {where}) total: peopleCount }}"
        )
    finally:
        await gateway.stop()
    # DWP alone would give two people: a partial answer that reads as complete. Both fields are null.
    assert response.data == {"people": None, "peopleCount": None, "total": 6}
    assert sorted(error["path"][0] for error in response.errors) == ["people", "peopleCount"]
    for error in response.errors:
        assert error["extensions"] == {"code": "INCOMPLETE_RESULT", "departments": ["council"], "retryable": True}


async def test_without_the_link_table_nobody_can_be_found(tmp_path: Path) -> None:
    gateway = await started_gateway(_catalog(tmp_path, missing="linkage"))
    try:
        response = await run(gateway, '{ person(nhsNumber: "9990000001") { nhsNumber patient { postcode } } }')
    finally:
        await gateway.stop()
    assert response.data == {"person": None}
    assert response.errors[0]["path"] == ["person"]
    assert response.errors[0]["extensions"]["department"] == "linkage"


async def test_key_sets_larger_than_a_statement_takes_are_chunked(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    small = await started_gateway(catalog, make_settings(max_in_list=2))
    usual = await started_gateway(catalog)
    query = """{ a: people(where: {or: [{claims: {status: {eq: "open"}}}, {councilCases: {status: {eq: "open"}}}]},
                          limit: 2, offset: 1) { nhsNumber claims { claimId } councilCases { caseId } }
                 n: peopleCount(where: {spells: {spellId: {like: "S%"}}, claims: {nino: {like: "QQ%"}}}) }"""
    try:
        chunked = await run(small, query)
        whole = await run(usual, query)
    finally:
        await small.stop()
        await usual.stop()
    assert chunked.errors == whole.errors == []
    assert chunked.data == whole.data
    assert [person["nhsNumber"] for person in chunked.data["a"]] == ["9990000002", "9990000003"]
    # Spells: Ann, Dee, Eve (and Finn, unknown to the index); confident claims: Ann, Bob, Eve.
    assert chunked.data["n"] == 2
    assert chunked.statements["linkage"] > whole.statements["linkage"]
