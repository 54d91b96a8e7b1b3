"""``fedgate demo --backends postgres,mariadb``: health really in PostgreSQL, DWP really in MariaDB, and the
same answers as the all-SQLite demo.

Uses this machine's servers (PostgreSQL on 127.0.0.1:5432 as postgres, MariaDB on 127.0.0.1:3306 as root),
with database names unique to the run, dropped at the end. A server that is not running fails the test.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncmy
import asyncpg
import orjson
import pytest
from typer.testing import CliRunner

from demo.backends import SERVERS, BackendError, drop_databases, load_backends, parse_backends, placements
from demo.run import Demo, prepare_async
from gateway.cli import app
from gateway.endpoint import dumps
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway
from schema.catalog import Catalog
from schema.configfile import load_yaml
from schema.sources import SqliteSource
from tests.conftest import run
from tests.support.demo_support import DemoFederation, client, demo_federation
from tests.support.servers import free_port

PREFIX = f"fedgate_test_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}_"

QUERIES: list[tuple[str, str]] = [
    (
        "mash-case-app",
        """{ health { patients(orderBy: [{nhsNumber: ASC}], limit: 400) {
             nhsNumber givenName familyName dateOfBirth postcode dateOfDeath
             hospitalSpells(orderBy: [{admittedAt: DESC}], limit: 3) { spellId admittedAt dischargedAt specialty }
             socialCareClients(limit: 2) { clientId services(limit: 5) { serviceType weeklyCost }
               tenancies(limit: 3) { tenancyId tenure rentArrears hasAdaptations
                 property { uprn epcRating epcScore councilTaxBand } } }
             personLink { matchScore dwpCustomer { nino postcode benefitClaims(orderBy: [{startDate: ASC}], limit: 5) {
               claimId benefitType status startDate weeklyAmount } } } } } }""",
    ),
    (
        "mash-case-app",
        """{ dwp { benefitClaims(where: {status: {eq: "open"}, weeklyAmount: {gt: 80}},
             orderBy: [{weeklyAmount: DESC}, {claimId: ASC}], limit: 100) {
             claimId weeklyAmount customer { nino familyName personLink { patient { nhsNumber gpPracticeCode
               hospitalSpells(where: {admissionMethod: {eq: "emergency"}}) { admittedAt } } } } } } }""",
    ),
    (
        "dwp-investigator",
        """{ personIndex { personLinks(where: {matchScore: {lt: 0.9}}, orderBy: [{matchScore: ASC}], limit: 50) {
             nino nhsNumber matchScore dwpCustomer { givenName benefitClaims { benefitType } } } } }""",
    ),
    (
        "researcher",
        """{ health { patients(where: {sex: {eq: "female"}}, orderBy: [{dateOfBirth: DESC}, {postcode: ASC}],
               limit: 200) { dateOfBirth postcode sex }
             hospitalSpells(orderBy: [{admittedAt: DESC}], limit: 200) { admittedAt admissionMethod specialty } }
           housing { properties(orderBy: [{epcScore: ASC}], limit: 100) { postcode epcRating epcScore } } }""",
    ),
    (
        "gp-surgery-app",
        """{ health { patients(orderBy: [{familyName: ASC}, {givenName: ASC}], limit: 300) { nhsNumber familyName
             gpRegistrations(orderBy: [{registeredFrom: ASC}]) { practiceCode registeredFrom registeredTo } } } }""",
    ),
    (
        "social-worker-app",
        """{ socialCare { clients(orderBy: [{clientId: ASC}], limit: 300) { clientId
             hospitalSpells(where: {dischargeDestination: {eq: "care home"}}) { dischargedAt }
             tenancies { tenancyId property { postcode } } } } }""",
    ),
]


@pytest.fixture(scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoFederation]:
    async with demo_federation(tmp_path_factory.mktemp("demo-backends"), people=1500) as started:
        yield started


@pytest.fixture(scope="module")
async def placed(federation: DemoFederation) -> AsyncIterator[Demo]:
    """``fedgate demo --backends postgres,mariadb``'s preparation, into databases unique to this run."""
    port = int(federation.housing_url.rsplit(":", 1)[1])
    chosen = placements(SERVERS, PREFIX)
    try:
        yield await prepare_async(
            federation.settings,
            backends="postgres,mariadb",
            housing_port=port,
            data_dir=federation.data,
            database_prefix=PREFIX,
        )
    finally:
        await drop_databases(chosen)


async def _gateway(federation: DemoFederation, catalog: Catalog) -> Gateway:
    settings = federation.settings
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog), federation.policy(catalog))
    await gateway.start()
    return gateway


def _sqlite_count(catalog: Catalog, department: str, table: str) -> int:
    source = catalog.department(department).source
    assert isinstance(source, SqliteSource)
    with sqlite3.connect(source.file) as connection:
        return int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608 - test names


