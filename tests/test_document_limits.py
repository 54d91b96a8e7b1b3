"""The limits that protect the process, checked before graphql-core validates a document: each one with a
request just under it (answered) and just over it (refused, ``extensions.limit`` naming it), written in
the syntax that could fool a count (aliases, inline fragments, fragments, directives, strings, comments)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from gateway.document_scan import DocumentLimits, scan
from gateway.limits import default
from gateway.service import Gateway
from schema.catalog import Catalog
from tests.conftest import make_settings, run, started_gateway
from tests.support.servers import fedgate_server

A = "fragment A on ClinicPerson { personId givenName }"

#: limit → (setting value, a document just under it, the same document just over it).
CASES: dict[str, tuple[int, str, str]] = {
    "fields": (
        4,
        '{ __typename clinic { p: people(where: {givenName: {eq: "{ a b c }"}}) { personId @include(if: true) } } }'
        " # { x y z }",
        '{ __typename clinic { p: people(where: {givenName: {eq: "{ a b c }"}}) { personId '
        "... on ClinicPerson { born } } } }",
    ),
    "repeated_fields": (
        2,
        "{ clinic { people { personId personId: personId } } }",
        "{ clinic { people { personId ... @include(if: true) { personId } personId: personId } } }",
    ),
    "fragments": (
        1,
        f"{{ clinic {{ people {{ ...A }} }} }} {A}",
        f"{{ clinic {{ people {{ ...A ...B }} }} }} {A} fragment B on ClinicPerson {{ born }}",
    ),
    "variables": (
        2,
        "query($a: Int = 1, $b: String) { clinic { people(limit: $a, where: {givenName: {eq: $b}}) { personId } } }",
        "query($a: Int, $b: String, $c: Int) { clinic { people(limit: $a, offset: $c, where: {givenName: {eq: $b}}) "
        "{ personId } } }",
    ),
    "directives": (
        2,
        "query Q($x: Boolean = true) { clinic { people { personId @include(if: $x) born @skip(if: false) } } }",
        "query Q($x: Boolean = true) { clinic { people { personId @include(if: $x) born @skip(if: false) "
        "givenName @include(if: true) } } }",
    ),
    "selections": (
        8,  # clinic, people, ...A and its two fields, visits, visitId, kind
        f"{{ clinic {{ people {{ ...A }} visits {{ visitId kind }} }} }} {A}",
        f"{{ clinic {{ people {{ ...A }} visits {{ visitId kind ... on ClinicVisit {{ at }} }} }} }} {A}",
    ),
}


async def _answer(catalog: Catalog, setting: str, value: int, query: str) -> Any:
    gateway = await started_gateway(catalog, make_settings(**{setting: value}))
    try:
        return await run(gateway, query)
    finally:
        await gateway.stop()


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_document_just_under_a_limit_is_answered_and_just_over_is_refused(
    sqlite_clinic: Catalog, name: str
) -> None:
    value, under, over = CASES[name]
    answered = await _answer(sqlite_clinic, f"max_{name}", value, under)
    assert answered.errors == [], answered.errors
    refused = await _answer(sqlite_clinic, f"max_{name}", value, over)
    assert refused.data is None
    (error,) = refused.errors
    assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": name}


@pytest.mark.parametrize(
    ("query", "where"),
    [
        # written once each, merged by fragments: only the parsed document shows the group
        (f"{{ clinic {{ people {{ personId ...A ... on ClinicPerson {{ ...A }} }} }} }} {A}", "fragments"),
        # no selection set has more than two 'kind', but the two 'visits' merge theirs into three
        ("{ clinic { people { visits { kind kind } } people { visits { kind } } } }", "nesting"),
    ],
)
async def test_repeated_fields_are_counted_merged_as_graphql_core_compares_them(
    sqlite_clinic: Catalog, query: str, where: str
) -> None:
    limit = 2 if where == "nesting" else 1
    refused = await _answer(sqlite_clinic, "max_repeated_fields", limit, query)
    (error,) = refused.errors
    assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "repeated_fields"}


async def test_field_comparisons_bound_graphql_cores_overlapping_fields_rule(sqlite_clinic: Catalog) -> None:
    """Ten fields with one response name are 45 pairs (90 steps) in graphql-core's rule; twenty such groups
    are 1,800 steps."""
    names = ("personId", "nhsNumber", "givenName", "familyName", "born", "score", "balance", "active", "postcode")
    one = "{ clinic { people { " + "personId " * 10 + "} } }"
    many = "{ clinic { people { " + " ".join(f"{name} " * 10 for name in names) + "} } }"
    assert (await _answer(sqlite_clinic, "max_field_comparisons", 100, one)).errors == []
    refused = await _answer(sqlite_clinic, "max_field_comparisons", 100, many)
    (error,) = refused.errors
    assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "field_comparisons"}


async def test_fragments_spread_twice_at_each_level_are_refused_before_they_are_walked(
    sqlite_gateway: Gateway,
) -> None:
    """Twenty fragments each spreading the next twice: a million fields in under 2 KB. Each of fedgate's
    limit rules walked them all (32 s); the expanded count refuses the document first."""
    levels = 20
    definitions = " ".join(
        f"fragment D{i} on ClinicPerson {{ personId ... on ClinicPerson {{ ...D{i + 1} }} "
        f"... on ClinicPerson {{ ...D{i + 1} }} }}"
        for i in range(levels)
    )
    query = f"{{ clinic {{ people {{ ...D0 }} }} }} {definitions} fragment D{levels} on ClinicPerson {{ born }}"
    started = time.perf_counter()
    response = await run(sqlite_gateway, query)
    elapsed = time.perf_counter() - started
    (error,) = response.errors
    assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "selections"}
    assert elapsed < 1.0


async def test_a_fragment_cycle_gets_graphql_cores_cycle_error_only(sqlite_gateway: Gateway) -> None:
    query = (
        "{ clinic { people { ...A } } } fragment A on ClinicPerson { personId visits { person { ...B } } } "
        "fragment B on ClinicPerson { ...A }"
    )
    response = await run(sqlite_gateway, query)
    assert [error["extensions"]["code"] for error in response.errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Cannot spread fragment" in response.errors[0]["message"]


async def test_graphiqls_introspection_query_is_within_every_default(sqlite_gateway: Gateway) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    response = await run(sqlite_gateway, query)
    assert response.errors == []
    assert response.data is not None and response.data["__schema"]["queryType"]["name"] == "Query"


LIMITS = DocumentLimits(
    max_chars=default("graphql.max_document_chars"),
    max_tokens=default("graphql.max_tokens"),
    max_fields=default("graphql.max_fields"),
    max_repeated_fields=default("graphql.max_repeated_fields"),
    max_fragments=default("graphql.max_fragments"),
    max_variables=default("graphql.max_variables"),
    max_directives=default("graphql.max_directives"),
    max_selections=default("graphql.max_selections"),
)


@pytest.mark.parametrize(
    "text",
    [
        '{ a(x: "' + '\\"' * 45_000 + ") }",  # an unterminated string of escapes
        '{ a(x: """' + '\\"""' * 24_000 + ") }",  # a block string of escaped triple quotes
        "{ a }" + " " * 90_000 + "?",  # white space, then a character that starts no token
        "#" * 99_000,
    ],
)
def test_the_token_scan_stays_linear_on_text_built_to_make_a_lexer_backtrack(text: str) -> None:
    started = time.perf_counter()
    scan(text, LIMITS)
    assert time.perf_counter() - started < 0.5  # about a millisecond; quadratic would be minutes


@pytest.fixture(scope="module")
def server(sqlite_clinic: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fedgate_server(sqlite_clinic, tmp_path_factory.mktemp("hostile")) as base:
        yield base


async def test_two_clients_looping_issue_14s_document_do_not_stall_a_normal_client(server: str) -> None:
    """``{ __typename }`` 9,000 times (99 KB, inside the size limits) held the event loop for over a second
    per request; two clients sending it in a loop, each copy made new by a comment, stalled everyone. The
    normal client's latency is what is asserted (generously, for a loaded machine), not the attack's."""
    normal = {"query": '{ clinic { person(personId: "p03") { givenName } } }'}
    stop = asyncio.Event()
    refused: list[int] = []

    async def attacker(number: int) -> None:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            while not stop.is_set():
                query = "{" + " __typename" * 9000 + f" }} # {number}-{len(refused)}"
                response = await client.post("/graphql", json={"query": query})
                assert response.json()["errors"][0]["extensions"]["limit"] == "repeated_fields"
                refused.append(number)

    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        assert (await client.post("/graphql", json=normal)).json()["data"]  # plans and pools are warm
        attackers = [asyncio.create_task(attacker(number)) for number in range(2)]
        await asyncio.sleep(0.3)
        latencies, health = [], []
        for _ in range(40):
            started = time.perf_counter()
            response = await client.post("/graphql", json=normal)
            latencies.append(time.perf_counter() - started)
            assert response.json()["data"]["clinic"]["person"]["givenName"] == "Élodie"
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            health.append(time.perf_counter() - started)
        stop.set()
        await asyncio.gather(*attackers)
    assert len(refused) > 10, "the attackers were running"
    assert statistics.median(latencies) < 0.25, latencies
    assert sorted(latencies)[int(0.9 * len(latencies))] < 0.5, latencies
    assert statistics.median(health) < 0.25, health
