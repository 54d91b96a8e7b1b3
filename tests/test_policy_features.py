"""Plan caching under policy, explain, and the graceful 'null' mode for forbidden fields."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.principal import Principal
from gateway.service import Gateway, GraphQLRequest
from gateway.settings import Settings
from schema.catalog import Catalog
from tests.conftest import RULES, load_test_policy, make_settings, run

QUERY = "{ clinic { people(orderBy: [{personId: ASC}]) { personId nhsNumber } } }"


def reception(min_visits: str, *extra: str) -> Principal:
    return Principal(
        subject="r", client_id="r", scopes=frozenset({"reception", *extra}), attributes={"min_visits": min_visits}
    )


def _plan(gateway: Gateway, principal: Principal) -> object:
    prepared = gateway.prepare(GraphQLRequest(QUERY), principal)
    return prepared.bound.plan


async def test_callers_with_different_rights_never_share_a_plan(policy_gateways: dict[str, Gateway]) -> None:
    gateway = policy_gateways["sqlite"]
    strict, lenient = reception("4"), reception("0")
    assert _plan(gateway, strict) is _plan(gateway, reception("4"))  # same rights, same plan
    assert _plan(gateway, strict) is not _plan(gateway, lenient)  # a claim value the filter uses differs
    assert gateway.access_for(strict).key != gateway.access_for(lenient).key
    few = await run(gateway, QUERY, None, strict)
    many = await run(gateway, QUERY, None, lenient)
    ids = lambda response: {row["personId"] for row in response.data["clinic"]["people"]}  # noqa: E731
    assert ids(few) < ids(many)  # visit_count > 0 admits more people than visit_count > 4
    assert ids(await run(gateway, QUERY, None, strict)) == ids(few)  # and the strict caller still sees only theirs


def test_a_new_policy_version_never_reuses_plans(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    first = load_test_policy(RULES, sqlite_clinic)
    edited = tmp_path / "rules.yaml"
    shutil.copy(RULES, edited)
    edited.write_text(
        edited.read_text().replace("visit_count > :principal.min_visits", "visit_count >= :principal.min_visits")
    )
    second = load_test_policy(edited, sqlite_clinic)
    assert first.version != second.version
    assert first.access(reception("2")).key != second.access(reception("2")).key


async def test_explain_scope_gets_the_plan_without_values_or_keys(policy_gateways: dict[str, Gateway]) -> None:
    gateway = policy_gateways["postgres"]
    explainer = Principal(subject="x", client_id="x", scopes=frozenset({"linkage", "fedgate:explain"}))
    response = await run(gateway, "{ clinic { people(limit: 2) { nhsNumber cases { caseId } } } }", None, explainer)
    assert response.errors == []
    (people, cases) = response.extensions["plan"]
    assert (people["department"], people["table"], people["batched"]) == ("clinic", "people", False)
    assert cases["batched"] is True
    assert "$1" in people["sql"]
    assert "status" in cases["sql"]
    assert cases["grants"] == ["linkage on council.cases; rows where status = 'open'; masks nhs_number=pseudonym"]
    origins = [parameter["from"] for parameter in people["parameters"]]
    assert [parameter["placeholder"] for parameter in people["parameters"]] == [f"${n}" for n in range(1, 5)]
    assert "the recipient's pseudonym key (hidden)" in origins
    key = gateway.access_for(explainer).pseudonym_key
    assert key is not None
    assert key.hex() not in json.dumps(response.extensions)
    ordinary = await run(gateway, "{ clinic { people(limit: 2) { nhsNumber } } }", None, reception("2"))
    assert "plan" not in ordinary.extensions


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mariadb"])
async def test_explain_names_each_placeholder_as_the_statement_writes_it(
    policy_gateways: dict[str, Gateway], engine: str
) -> None:
    explainer = Principal(subject="x", client_id="x", scopes=frozenset({"linkage", "fedgate:explain"}))
    response = await run(policy_gateways[engine], "{ clinic { people(limit: 2) { nhsNumber } } }", None, explainer)
    (people,) = response.extensions["plan"]
    shown = [parameter["placeholder"] for parameter in people["parameters"]]
    written = {"sqlite": r":p\d+", "postgres": r"\$\d+", "mariadb": r"\?"}[engine]
    assert len(shown) == len(re.findall(written, people["sql"])) == 4
    if engine == "mariadb":
        assert shown == [f"? #{n}" for n in range(1, 5)]
    else:
        assert shown == re.findall(written, people["sql"])


def test_fedgate_explain_for_a_demo_client() -> None:
    demo = Path(__file__).parent.parent / "demo" / "fedgate.yaml"
    result = CliRunner().invoke(
        app,
        ["explain", "--config", str(demo), "--client", "dwp-investigator", "--justification", "FR-1", "--json",
         "{ personIndex { personLinks(limit: 1) { nhsNumber nino } } }"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)
    assert explained["principal"] == {
        "subject": "dwp-investigator",
        "scopes": ["dwp.investigation"],
        "purpose": "fraud",
    }
    (statement,) = explained["statements"]
    assert "FEDGATE_HMAC_SHA256" in statement["sql"]
    # The scope's grant as the counter-fraud agreement covers it: the same row condition is not repeated.
    assert statement["grants"] == [
        "dwp.investigation on person_index.person_links under ISA-DWP-COUNTER-FRAUD v3; rows where NOT nino IS NULL; "
        "masks nhs_number=pseudonym"
    ]


def _full_visibility(mode: str) -> Settings:
    settings = make_settings()
    update = {"schema_visibility": "full", "forbidden_fields": mode}
    return settings.model_copy(update={"policy": settings.policy.model_copy(update=update)})


@pytest.fixture
async def null_mode(sqlite_clinic: Catalog) -> AsyncIterator[Gateway]:
    """The clinic on SQLite with a schema showing everything and forbidden fields answered null."""
    policy = load_test_policy(RULES, sqlite_clinic)
    gateway = Gateway(sqlite_clinic, _full_visibility("null"), GuardedAdapters(sqlite_clinic), policy)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


RESEARCHER = Principal(subject="r", client_id="r", scopes=frozenset({"research"}))


async def test_forbidden_fields_can_be_answered_with_null(null_mode: Gateway) -> None:
    response = await run(
        null_mode, "{ clinic { people(limit: 2, orderBy: [{born: ASC}]) { personId born } } }", None, RESEARCHER
    )
    refused = await run(null_mode, '{ clinic { people(where: {personId: {eq: "p01"}}) { born } } }', None, RESEARCHER)
    people = response.data["clinic"]["people"]  # type: ignore[index]
    assert [person["personId"] for person in people] == [None, None]
    assert all(person["born"] is not None for person in people)
    assert [error["path"] for error in response.errors] == [
        ["clinic", "people", 0, "personId"],
        ["clinic", "people", 1, "personId"],
    ]
    assert response.errors[0]["extensions"] == {"code": "FORBIDDEN_COLUMN", "field": "ClinicPerson.personId"}
    # Filtering on what one may not read is refused even in this mode.
    assert refused.data is None
    assert refused.errors[0]["extensions"]["code"] == "FORBIDDEN_FIELD"


@pytest.mark.parametrize(
    ("query", "path", "fields"),
    [
        # Every selected column forbidden: there is nothing to ask the department for.
        ("{ clinic { people { personId givenName } } }", ["clinic", "people"],
         ["ClinicPerson.personId", "ClinicPerson.givenName"]),
        ('{ clinic { person(personId: "p01") { givenName } } }', None, None),  # the key is not readable: refused
        # A table with no grant at all, whatever is selected (its rows are not even counted).
        ("{ clinic { visits { visitId } } }", ["clinic", "visits"], ["ClinicQuery.visits"]),
        ("{ clinic { visits { __typename } } }", ["clinic", "visits"], ["ClinicQuery.visits"]),
        ("{ council { cases(limit: 1) { caseId status } } }", ["council", "cases"], ["CouncilQuery.cases"]),
    ],
)  # fmt: skip
async def test_null_mode_answers_what_reads_nothing_without_asking_the_source(
    null_mode: Gateway, query: str, path: list[str] | None, fields: list[str] | None
) -> None:
    response = await run(null_mode, query, None, RESEARCHER)
    assert response.statements == {}
    if path is None:
        assert response.data is None
        assert response.errors[0]["extensions"]["code"] == "FORBIDDEN_FIELD"
        return
    department, field = path
    assert response.data == {department: {field: None}}
    assert [error["path"] for error in response.errors] == [path] * len(fields or ())
    assert [error["extensions"] for error in response.errors] == [
        {"code": "FORBIDDEN_COLUMN", "field": name} for name in fields or ()
    ]
    assert "sources" not in response.extensions  # no department was asked, so none can be counted as failing


async def test_only_typename_still_counts_the_rows_one_may_see(null_mode: Gateway) -> None:
    response = await run(null_mode, "{ clinic { people(limit: 3) { __typename } } }", None, RESEARCHER)
    assert response.errors == []
    assert response.data == {"clinic": {"people": [{"__typename": "ClinicPerson"}] * 3}}
    assert response.statements == {"clinic": 1}


async def test_reject_mode_refuses_a_table_without_a_grant_whatever_is_selected(sqlite_clinic: Catalog) -> None:
    policy = load_test_policy(RULES, sqlite_clinic)
    gateway = Gateway(sqlite_clinic, _full_visibility("reject"), GuardedAdapters(sqlite_clinic), policy)
    await gateway.start()
    try:
        response = await run(gateway, "{ clinic { visits { __typename } } }", None, RESEARCHER)
    finally:
        await gateway.stop()
    assert response.data is None
    assert response.statements == {}
    assert response.errors[0]["extensions"]["code"] == "FORBIDDEN_FIELD"
    assert "ClinicQuery.visits" in response.errors[0]["message"]
