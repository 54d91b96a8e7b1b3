"""How cross-department conditions are planned: the most selective department first, keys pushed on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from adapters.registry import create_adapter
from adapters.sql_render import MySQLDialect, PostgresDialect, SQLiteDialect
from gateway.explain import explain
from gateway.plan.nodes import Const
from gateway.principal import ANONYMOUS
from gateway.roots.entity.root import EntityRoot
from gateway.service import Gateway, GraphQLRequest
from schema.catalog import Catalog
from tests.conftest import PG, run, started_gateway
from tests.fixtures.person_data import ROWS
from tests.support.person_federation import mariadb_people, people_catalogs, postgres_people, sqlite_people

__all__ = ["mariadb_people", "people_catalogs", "postgres_people", "sqlite_people"]

BOTH = '{ people(where: {councilCases: {status: {eq: "open"}}, spells: {method: {eq: "emergency"}}}) { nhsNumber } }'


@pytest.fixture
async def gateway(sqlite_people: Catalog) -> AsyncIterator[Gateway]:
    started = await started_gateway(sqlite_people)
    try:
        yield started
    finally:
        await started.stop()


def _roles(gateway: Gateway, query: str) -> list[str]:
    prepared = gateway.prepare(GraphQLRequest(query, None, None), ANONYMOUS)
    return [entry["role"] for entry in explain(prepared.bound) if "role" in entry]


@pytest.mark.parametrize(
    ("spells", "cases", "first", "second"),
    [(10_000_000, 50, "council.cases", "health.spells"), (50, 10_000_000, "health.spells", "council.cases")],
)
async def test_the_most_selective_department_goes_first(
    gateway: Gateway, spells: int, cases: int, first: str, second: str
) -> None:
    gateway.statistics = {("health", "spells"): spells, ("council", "cases"): cases}
    gateway._plans.clear()
    roles = _roles(gateway, BOTH)
    steps = [role for role in roles if role.startswith("people step")]
    assert steps[0].startswith(f"people step 1: {first}") and "receives" not in steps[0]
    assert steps[1].startswith(f"people step 2: {second}") and "receives the keys found so far" in steps[1]
    response = await run(gateway, BOTH)
    assert response.data == {"people": [{"nhsNumber": "9990000001"}]}


async def test_keys_reach_members_held_under_other_identifiers_through_confident_links(gateway: Gateway) -> None:
    gateway.statistics = {("health", "spells"): 1, ("council", "cases"): 10_000_000}
    gateway._plans.clear()
    roles = _roles(gateway, BOTH)
    assert "nhs_number to council_id over confident links" in roles
    assert "council_id to nhs_number over confident links" in roles


async def test_sqlite_departments_report_exact_row_counts(gateway: Gateway) -> None:
    assert gateway.statistics[("health", "spells")] == len(ROWS["health.spells"])
    assert gateway.statistics[("linkage", "links")] == len(ROWS["linkage.links"])


async def test_server_departments_report_their_own_estimates(people_catalogs: dict[str, Catalog]) -> None:
    postgres = people_catalogs["postgres"]
    source = postgres.department("dwp").source
    connection = await asyncpg.connect(database=source.database, **PG)  # type: ignore[union-attr]
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    for engine in ("postgres", "mariadb"):
        adapter = create_adapter(people_catalogs[engine].department("dwp"))
        await adapter.open()
        try:
            counts = await adapter.table_rows()
        finally:
            await adapter.close()
        assert set(counts) == {"customers", "claims"}, engine
        if engine == "postgres":  # analysed just now: exact for a table this small
            assert counts == {"customers": len(ROWS["dwp.customers"]), "claims": len(ROWS["dwp.claims"])}
        assert all(value >= 0 for value in counts.values())


PAGE_WITH_LINKS = {
    "sqlite": 'SELECT "links"."nhs_number", "links"."score", "links"."council_id", "links"."nino" '
    'FROM "links" AS "links" '
    'INNER JOIN (SELECT "links"."nhs_number" FROM "links" AS "links" GROUP BY "links"."nhs_number" '
    'ORDER BY "links"."nhs_number" COLLATE BINARY ASC NULLS LAST LIMIT :k0 OFFSET :k1) AS "_fedgate_keys" '
    'ON "links"."nhs_number" COLLATE BINARY = "_fedgate_keys"."nhs_number" '
    'ORDER BY "links"."link_id" ASC NULLS LAST',
    "postgres": 'SELECT "links"."nhs_number", "links"."score", "links"."council_id", "links"."nino" '
    'FROM "links" AS "links" '
    'INNER JOIN (SELECT "links"."nhs_number" FROM "links" AS "links" GROUP BY "links"."nhs_number" '
    'ORDER BY "links"."nhs_number" COLLATE "C" ASC LIMIT $1 OFFSET $2) AS "_fedgate_keys" '
    'ON "links"."nhs_number" = "_fedgate_keys"."nhs_number" ORDER BY "links"."link_id" ASC',
    "mysql": "SELECT `links`.`nhs_number`, `links`.`score`, `links`.`council_id`, `links`.`nino` "
    "FROM `links` AS `links` "
    "INNER JOIN (SELECT `links`.`nhs_number` FROM `links` AS `links` GROUP BY `links`.`nhs_number` "
    "ORDER BY CASE WHEN `links`.`nhs_number` COLLATE utf8mb4_nopad_bin IS NULL THEN 1 ELSE 0 END, "
    "`links`.`nhs_number` COLLATE utf8mb4_nopad_bin ASC LIMIT ? OFFSET ?) AS `_fedgate_keys` "
    "ON (`links`.`nhs_number` = `_fedgate_keys`.`nhs_number` "
    "AND `links`.`nhs_number` COLLATE utf8mb4_nopad_bin = `_fedgate_keys`.`nhs_number`) "
    "ORDER BY CASE WHEN `links`.`link_id` IS NULL THEN 1 ELSE 0 END, `links`.`link_id` ASC",
}


@pytest.mark.parametrize("dialect", sorted(PAGE_WITH_LINKS))
async def test_a_list_reads_its_page_and_link_rows_in_one_statement(gateway: Gateway, dialect: str) -> None:
    prepared = gateway.prepare(GraphQLRequest("{ people(limit: 2, offset: 1) { nhsNumber } }", None, None), ANONYMOUS)
    (root,) = prepared.bound.plan.roots
    assert isinstance(root, EntityRoot)
    page_scan = root.query.page_scan
    assert page_scan is not None and root.query.page_keys is None
    renderer = {"sqlite": SQLiteDialect(), "postgres": PostgresDialect()}.get(dialect)
    query = page_scan.query
    text = renderer.render(query).text if renderer else MySQLDialect().render_with_sizes(query, {}).text
    assert text == PAGE_WITH_LINKS[dialect]
    assert {name: parameter.slot for name, parameter in page_scan.parameters.items()} == {
        "k0": Const(2),
        "k1": Const(1),
    }
    assert page_scan.keys_parameter is None
    assert [entry["role"] for entry in explain(prepared.bound) if "role" in entry] == [
        "the page of keys and the link rows of each person"
    ]
