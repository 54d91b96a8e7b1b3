"""The policy rewrite: a query and a principal in, the exact statement each dialect runs out.

Fixtures: tests/fixtures/compile/policy_queries.yaml over tests/fixtures/clinic_rules.yaml. Expected
statements were written by hand from the rewrite's rules; key material must only ever be a parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.sql_render import MySQLDialect, PostgresDialect, SQLiteDialect
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.plan.nodes import ParentKeys
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import load_policy
from gateway.principal import Principal
from gateway.service import Gateway, GraphQLRequest
from schema.catalog import load_catalog
from schema.configfile import load_yaml
from tests.conftest import ATTRS, CLINIC_CATALOG, make_settings
from tests.test_compile_fixtures import _normal

FIXTURES = load_yaml(Path(__file__).parent / "fixtures" / "compile" / "policy_queries.yaml").data
RULES = Path(__file__).parent / "fixtures" / "clinic_rules.yaml"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[fixture["name"] for fixture in FIXTURES])
def test_policy_rewrite(fixture: dict[str, Any]) -> None:
    catalog = load_catalog(CLINIC_CATALOG)
    policy = load_policy(
        RULES, catalog, secrets=PolicySecrets(b"fixture secret"), secret_configured=True, attributes=ATTRS
    )
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog), policy)
    principal = Principal(
        subject="tester",
        client_id="tester",
        scopes=frozenset(fixture["scopes"]),
        attributes=fixture.get("attributes", {}),
    )
    prepared = gateway.prepare(GraphQLRequest(fixture["query"]), principal)
    nodes = prepared.bound.plan.ordered_scans()
    assert len(nodes) == len(fixture["statements"])
    for node, expected in zip(nodes, fixture["statements"], strict=True):
        values = {
            name: "<key>" if parameter.spec.binary else parameter.slot.resolve({})
            for name, parameter in node.parameters.items()
            if not isinstance(parameter.slot, ParentKeys)
        }
        assert values == expected["values"]
        sizes = {name: len(values[name]) for name, spec in node.query.parameters.items() if spec.is_list}
        rendered = {
            "sqlite": SQLiteDialect().render(node.query).text,
            "postgres": PostgresDialect().render(node.query).text,
            "mysql": MySQLDialect().render_with_sizes(node.query, sizes).text,
        }
        for dialect, text in rendered.items():
            assert _normal(text) == _normal(expected[dialect]), dialect
