"""The same GraphQL queries give the same answers from SQLite, PostgreSQL and MariaDB.

Each engine holds the clinic fixture (tests/fixtures/clinic_data.py), loaded from one definition. Every
query's answer must be identical across the three engines, and equal to an answer computed in plain
Python from the fixture rows with fedgate's documented semantics (code-point text order, nulls last
ascending, SQL comparison rules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway.endpoint import dumps
from gateway.service import Gateway
from tests.conftest import run
from tests.fixtures.clinic_data import CASES, PEOPLE, VISITS
from tests.support.policy_reference import like

ENGINES = ("sqlite", "postgres", "mariadb", "rest", "graphql")


def _json(value: Any) -> Any:
    """What a value looks like in the HTTP response."""
    return orjson.loads(dumps(value))


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _sorted(rows: list[dict[str, Any]], key: str, *, descending: bool = False) -> list[dict[str, Any]]:
    """Nulls last ascending (first descending), code-point order, ties by primary key."""
    present = sorted((r for r in rows if r[key] is not None), key=lambda r: (r[key], r["person_id"]), reverse=False)
    if descending:
        present = sorted(present, key=lambda r: r["person_id"])
        present = sorted(present, key=lambda r: r[key], reverse=True)
    absent = sorted((r for r in rows if r[key] is None), key=lambda r: r["person_id"])
    return absent + present if descending else present + absent


Case = tuple[str, str, dict[str, Any] | None, Callable[[], Any]]

CASES_: list[Case] = [
    (
        "order by given name: code point, case-sensitive",
        "{ clinic { people(orderBy: [{givenName: ASC}]) { personId } } }",
        None,
        lambda: {"clinic": {"people": [{"personId": r["person_id"]} for r in _sorted(PEOPLE, "given_name")]}},
    ),
    (
        "order by family name descending: nulls first",
        "{ clinic { people(orderBy: [{familyName: DESC}]) { personId familyName } } }",
        None,
        lambda: {
            "clinic": {
                "people": [
                    {"personId": r["person_id"], "familyName": r["family_name"]}
                    for r in _sorted(PEOPLE, "family_name", descending=True)
                ]
            }
        },
    ),
    (
        "equality is case-sensitive",
        '{ clinic { people(where: {givenName: {eq: "alice"}}) { personId } } }',
        None,
        lambda: {"clinic": {"people": [{"personId": "p01"}]}},
    ),
    (
        "ne excludes nulls",
        '{ clinic { people(where: {familyName: {ne: "smith"}}) { personId } } }',
        None,
        lambda: {
            "clinic": {
                "people": [
                    {"personId": r["person_id"]}
                    for r in PEOPLE
                    if r["family_name"] is not None and r["family_name"] != "smith"
                ]
            }
        },
    ),
    (
        "like is case-sensitive with escapes",
        r'{ clinic { people(where: {familyName: {like: "S%"}}) { personId } } }',
        None,
        lambda: {"clinic": {"people": [{"personId": r["person_id"]} for r in PEOPLE if like(r["family_name"], "S%")]}},
    ),
    (
        "like with an escaped percent and underscore",
        r'{ a: clinic { people(where: {givenName: {like: "50\\% %"}}) { personId } } '
        r'b: clinic { people(where: {familyName: {like: "under\\_score"}}) { personId } } '
        r'c: clinic { people(where: {givenName: {like: "back\\\\slash"}}) { personId } } '
        r'd: clinic { people(where: {familyName: {like: "_mith"}}) { personId } } }',
        None,
        lambda: {
            "a": {"people": [{"personId": "p06"}]},
            "b": {"people": [{"personId": "p06"}]},
            "c": {"people": [{"personId": "p07"}]},
            "d": {"people": [{"personId": r["person_id"]} for r in PEOPLE if like(r["family_name"], "_mith")]},
        },
    ),
    (
        "in, isNull, and, or, not",
        '{ clinic { people(where: {or: [{givenName: {in: ["bob", "Eve", "nobody"]}}, {born: {isNull: true}}], '
        'not: {personId: {eq: "p12"}}}) { personId } } }',
        None,
        lambda: {"clinic": {"people": [{"personId": "p04"}, {"personId": "p05"}]}},
    ),
    (
        "range comparisons on dates, datetimes, floats and decimals",
        "{ clinic { "
        'a: people(where: {born: {gte: "1980-01-02", lt: "1999-09-09"}}) { personId } '
        'b: people(where: {updatedAt: {gt: "2026-01-01T00:00:00+00:00"}}) { personId } '
        "c: people(where: {score: {lte: 1.5}}) { personId } "
        'd: people(where: {balance: {gt: "10.5"}}) { personId } } }',
        None,
        lambda: {
            "clinic": {
                "a": [
                    {"personId": r["person_id"]}
                    for r in PEOPLE
                    if r["born"] and dt.date(1980, 1, 2) <= r["born"] < dt.date(1999, 9, 9)
                ],
                "b": [
                    {"personId": r["person_id"]}
                    for r in PEOPLE
                    if r["updated_at"] and r["updated_at"] > dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
                ],
                "c": [{"personId": r["person_id"]} for r in PEOPLE if r["score"] is not None and r["score"] <= 1.5],
                "d": [
                    {"personId": r["person_id"]}
                    for r in PEOPLE
                    if r["balance"] is not None and r["balance"] > Decimal("10.5")
                ],
            }
        },
    ),
    (
        "every scalar type comes back the same",
        '{ clinic { person(personId: "p01") { personId nhsNumber givenName familyName born score balance active '
        "updatedAt visitCount } } }",
        None,
        lambda: {
            "clinic": {
                "person": {
                    "personId": "p01",
                    "nhsNumber": "9990000001",
                    "givenName": "alice",
                    "familyName": "smith",
                    "born": "1980-01-02",
                    "score": 1.5,
                    "balance": "10.5",
                    "active": True,
                    "updatedAt": "2026-01-01T10:00:00+00:00",
                    "visitCount": 3,
                }
            }
        },
    ),
    (
        "pages with offset, stable on ties",
        "{ clinic { people(orderBy: [{born: ASC}], limit: 3, offset: 2) { personId } } }",
        None,
        lambda: {"clinic": {"people": [{"personId": r["person_id"]} for r in _sorted(PEOPLE, "born")[2:5]]}},
    ),
    (
        "nested per-parent pages, cross-department relationship and a null key",
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId "
        "visits(orderBy: [{at: DESC}], limit: 2) { visitId cost } "
        "cases(orderBy: [{opened: ASC}]) { caseId notes } } } }",
        None,
        lambda: {
            "clinic": {
                "people": [
                    {
                        "personId": person["person_id"],
                        "visits": [
                            {"visitId": v["visit_id"], "cost": _decimal(v["cost"])}
                            for v in sorted(
                                (v for v in VISITS if v["person_id"] == person["person_id"]),
                                key=lambda v: v["at"],
                                reverse=True,
                            )[:2]
                        ],
                        "cases": [
                            {"caseId": c["case_id"], "notes": c["notes"]}
                            for c in sorted(
                                (c for c in CASES if person["nhs_number"] and c["nhs_number"] == person["nhs_number"]),
                                key=lambda c: c["opened"],
                            )
                        ],
                    }
                    for person in sorted(PEOPLE, key=lambda p: p["person_id"])
                ]
            }
        },
    ),
    (
        "variables in value positions and a one-relationship",
        "query($kind: String!, $first: Int) { clinic { visits(where: {kind: {eq: $kind}}, limit: $first, "
        "orderBy: [{visitId: ASC}]) { visitId person { givenName } } } }",
        {"kind": "ae", "first": 3},
        lambda: {
            "clinic": {
                "visits": [
                    {
                        "visitId": v["visit_id"],
                        "person": {
                            "givenName": next(p["given_name"] for p in PEOPLE if p["person_id"] == v["person_id"])
                        },
                    }
                    for v in sorted(VISITS, key=lambda v: v["visit_id"])
                    if v["kind"] == "ae"
                ][:3]
            }
        },
    ),
]


@pytest.mark.parametrize(("title", "query", "variables", "expected"), CASES_, ids=[case[0] for case in CASES_])
async def test_same_answer_on_every_engine(
    engine_gateways: dict[str, Gateway],
    title: str,
    query: str,
    variables: dict[str, Any] | None,
    expected: Callable[[], Any],
) -> None:
    answers = {}
    for engine in ENGINES:
        response = await run(engine_gateways[engine], query, variables)
        assert response.errors == [], (engine, response.errors)
        answers[engine] = _json(response.data)
    want = _json(expected())
    for engine in ENGINES:
        assert answers[engine] == want, engine
