"""The pipeline's stages as the code runs them: build → protect → fuse → bind → execute.

Each pass is pure (it returns a new plan and leaves the one it was given as it was), and each does one
job: without ``fuse`` the same answers come in more round trips; without ``protect`` the statements read
the tables as stored. Errors carry their place from where they are raised, so a failure below an object
that several parents share is reported at each of its paths. Over in-memory departments: no server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse

from adapters.base import Capabilities, Capability
from adapters.errors import SourceUnavailableError
from adapters.sql_render import PostgresDialect
from gateway.pipeline import PASSES, Target, compile_plan
from gateway.pipeline.build import build
from gateway.pipeline.fuse import fuse
from gateway.pipeline.protect import protect
from gateway.pipeline.subjects import subjects
from gateway.plan.plan import Plan
from gateway.planning.context import PlanPolicy
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import load_policy
from gateway.principal import Principal
from schema.catalog import Catalog, load_catalog
from schema.graphql_types import build_schema
from tests.conftest import ATTRS, CLINIC_CATALOG, run
from tests.fixtures import clinic_data, person_data
from tests.support.memory_source import memory_gateway
from tests.support.person_federation import PERSON_CATALOG

RULES = Path(__file__).parent / "fixtures" / "clinic_rules.yaml"
LATERAL = Capabilities("postgres", frozenset({Capability.LATERAL_JOINS, Capability.WINDOW_FUNCTIONS}))


@pytest.fixture(scope="module")
def clinic() -> Catalog:
    return load_catalog(CLINIC_CATALOG)


@pytest.fixture(scope="module")
def person() -> Catalog:
    return load_catalog(PERSON_CATALOG, resolve_secrets=False)


def _target(catalog: Catalog, scopes: frozenset[str]) -> Target:
    policy = load_policy(RULES, catalog, secrets=PolicySecrets(b"s" * 32), secret_configured=True, attributes=ATTRS)
    principal = Principal(subject="t", client_id="t", scopes=scopes, attributes={"min_visits": "2"})
    capabilities = {department.name: LATERAL for department in catalog.departments}
    return Target(capabilities, PlanPolicy(policy.access(principal), row_key_secret=b"k" * 32))


def _built(catalog: Catalog, query: str, target: Target) -> Plan:
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return build(build_schema(catalog), document, operation, {}, target)


def _snapshot(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """Every statement's SQL and parameters, as the plan holds them now."""
    return [
        (PostgresDialect().render(scan.query).text, {name: p.slot for name, p in scan.parameters.items()})
        for scan in plan.scans
    ]


QUERY = "{ clinic { people(limit: 3) { personId nhsNumber visits(limit: 2) { visitId } } } }"


def test_the_passes_and_their_order() -> None:
    assert (protect, subjects, fuse) == PASSES


def test_each_pass_returns_a_new_plan_and_leaves_the_one_it_was_given_unchanged(clinic: Catalog) -> None:
    target = _target(clinic, frozenset({"reception"}))
    built = _built(clinic, QUERY, target)
    before = _snapshot(built)
    protected = protect(built, target)
    assert _snapshot(built) == before
    assert protected is not built
    # The policy subquery (its row filter, its mask) and its parameter are in the protected statements only.
    assert before[0][0].startswith('SELECT "people"."person_id", "people"."nhs_number" FROM "people" AS "people"')
    people_sql, people_parameters = _snapshot(protected)[0]
    assert '"people"."visit_count" > $' in people_sql
    assert 'RIGHT("people"."nhs_number", 4)' in people_sql
    assert len(people_parameters) == len(before[0][1]) + 1
    after_protect = _snapshot(protected)
    fused = fuse(protected, target)
    assert _snapshot(protected) == after_protect
    assert len(fused.scans) == 1 and len(protected.scans) == 2  # the child level joined laterally
    assert "LEFT JOIN LATERAL" in _snapshot(fused)[0][0]


def test_compile_plan_runs_the_passes_given_in_order(clinic: Catalog) -> None:
    target = _target(clinic, frozenset({"reception"}))
    document = parse(QUERY)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    schema = build_schema(clinic)
    unprotected = compile_plan(schema, document, operation, {}, target, passes=())
    everything = compile_plan(schema, document, operation, {}, target)
    assert _snapshot(unprotected) == _snapshot(_built(clinic, QUERY, target))
    assert _snapshot(everything) == _snapshot(
        fuse(subjects(protect(_built(clinic, QUERY, target), target), target), target)
    )


async def test_without_the_fuse_pass_an_entity_list_answers_the_same_in_one_more_statement(person: Catalog) -> None:
    query = "{ people(limit: 3, offset: 1) { nhsNumber givenName claims { claimId } } }"
    answers = {}
    for passes in (PASSES, (protect,)):
        async with memory_gateway(person, person_data.ROWS, passes=passes) as federation:
            response = await run(federation.gateway, query)
        assert response.errors == []
        answers[len(passes)] = (response.data, response.statements)
    (fused_data, fused_statements), (unfused_data, unfused_statements) = answers[len(PASSES)], answers[1]
    assert (
        fused_data
        == unfused_data
        == {
            "people": [
                {"nhsNumber": "9990000002", "givenName": "Bob", "claims": [{"claimId": "D3"}]},
                {"nhsNumber": "9990000003", "givenName": None, "claims": []},
                {"nhsNumber": "9990000004", "givenName": "Dee", "claims": []},
            ]
        }
    )
    # The page of keys and the link rows of those keys: one statement fused, two without the pass.
    assert fused_statements["linkage"] == 1
    assert unfused_statements["linkage"] == 2
    assert {k: v for k, v in fused_statements.items() if k != "linkage"} == {
        k: v for k, v in unfused_statements.items() if k != "linkage"
    }


async def test_a_failure_below_a_shared_object_is_reported_at_each_of_its_paths(clinic: Catalog) -> None:
    """p01's three visits share one person object; the council department fails, so that person's
    ``cases`` is null at each of the three paths it stands at, each with its own error."""
    query = '{ clinic { visits(where: {personId: {eq: "p01"}}) { visitId person { personId cases { caseId } } } } }'
    async with memory_gateway(clinic, clinic_data.ROWS) as federation:
        federation["council"].fail("cases", SourceUnavailableError)
        response = await run(federation.gateway, query)
    assert response.data == {
        "clinic": {"visits": [{"visitId": visit, "person": {"personId": "p01", "cases": None}} for visit in (1, 2, 3)]}
    }
    assert [(error["path"], error["extensions"]["code"]) for error in response.errors] == [
        (["clinic", "visits", index, "person", "cases"], "SOURCE_UNAVAILABLE") for index in range(3)
    ]