async def _server_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    pg = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=f"{PREFIX}health")
    try:
        for table in ("patients", "gp_registrations", "hospital_spells"):
            counts[f"health.{table}"] = await pg.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608
    finally:
        await pg.close()
    maria = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="", database=f"{PREFIX}dwp")
    try:
        async with maria.cursor() as cursor:
            for table in ("customers", "benefit_claims"):
                await cursor.execute(f"SELECT count(*) FROM `{table}`")  # noqa: S608
                counts[f"dwp.{table}"] = (await cursor.fetchone())[0]
    finally:
        maria.close()
    return counts


async def test_the_departments_are_really_in_the_servers(federation: DemoFederation, placed: Demo) -> None:
    counts = await _server_counts()
    expected = {name: _sqlite_count(federation.catalog, *name.split(".")) for name in counts}
    assert counts == expected
    assert all(count > 0 for count in counts.values())
    assert {name: len(federation.rows[name]) for name in counts} == expected
    kinds = {department.name: department.source.kind for department in placed.catalog.departments}
    assert kinds == {
        "health": "postgres", "social_care": "sqlite", "dwp": "mariadb", "education": "sqlite",
        "person_index": "sqlite", "housing": "rest",
    }  # fmt: skip
    variant = placed.settings.catalog_path
    assert variant == federation.data / f"catalog.postgres-mariadb-housing{placed.housing_port}.yaml"
    assert variant.read_text().startswith("# Generated by `fedgate demo --backends postgres,mariadb`")
    sources = {d["name"]: d["source"] for d in load_yaml(variant).data["departments"]}
    assert sources["health"]["database"] == f"{PREFIX}health" and "password_env" not in sources["health"]
    assert sources["social_care"]["path"] == "social_care.db"  # still the same file, from the variant's folder
    assert sources["housing"]["base_url"] == federation.housing_url


async def test_the_variant_answers_like_the_sqlite_demo(federation: DemoFederation, placed: Demo) -> None:
    embedded = await _gateway(federation, federation.catalog)
    servers = await _gateway(federation, placed.catalog)
    try:
        for client_id, query in QUERIES:
            principal = client(federation.settings, client_id)
            expected = await run(embedded, query, None, principal)
            actual = await run(servers, query, None, principal)
            assert expected.errors == [] and actual.errors == [], (expected.errors, actual.errors)
            expected_data: Any = orjson.loads(dumps(expected.data))
            department = next(iter(expected_data.values()))
            assert len(next(iter(department.values()))) >= 10, query  # a real answer, not an empty one
            assert orjson.loads(dumps(actual.data)) == expected_data, query
        statements = (await run(servers, QUERIES[0][1], None, client(federation.settings, "mash-case-app"))).statements
        assert {"health", "dwp", "social_care", "person_index", "housing"} <= set(statements)
    finally:
        await embedded.stop()
        await servers.stop()


async def test_reloading_is_idempotent(federation: DemoFederation, placed: Demo) -> None:
    before = await _server_counts()
    again = await prepare_async(
        federation.settings,
        backends="mariadb,postgres",
        housing_port=placed.housing_port,
        data_dir=federation.data,
        database_prefix=PREFIX,
    )
    assert await _server_counts() == before
    assert again.settings.catalog_path == placed.settings.catalog_path
    gateway = await _gateway(federation, again.catalog)
    try:
        response = await run(gateway, QUERIES[1][1], None, client(federation.settings, "mash-case-app"))
        assert response.errors == [] and response.data
    finally:
        await gateway.stop()


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
async def test_a_stopped_server_is_named_with_how_to_start_it(federation: DemoFederation, backend: str) -> None:
    server = next(s for s in SERVERS if s.backend == backend)
    nowhere = dataclasses.replace(server, port=free_port())  # nothing listens there
    with pytest.raises(BackendError) as raised:
        await load_backends(federation.catalog, placements([nowhere], PREFIX))
    message = str(raised.value)
    assert f"{server.title} is not answering on 127.0.0.1:{nowhere.port}" in message
    assert ("pg_ctlcluster" if backend == "postgres" else "start-stop-daemon") in message


def test_backends_are_parsed_strictly() -> None:
    assert [s.backend for s in parse_backends("postgres,mariadb")] == ["postgres", "mariadb"]
    assert [s.backend for s in parse_backends(" MariaDB ,postgres")] == ["postgres", "mariadb"]
    assert parse_backends("") == () == parse_backends("sqlite")
    with pytest.raises(BackendError, match=r"unknown backend 'oracle'.*sqlite, postgres, mariadb"):
        parse_backends("postgres,oracle")


def test_the_demo_command_documents_the_switch() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("--backends", "postgres", "mariadb", "--housing-port", "8002"):
        assert text in result.output


def test_an_unknown_backend_stops_the_demo_before_anything_starts() -> None:
    busy = socket.create_server(("127.0.0.1", 0))  # the arguments are checked before the ports
    ports = ["--port", str(busy.getsockname()[1]), "--issuer-port", str(free_port())]
    with busy:
        result = CliRunner().invoke(app, ["demo", "--backends", "oracle", *ports], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "unknown backend 'oracle'" in result.output
