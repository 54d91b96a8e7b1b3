"""SQL compilation: GraphQL in, the exact statements each dialect runs out (tests/fixtures/compile/).

The expected statements were written by hand from fedgate's rules (binary text comparison, explicit
null ordering, primary-key tie-breakers, key sets, per-parent windows); values must appear only as
parameters, and every parameter's value is checked too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.sql_render import MySQLDialect, PostgresDialect, SqlDialect, SQLiteDialect
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.plan.nodes import ParentKeys
from gateway.plan.plan import Plan
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from schema.catalog import load_catalog
from schema.configfile import load_yaml
from tests.conftest import CLINIC_CATALOG, make_settings

FIXTURES = load_yaml(Path(__file__).parent / "fixtures" / "compile" / "queries.yaml").data
DIALECTS: dict[str, SqlDialect] = {"sqlite": SQLiteDialect(), "postgres": PostgresDialect(), "mysql": MySQLDialect()}


def _plan(query: str, variables: dict[str, Any]) -> Plan:
    catalog = load_catalog(CLINIC_CATALOG)
    gateway = Gateway(catalog, make_settings(), GuardedAdapters(catalog))
    prepared = gateway.prepare(GraphQLRequest(query, None, variables), ANONYMOUS)
    return prepared.bound.plan


def _normal(sql: str) -> str:
    return " ".join(sql.split()).replace("( ", "(").replace(" )", ")")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[fixture["name"] for fixture in FIXTURES])
def test_compiles_to_expected_sql(fixture: dict[str, Any]) -> None:
    variables = fixture.get("variables") or {}
    nodes = _plan(fixture["query"], variables).ordered_scans()
    assert len(nodes) == len(fixture["statements"])
    for node, expected in zip(nodes, fixture["statements"], strict=True):
        values = {
            name: parameter.slot.resolve(variables)
            for name, parameter in node.parameters.items()
            if not isinstance(parameter.slot, ParentKeys)
        }
        assert values == expected["values"]
        # MariaDB expands key sets to one placeholder per key; parent keys are rendered for one key here.
        sizes = {name: len(values.get(name, [None])) for name, spec in node.query.parameters.items() if spec.is_list}
        rendered = {
            "sqlite": DIALECTS["sqlite"].render(node.query).text,
            "postgres": DIALECTS["postgres"].render(node.query).text,
            "mysql": MySQLDialect().render_with_sizes(node.query, sizes).text,
        }
        for dialect_name, text in rendered.items():
            assert _normal(text) == _normal(expected[dialect_name]), dialect_name


def test_no_request_value_reaches_sql_text() -> None:
    hostile = "Robert'); DROP TABLE people;--"
    literal = json.dumps(hostile)
    query = (
        "query($g: String, $f: String) { clinic { "
        f"a: people(where: {{givenName: {{eq: {literal}}}, familyName: {{like: {literal}}}}}) {{ personId }} "
        "b: people(where: {givenName: {eq: $g}, familyName: {like: $f}}) { personId } } }"
    )
    plan = _plan(query, {"g": hostile, "f": hostile})
    for node in plan.scans:
        for dialect in DIALECTS.values():
            text = dialect.render(node.query).text
            assert "Robert" not in text
            assert "DROP" not in text
