"""Each stage of the pipeline, input and expected output (tests/fixtures/passes/), in the idiom of sqlglot's
optimizer fixtures: the statements the build stage makes, then what each pass makes of the stage before.

The expected statements were written from the rules each pass implements (protect: the policy subquery
of docs/policy.md; subjects: the stored identifier under each ``_fedgate_subject_`` column of
docs/audit.md; fuse: the lateral join of gateway/roots/fusion.py) and checked against the final
statements of tests/fixtures/compile/, whose dialect rules they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse

from adapters.base import Capabilities, Capability
from adapters.sql_render import PostgresDialect
from gateway.pipeline import PASSES, Target
from gateway.pipeline.build import build
from gateway.plan.nodes import ParentKeys
from gateway.plan.plan import Plan
from gateway.planning.context import PlanPolicy
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import load_policy
from gateway.principal import Principal
from schema.catalog import Catalog, load_catalog
from schema.configfile import load_yaml
from schema.graphql_types import build_schema
from tests.conftest import ATTRS, CLINIC_CATALOG
from tests.test_compile_fixtures import _normal

FIXTURES = load_yaml(Path(__file__).parent / "fixtures" / "passes" / "clinic.yaml").data
RULES = Path(__file__).parent / "fixtures" / "clinic_rules.yaml"
STAGES = ("build", *(run_pass.__name__ for run_pass in PASSES))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CLINIC_CATALOG)


def _target(catalog: Catalog, fixture: dict[str, Any]) -> Target:
    features = {Capability.WINDOW_FUNCTIONS} | ({Capability.LATERAL_JOINS} if fixture.get("lateral") else set())
    capabilities = {d.name: Capabilities("postgres", frozenset(features)) for d in catalog.departments}
    if "scopes" not in fixture:
        return Target(capabilities, capture_subjects=bool(fixture.get("audit")))
    policy = load_policy(RULES, catalog, secrets=PolicySecrets(b"s" * 32), secret_configured=True, attributes=ATTRS)
    principal = Principal(subject="tester", scopes=frozenset(fixture["scopes"]), attributes={"min_visits": "2"})
    plan_policy = PlanPolicy(policy.access(principal), row_key_secret=b"k" * 32)
    return Target(capabilities, plan_policy, capture_subjects=bool(fixture.get("audit")))


def _statements(plan: Plan) -> list[str]:
    return [_normal(PostgresDialect().render(scan.query).text) for scan in plan.ordered_scans()]


def test_the_fixtures_cover_every_stage() -> None:
    assert STAGES == ("build", "protect", "subjects", "fuse")
    for fixture in FIXTURES:
        assert sorted(fixture["stages"]) == sorted(STAGES), fixture["name"]
        assert fixture["stages"]["build"] != "same"
    changed = {stage for fixture in FIXTURES for stage in STAGES[1:] if fixture["stages"][stage] != "same"}
    assert changed == set(STAGES[1:])  # every pass has a fixture where it changes something


@pytest.mark.parametrize("fixture", FIXTURES, ids=[fixture["name"] for fixture in FIXTURES])
def test_each_stage(catalog: Catalog, fixture: dict[str, Any]) -> None:
    target = _target(catalog, fixture)
    document = parse(fixture["query"])
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    plan = build(build_schema(catalog), document, operation, {}, target)
    expected: list[str] = []
    for stage, run_pass in zip(STAGES, (None, *PASSES), strict=True):
        if run_pass is not None:
            plan = run_pass(plan, target)
        written = fixture["stages"][stage]
        expected = expected if written == "same" else [_normal(sql) for sql in written]
        assert _statements(plan) == expected, stage
    values = [
        {name: p.slot.resolve({}) for name, p in scan.parameters.items() if not isinstance(p.slot, ParentKeys)}
        for scan in plan.ordered_scans()
    ]
    assert values == fixture["values"]
