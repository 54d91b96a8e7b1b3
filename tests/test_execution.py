"""Planning and execution over the SQLite clinic fixture: batching, GraphQL features, limits, caching."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Capabilities
from adapters.sqlite import SQLiteAdapter
from demo.generate import generate
from demo.load import write_sqlite
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.plan.plan import Plan
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from schema.catalog import Catalog, load_catalog
from schema.sources import SqliteSource
from tests.conftest import make_settings, run, started_gateway
from tests.fixtures.clinic_data import PEOPLE, VISITS

DEMO_CATALOG = Path(__file__).parent.parent / "demo" / "catalog.yaml"


async def test_each_nesting_level_is_one_statement_per_department(sqlite_gateway: Gateway) -> None:
    response = await run(
        sqlite_gateway,
        "{ clinic { people(limit: 100) { personId visits { kind person { givenName } } cases { caseId } } } }",
    )
    assert response.errors == []
    # people; visits of all people; the visitors of all visits — and council's cases, once.
    assert response.statements == {"clinic": 3, "council": 1}
    people = response.data["clinic"]["people"]  # type: ignore[index]
    assert len(people) == len(PEOPLE)
    assert sum(len(person["visits"]) for person in people) == len(VISITS)


@pytest.fixture(scope="module")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The demo departments with 1,200 generated people, in temporary SQLite files."""
    directory = tmp_path_factory.mktemp("demo")
    (directory / "catalog.yaml").write_text(DEMO_CATALOG.read_text())
    # Housing is a REST API (not queried here): no token needed, no file to write.
    catalog = load_catalog(directory / "catalog.yaml", resolve_secrets=False)
    rows = generate(people=1200)
    for department in catalog.departments:
        if isinstance(department.source, SqliteSource):
            write_sqlite(department.source.file, catalog, department, rows)
    return catalog


async def test_batching_holds_for_a_thousand_parents_across_departments(demo_catalog: Catalog) -> None:
    gateway = await started_gateway(demo_catalog)
    try:
        response = await run(
            gateway,
            "{ health { patients(limit: 1000) { nhsNumber hospitalSpells(limit: 20) { spellId } "
            "personLink { dwpCustomer { benefitClaims(limit: 10) { claimId } } pupil { school { name } } } } } }",
        )
    finally:
        await gateway.stop()
    assert response.errors == []
    assert len(response.data["health"]["patients"]) == 1000  # type: ignore[index]
    assert response.statements == {"health": 2, "person_index": 1, "dwp": 2, "education": 2}


async def test_fragments_aliases_directives_and_typename(sqlite_gateway: Gateway) -> None:
    query = """
    query People($withVisits: Boolean!, $id: String!) {
      __typename
      clinic {
        __typename
        first: person(personId: $id) { ...Names visits @include(if: $withVisits) { visitId } }
        again: person(personId: "p03") { ... on ClinicPerson { name: givenName } __typename }
      }
    }
    fragment Names on ClinicPerson { givenName familyName }
    """
    response = await run(sqlite_gateway, query, {"withVisits": True, "id": "p01"})
    assert response.errors == []
    assert response.data == {
        "__typename": "Query",
        "clinic": {
            "__typename": "ClinicQuery",
            "first": {
                "givenName": "alice",
                "familyName": "smith",
                "visits": [{"visitId": 1}, {"visitId": 2}, {"visitId": 3}],
            },
            "again": {"name": "Élodie", "__typename": "ClinicPerson"},
        },
    }
    skipped = await run(sqlite_gateway, query, {"withVisits": False, "id": "p01"})
    assert skipped.data["clinic"]["first"] == {"givenName": "alice", "familyName": "smith"}  # type: ignore[index]


async def test_a_lookup_that_finds_nothing_is_null(sqlite_gateway: Gateway) -> None:
    response = await run(sqlite_gateway, '{ clinic { person(personId: "nobody") { givenName } } }')
    assert response.errors == []
    assert response.data == {"clinic": {"person": None}}


async def test_plans_are_reused_across_values_but_not_across_structure(sqlite_gateway: Gateway) -> None:
    query = (
        "query($id: String!, $more: Boolean!) { clinic { person(personId: $id) { givenName "
        "visits @include(if: $more) { visitId } } } }"
    )

    def plan(variables: dict[str, Any]) -> Plan:
        return _plan(sqlite_gateway, query, variables)

    first = plan({"id": "p01", "more": True})
    assert plan({"id": "p07", "more": True}) is first  # a different value, the same plan
    other = plan({"id": "p01", "more": False})
    assert other is not first  # @include changed the shape
    assert plan({"id": "p09", "more": False}) is other
    answer = await run(sqlite_gateway, query, {"id": "p07", "more": True})
    assert answer.data["clinic"]["person"]["givenName"] == "back\\slash"  # type: ignore[index]


