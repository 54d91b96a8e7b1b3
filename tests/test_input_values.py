"""Caller values no engine can compare the same way are refused before any department is asked.

A NUL character is a driver error on PostgreSQL and an ordinary character on SQLite and MariaDB; a decimal
wider than MariaDB's DECIMAL(65, 30), or a date-time outside years 1 to 9999 once moved to UTC, is refused
by some drivers and not others. Such a value is the caller's mistake, never a department's failure: every
engine answers ``BAD_USER_INPUT``, no statement runs, and no breaker counts it. Values every engine takes,
however long, are answered.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.expressions import convert_attribute
from gateway.service import Gateway
from schema.types import ColumnType
from tests.conftest import run

ENGINES = ("sqlite", "postgres", "mariadb", "rest")

REFUSED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("NUL in an equality", '{ clinic { people(where: {givenName: {eq: "al\\u0000ice"}}) { personId } } }', None),
    ("NUL in a variable", "query($n: String) { clinic { people(where: {givenName: {eq: $n}}) { personId } } }",
     {"n": "al\x00ice"}),
    ("NUL in an in list", "query($n: [String!]) { clinic { people(where: {givenName: {in: $n}}) { personId } } }",
     {"n": ["bob", "\x00"]}),
    ("NUL in a like pattern", '{ clinic { people(where: {familyName: {like: "\\u0000%"}}) { personId } } }', None),
    ("NUL in a look-up key", '{ clinic { person(personId: "p01\\u0000") { personId } } }', None),
    ("NUL in a filter variable", "query($w: ClinicPersonFilter) { clinic { people(where: $w) { personId } } }",
     {"w": {"postcode": {"eq": "LS6\x00"}}}),
    ("a decimal with too many places", '{ clinic { people(where: {balance: {gt: "0.0000000000000000000000000000001"}}) '
     "{ personId } } }", None),
    ("a decimal too large", '{ clinic { people(where: {balance: {lt: "1e400"}}) { personId } } }', None),
    ("a decimal that is not a number", '{ clinic { people(where: {balance: {lt: "NaN"}}) { personId } } }', None),
    ("a date-time before year 1 in UTC", '{ clinic { people(where: {updatedAt: {gt: "0001-01-01T00:00:00+01:00"}}) '
     "{ personId } } }", None),
    ("a date-time after year 9999 in UTC", "query($t: DateTime) { clinic { people(where: {updatedAt: {lt: $t}}) "
     "{ personId } } }", {"t": "9999-12-31T23:30:00-01:00"}),
]  # fmt: skip


@pytest.mark.parametrize(("title", "query", "variables"), REFUSED, ids=[case[0] for case in REFUSED])
@pytest.mark.parametrize("engine", ENGINES)
async def test_values_no_engine_compares_alike_are_refused_before_any_source(
    engine_gateways: dict[str, Gateway], engine: str, title: str, query: str, variables: dict[str, Any] | None
) -> None:
    gateway = engine_gateways[engine]
    response = await run(gateway, query, variables)
    assert response.data is None
    assert [error["extensions"]["code"] for error in response.errors] == ["BAD_USER_INPUT"]
    assert response.statements == {}
    assert gateway.sources.breaker("clinic").state == "closed"


@pytest.mark.parametrize("engine", ENGINES)
async def test_values_every_engine_takes_are_answered(engine_gateways: dict[str, Gateway], engine: str) -> None:
    query = (
        "query($long: String, $wide: Decimal, $early: DateTime) { clinic { "
        "a: people(where: {givenName: {eq: $long}}) { personId } "
        "b: people(where: {balance: {lt: $wide}}, orderBy: [{personId: ASC}], limit: 2) { personId } "
        "c: people(where: {updatedAt: {gt: $early}}, orderBy: [{personId: ASC}], limit: 1) { personId } } }"
    )
    variables = {"long": "x" * 50_000, "wide": "9" * 35 + "." + "9" * 30, "early": "0001-01-01T00:00:00+00:00"}
    response = await run(engine_gateways[engine], query, variables)
    assert response.errors == []
    assert response.data == {
        "clinic": {"a": [], "b": [{"personId": "p01"}, {"personId": "p02"}], "c": [{"personId": "p01"}]}
    }


@pytest.mark.parametrize(
    ("claim", "column_type"),
    [("E08\x00", ColumnType.STRING), (2**64, ColumnType.INTEGER), ("1e400", ColumnType.DECIMAL)],
)
def test_a_claim_no_engine_compares_alike_matches_nothing(claim: Any, column_type: ColumnType) -> None:
    assert convert_attribute(claim, column_type) is None
    assert convert_attribute([claim, "7"], column_type) == [convert_attribute("7", column_type)]
