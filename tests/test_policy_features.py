"""Plan caching under policy, explain, and the graceful 'null' mode for forbidden fields."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.execution.sources import Sources
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import load_policy
from gateway.principal import Principal
from gateway.service import Gateway, GraphQLRequest, PreparedRequest
from schema.catalog import Catalog
from tests.conftest import MASTER, RULES, make_settings, run

QUERY = "{ clinic { people(orderBy: [{personId: ASC}]) { personId nhsNumber } } }"


def reception(min_visits: str, *extra: str) -> Principal:
    return Principal(
        subject="r", client_id="r", scopes=frozenset({"reception", *extra}), attributes={"min_visits": min_visits}
    )


def _plan(gateway: Gateway, principal: Principal) -> object:
    prepared = gateway.prepare(GraphQLRequest(QUERY), principal)
    assert isinstance(prepared, PreparedRequest)
    return prepared.plan


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
    first = load_policy(RULES, sqlite_clinic, secrets=PolicySecrets(MASTER), secret_configured=True)
    edited = tmp_path / "rules.yaml"
    shutil.copy(RULES, edited)
    edited.write_text(
        edited.read_text().replace("visit_count > :principal.min_visits", "visit_count >= :principal.min_visits")
    )
    second = load_policy(edited, sqlite_clinic, secrets=PolicySecrets(MASTER), secret_configured=True)
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
    assert cases["grants"] == [
        "linkage on council.cases; rows where FEDGATE_BINARY_TEXT(\"status\") = 'open'; masks nhs_number=pseudonym"
    ]
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
        ["explain", "--config", str(demo), "--client", "dwp-investigator", "--json",
         "{ personIndex { personLinks(limit: 1) { nhsNumber nino } } }"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)
    assert explained["principal"] == {"subject": "dwp-investigator", "scopes": ["dwp.investigation"]}
    (statement,) = explained["statements"]
    assert "FEDGATE_HMAC_SHA256" in statement["sql"]
    assert statement["grants"] == [
        'dwp.investigation on person_index.person_links; rows where NOT "nino" IS NULL; masks nhs_number=pseudonym'
    ]


async def test_forbidden_fields_can_be_answered_with_null(engine_catalogs: dict[str, Catalog]) -> None:
    catalog = engine_catalogs["sqlite"]
    policy = load_policy(RULES, catalog, secrets=PolicySecrets(MASTER), secret_configured=True)
    settings = make_settings()
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"schema_visibility": "full", "forbidden_fields": "null"})}
    )
    gateway = Gateway(catalog, settings, Sources(catalog), policy)
    await gateway.start()
    try:
        researcher = Principal(subject="r", client_id="r", scopes=frozenset({"research"}))
        response = await run(
            gateway, "{ clinic { people(limit: 2, orderBy: [{born: ASC}]) { personId born } } }", None, researcher
        )
        refused = await run(gateway, '{ clinic { people(where: {personId: {eq: "p01"}}) { born } } }', None, researcher)
    finally:
        await gateway.stop()
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
