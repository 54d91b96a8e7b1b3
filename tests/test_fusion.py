"""A child level fused into its parent's statement (PostgreSQL's LATERAL joins): one round trip, the
same answers as the engines that run two statements (SQLite here), and explain shows what runs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.endpoint import dumps
from gateway.explain import explain
from gateway.plan.nodes import FusedChild
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from tests.conftest import run

QUERIES = {
    "a page of parents, each with its own page of children": (
        "{ clinic { people(orderBy: [{givenName: DESC}], limit: 8, offset: 1) { personId givenName "
        "visits(orderBy: [{at: DESC}], limit: 2, offset: 1) { visitId at cost } } } }",
        None,
    ),
    "values from variables on both sides": (
        "query($name: String, $kind: String, $n: Int) { clinic { people(where: {givenName: {like: $name}}) { "
        "personId visits(where: {kind: {eq: $kind}}, limit: $n) { visitId kind } } } }",
        {"name": "%a%", "kind": "gp", "n": 1},
    ),
    "a look-up with its children": ('{ clinic { person(personId: "p01") { givenName visits { visitId } } } }', None),
    "a look-up that finds nothing": ('{ clinic { person(personId: "nobody") { visits { visitId } } } }', None),
    "many parents sharing one child (a one-relationship)": (
        "{ clinic { visits(orderBy: [{visitId: ASC}]) { visitId person { personId givenName } } } }",
        None,
    ),
    "a fused level with a level below it": (
        "{ clinic { people(orderBy: [{personId: ASC}]) { personId visits(limit: 3) { visitId person { personId } } "
        "} } }",
        None,
    ),
}


def _json(value: Any) -> Any:
    return orjson.loads(dumps(value))


@pytest.mark.parametrize(("query", "variables"), QUERIES.values(), ids=list(QUERIES))
async def test_the_same_answer_in_fewer_statements(
    engine_gateways: dict[str, Gateway], query: str, variables: dict[str, Any] | None
) -> None:
    fused = await run(engine_gateways["postgres"], query, variables)
    separate = await run(engine_gateways["sqlite"], query, variables)
    assert fused.errors == separate.errors == []
    assert _json(fused.data) == _json(separate.data)
    # SQLite sends the child level's statement only when there are parents; PostgreSQL never sends it.
    assert fused.statements["clinic"] == max(separate.statements["clinic"] - 1, 1)


async def test_parents_without_children_get_an_empty_list(engine_gateways: dict[str, Gateway]) -> None:
    response = await run(engine_gateways["postgres"], "{ clinic { people { personId visits { visitId } } } }")
    visits = {person["personId"]: person["visits"] for person in response.data["clinic"]["people"]}  # type: ignore[index]
    assert [] in visits.values() and any(visits.values())


async def test_explain_shows_the_one_statement_that_runs(engine_gateways: dict[str, Gateway]) -> None:
    gateway = engine_gateways["postgres"]
    query = "{ clinic { people { personId visits(limit: 2) { visitId person { personId } } } } }"
    prepared = gateway.prepare(GraphQLRequest(query), ANONYMOUS)
    entries = explain(prepared.bound)
    assert [(entry["table"], entry["batched"]) for entry in entries] == [("people", False), ("people", True)]
    assert "LEFT JOIN LATERAL" in entries[0]["sql"] and "ANY(" not in entries[0]["sql"]
    sources = [parameter["from"] for parameter in entries[0]["parameters"]]
    assert "keys of the parent rows" not in sources and sources.count("offset + limit") == 1
    assert "keys of the parent rows" in [parameter["from"] for parameter in entries[1]["parameters"]]


async def test_another_department_is_never_fused(engine_gateways: dict[str, Gateway]) -> None:
    response = await run(engine_gateways["postgres"], "{ clinic { people { personId cases { caseId } } } }")
    assert response.errors == []
    assert response.statements == {"clinic": 1, "council": 1}


def test_rows_split_into_parents_and_their_children() -> None:
    fused = FusedChild(edge_index=0, parent_width=2, child_width=2, child_key_index=0)
    rows = [
        ("p1", "a", 1, "p1", 10, 1),
        ("p1", "a", 1, "p1", 11, 2),
        ("p2", "b", 2, None, None, None),  # LEFT JOIN: no children
        ("p1", "a", 3, "p1", 10, 1),  # the same key again, as another parent row
    ]
    parents, children = fused.split(rows)
    assert parents == [("p1", "a"), ("p2", "b"), ("p1", "a")]
    assert children == [[("p1", 10), ("p1", 11)], [], [("p1", 10)]]