async def test_sources_without_window_functions_are_paged_by_the_gateway(
    sqlite_clinic: Catalog, sqlite_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "{ clinic { people { personId visits(orderBy: [{at: DESC}], limit: 2, offset: 1) { visitId } } } }"
    windowed = await run(sqlite_gateway, query)
    monkeypatch.setattr(SQLiteAdapter, "capabilities", property(lambda self: Capabilities("sqlite")))
    gateway = await started_gateway(sqlite_clinic)
    try:
        residual = await run(gateway, query)
        statements = [scan.query.select.sql() for scan in _plan(gateway, query).scans]
    finally:
        await gateway.stop()
    assert not any("ROW_NUMBER" in text for text in statements)
    assert residual.errors == windowed.errors == []
    assert residual.data == windowed.data
    visits = {person["personId"]: person["visits"] for person in residual.data["clinic"]["people"]}  # type: ignore[index]
    assert visits["p07"] == [{"visitId": 11}, {"visitId": 10}]


@pytest.mark.parametrize(
    ("query", "variables", "code", "limit"),
    [
        ("{ clinic { people(limit: 5000) { personId } } }", None, "QUERY_LIMIT_EXCEEDED", "page_size"),
        (
            "query($n: Int) { clinic { people(limit: $n) { personId } } }",
            {"n": 1001},
            "QUERY_LIMIT_EXCEEDED",
            "page_size",
        ),
        ("{ clinic { people(offset: -1) { personId } } }", None, "QUERY_LIMIT_EXCEEDED", "offset"),
        (
            "query($ids: [String!]) { clinic { people(where: {personId: {in: $ids}}) { personId } } }",
            {"ids": [f"p{i}" for i in range(1001)]},
            "QUERY_LIMIT_EXCEEDED",
            "in_list",
        ),
        ("{ clinic { people { visits(limit: 2000) { visitId } } } }", None, "QUERY_LIMIT_EXCEEDED", "page_size"),
        (
            "{ clinic { people(limit: 1000) { visits(limit: 1000) { visitId } } } }",
            None,
            "QUERY_LIMIT_EXCEEDED",
            "cost",
        ),
        (
            "{ " + " ".join(f"a{i}: clinic {{ __typename }}" for i in range(31)) + " }",
            None,
            "QUERY_LIMIT_EXCEEDED",
            "aliases",
        ),
        (
            "{ clinic { " + " ".join(f'p{i}: person(personId: "p01") {{ born }}' for i in range(21)) + " } }",
            None,
            "QUERY_LIMIT_EXCEEDED",
            "root_fields",
        ),
        (
            "{ clinic { people { visits { person { visits { person { visits { person { visits { person "
            "{ visits { visitId } } } } } } } } } } } }",
            None,
            "QUERY_LIMIT_EXCEEDED",
            "depth",
        ),
    ],
)
async def test_limits_fail_the_request_before_any_statement(
    sqlite_gateway: Gateway, query: str, variables: dict[str, Any] | None, code: str, limit: str
) -> None:
    response = await run(sqlite_gateway, query, variables)
    assert response.data is None
    assert response.statements == {}
    (error,) = response.errors
    assert error["extensions"] == {"code": code, "limit": limit}


@pytest.mark.parametrize(
    ("query", "variables", "code", "message_part"),
    [
        ("{ clinic { people { personId ", None, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        ("{ clinic { people { shoeSize } } }", None, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'shoeSize'"),
        ("query($n: Int!) { clinic { people(limit: $n) { personId } } }", {"n": "ten"}, "BAD_USER_INPUT", "$n"),
        (
            "{ clinic { people(orderBy: [{givenName: ASC, born: DESC}]) { personId } } }",
            None,
            "BAD_USER_INPUT",
            "exactly one field",
        ),
        ("query A { __typename } query B { __typename }", None, "OPERATION_NAME_REQUIRED", "several operations"),
        ("mutation { x }", None, "GRAPHQL_VALIDATION_FAILED", "read-only"),
        ("subscription { x }", None, "GRAPHQL_VALIDATION_FAILED", "no subscription type"),
    ],
)
async def test_bad_requests_get_clear_errors_without_internals(
    sqlite_gateway: Gateway, query: str, variables: dict[str, Any] | None, code: str, message_part: str
) -> None:
    response = await run(sqlite_gateway, query, variables)
    assert response.data is None
    assert response.errors[0]["extensions"]["code"] == code
    assert message_part in response.errors[0]["message"]
    text = str(response.errors)
    assert "SELECT" not in text
    assert "Traceback" not in text


async def test_unknown_operation_name(sqlite_gateway: Gateway) -> None:
    response = await sqlite_gateway.execute(GraphQLRequest("query A { __typename }", "B"), ANONYMOUS)
    assert response.errors[0]["extensions"]["code"] == "OPERATION_NOT_FOUND"


async def test_introspection_answers_from_the_schema(sqlite_gateway: Gateway) -> None:
    response = await run(
        sqlite_gateway, '{ __type(name: "ClinicPerson") { name fields { name } } clinic { __typename } }'
    )
    assert response.errors == []
    names = [field["name"] for field in response.data["__type"]["fields"]]  # type: ignore[index]
    assert names[:3] == ["personId", "nhsNumber", "givenName"]
    assert response.data["clinic"] == {"__typename": "ClinicQuery"}  # type: ignore[index]


async def test_introspection_with_variables_beside_data_fields(sqlite_gateway: Gateway) -> None:
    """Each introspection field is answered from its own part of the document, with the variables it uses
    (already coerced, like a date the data field filters on), and both aliases get their own answer."""
    query = (
        "query($t: String!, $born: Date, $deep: Boolean!) { a: __type(name: $t) { name } "
        'b: __type(name: "ClinicVisit") { name fields @include(if: $deep) { name } } '
        "clinic { people(where: {born: {lt: $born}}, orderBy: [{born: ASC}], limit: 1) { personId } } }"
    )
    response = await sqlite_gateway.execute(
        GraphQLRequest(query, None, {"t": "ClinicPerson", "born": "1960-01-01", "deep": False}), ANONYMOUS
    )
    assert response.errors == []
    assert response.data is not None
    assert response.data["a"] == {"name": "ClinicPerson"}
    assert response.data["b"] == {"name": "ClinicVisit"}
    assert list(response.data) == ["a", "b", "clinic"]


async def test_introspection_can_be_switched_off(sqlite_clinic: Catalog) -> None:
    gateway = Gateway(sqlite_clinic, make_settings(introspection=False), GuardedAdapters(sqlite_clinic))
    response = await run(gateway, "{ __schema { types { name } } }")
    assert response.data is None
    assert response.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


MISSPELT: list[tuple[str, dict[str, Any] | None, str]] = [
    ("{ clinic { people { nhsNumbr } } }", None, "Did you mean 'nhsNumber'?"),
    ("{ clinic { people(limt: 2) { personId } } }", None, "Did you mean 'limit'?"),
    ("{ clinic { people(where: {givnName: {eq: \"x\"}}) { personId } } }", None, "Did you mean 'givenName'?"),
    ("{ clinic { people(orderBy: [{born: ASCE}]) { personId } } }", None, "Did you mean the enum value 'ASC'?"),
    ("query($o: [ClinicPersonOrderBy!]) { clinic { people(orderBy: $o) { personId } } }",
     {"o": [{"born": "DSC"}]}, "Did you mean the enum value 'ASC' or 'DESC'?"),
    ("query($w: ClinicPersnFilter) { clinic { people(where: $w) { personId } } }", None,
     "Did you mean 'ClinicPersonFilter', 'ClinicVisitFilter', 'ClinicPerson', 'ClinicPersonOrderBy', or "
     "'CouncilCaseFilter'?"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "variables", "suggestion"), MISSPELT)
async def test_no_suggestions_by_default_and_a_setting_to_give_them(
    sqlite_clinic: Catalog, query: str, variables: dict[str, Any] | None, suggestion: str
) -> None:
    """OWASP's GraphQL checklist: "Did you mean ...?" maps the schema for an attacker; it is off unless asked for."""
    quiet = await run(Gateway(sqlite_clinic, make_settings(), GuardedAdapters(sqlite_clinic)), query, variables)
    helpful = await run(
        Gateway(sqlite_clinic, make_settings(suggestions=True), GuardedAdapters(sqlite_clinic)), query, variables
    )
    assert quiet.data is None
    assert len(quiet.errors) == len(helpful.errors) == 1
    assert helpful.errors[0]["message"].endswith(" " + suggestion)
    assert quiet.errors[0]["message"] == helpful.errors[0]["message"].removesuffix(" " + suggestion)
    assert "Did you mean" not in quiet.errors[0]["message"]


def _plan(gateway: Gateway, query: str, variables: dict[str, Any] | None = None) -> Plan:
    prepared = gateway.prepare(GraphQLRequest(query, None, variables), ANONYMOUS)
    return prepared.bound.plan


async def test_departments_are_queried_concurrently(sqlite_clinic: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight: set[str] = set()
    overlaps: list[frozenset[str]] = []
    original = SQLiteAdapter.fetch

    async def observed(self: SQLiteAdapter, prepared: Any, values: Any, *, timeout: float, **context: Any) -> Any:
        in_flight.add(self.name)
        overlaps.append(frozenset(in_flight))
        try:
            await asyncio.sleep(0.05)  # hold the statement open so that overlap, if any, is observable
            return await original(self, prepared, values, timeout=timeout, **context)
        finally:
            in_flight.discard(self.name)

    monkeypatch.setattr(SQLiteAdapter, "fetch", observed)
    gateway = await started_gateway(sqlite_clinic)
    try:
        response = await run(gateway, "{ clinic { people { personId } } council { cases { caseId } } }")
    finally:
        await gateway.stop()
    assert response.errors == []
    assert frozenset({"clinic", "council"}) in overlaps
