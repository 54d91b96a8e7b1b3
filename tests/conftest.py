"""Shared test fixtures: the clinic fixture loaded into real SQLite, PostgreSQL and MariaDB databases.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) run on every machine and
in CI. A missing server fails the tests that need it, with the command that starts it: never a skip.
Each session creates its own uniquely named databases and drops them at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import pytest
import yaml

from demo.load import load_mysql, load_postgres, write_sqlite
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import Policy, load_policy
from gateway.principal import ANONYMOUS, Principal
from gateway.service import Gateway, GraphQLRequest, GraphQLResponse
from gateway.settings import Settings
from schema.catalog import Catalog, load_catalog
from schema.configfile import load_yaml
from tests.fixtures.clinic_data import ROWS
from tests.support.graphql_api import RemoteGraphQL
from tests.support.http_clinic import clinic_rest_api, http_clinic_catalog
from tests.support.rest_api import RestApi
from tests.support.servers import serving

FIXTURES = Path(__file__).parent / "fixtures"
CLINIC_CATALOG = FIXTURES / "clinic_catalog.yaml"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_MARIADB = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


def write_catalog(template: Path, directory: Path, sources: Mapping[str, Mapping[str, Any]]) -> Path:
    """Copy a catalog, replacing departments' sources; returns the new file's path."""
    data = load_yaml(template).data
    for department in data["departments"]:
        if department["name"] in sources:
            department["source"] = dict(sources[department["name"]])
    path = directory / f"catalog-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def clinic_catalog(directory: Path, sources: Mapping[str, Mapping[str, Any]]) -> Catalog:
    return load_catalog(write_catalog(CLINIC_CATALOG, directory, sources))


def make_settings(**graphql: Any) -> Settings:
    """Settings for a gateway the test builds itself (authentication off; the test passes any policy in). A
    request needs no purpose of use here: tests of purposes and agreements use :func:`governed_settings`."""
    return Settings.model_validate(
        {
            "catalog": "unused.yaml",
            "graphql": graphql,
            "auth": {"enabled": False},
            "purposes": {"required": False},
            "logging": {"format": "console"},
        }
    )


async def started_gateway(catalog: Catalog, settings: Settings | None = None, policy: Policy | None = None) -> Gateway:
    gateway = Gateway(catalog, settings or make_settings(), GuardedAdapters(catalog), policy)
    await gateway.start()
    return gateway


async def run(
    gateway: Gateway, query: str, variables: dict[str, Any] | None = None, principal: Principal = ANONYMOUS
) -> GraphQLResponse:
    return await gateway.execute(GraphQLRequest(query, None, variables), principal)


def first_error(response: GraphQLResponse) -> dict[str, Any]:
    """The response's first error (failing the test if there is none)."""
    assert response.errors, response.data
    return dict(response.errors[0])


@pytest.fixture(scope="session")
def sqlite_clinic(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The clinic fixture in two SQLite files."""
    directory = tmp_path_factory.mktemp("sqlite-clinic")
    template = load_catalog(CLINIC_CATALOG)
    for department in template.departments:
        write_sqlite(directory / f"{department.name}.db", template, department, ROWS)
    return clinic_catalog(
        directory, {d.name: {"kind": "sqlite", "path": str(directory / f"{d.name}.db")} for d in template.departments}
    )


async def _postgres_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(database="postgres", timeout=5, **PG)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); start it with: {START_PG}")


async def _mariadb_admin() -> asyncmy.Connection:
    try:
        return await asyncmy.connect(password="", connect_timeout=5, autocommit=True, **MARIADB)
    except (OSError, asyncmy.errors.MySQLError) as exc:
        pytest.fail(f"MariaDB is not reachable on 127.0.0.1:3306 ({exc}); start it with: {START_MARIADB}")


@contextlib.asynccontextmanager
async def scratch_postgres(prefix: str = "fedgate_test") -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await _postgres_admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_mariadb(prefix: str = "fedgate_test") -> AsyncIterator[str]:
    """A fresh, empty MariaDB database (utf8mb4), dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await _mariadb_admin()
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    try:
        yield name
    finally:
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


async def fill_postgres(database: str, catalog: Catalog, rows: Any) -> None:
    """Create every department's tables of ``catalog`` in ``database`` and copy ``rows`` in."""
    connection = await asyncpg.connect(database=database, **PG)
    try:
        for department in catalog.departments:
            await load_postgres(connection, catalog, department, rows)
    finally:
        await connection.close()


async def fill_mariadb(database: str, catalog: Catalog, rows: Any) -> None:
    """Create every department's tables of ``catalog`` in ``database`` and insert ``rows``."""
    connection = await asyncmy.connect(password="", database=database, **MARIADB)
    try:
        for department in catalog.departments:
            await load_mysql(connection, catalog, department, rows)
    finally:
        connection.close()


@pytest.fixture(scope="session")
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this session."""
    async with scratch_postgres() as name:
        yield name


@pytest.fixture(scope="session")
async def mariadb_database() -> AsyncIterator[str]:
    """A fresh, empty MariaDB database (utf8mb4) for this session."""
    async with scratch_mariadb() as name:
        yield name


@pytest.fixture(scope="session")
async def postgres_clinic(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    template = load_catalog(CLINIC_CATALOG)
    await fill_postgres(postgres_database, template, ROWS)
    source = {"kind": "postgres", **PG, "database": postgres_database}
    return clinic_catalog(tmp_path_factory.mktemp("pg-clinic"), {d.name: source for d in template.departments})


@pytest.fixture(scope="session")
async def mariadb_clinic(mariadb_database: str, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    template = load_catalog(CLINIC_CATALOG)
    await fill_mariadb(mariadb_database, template, ROWS)
    source = {"kind": "mariadb", **MARIADB, "database": mariadb_database}
    return clinic_catalog(tmp_path_factory.mktemp("maria-clinic"), {d.name: source for d in template.departments})


@pytest.fixture(scope="session")
async def clinic_rest_service() -> AsyncIterator[tuple[RestApi, str]]:
    """The clinic fixture as a REST API on loopback (tests/support/http_clinic.py), for the whole session."""
    api = clinic_rest_api()
    async with serving(api.app) as url:
        yield api, url


@pytest.fixture(scope="session")
async def clinic_graphql_service() -> AsyncIterator[tuple[RemoteGraphQL, str]]:
    """The clinic fixture as a remote GraphQL API on loopback; it ignores the visits' ``kind`` argument."""
    api = RemoteGraphQL(ignored=frozenset({"kind"}))
    async with serving(api.app) as url:
        yield api, f"{url}/graphql"


@pytest.fixture(scope="session")
def rest_clinic(clinic_rest_service: tuple[RestApi, str], tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The clinic catalog with both departments served by the REST API."""
    _, url = clinic_rest_service
    urls = {"clinic": f"{url}/clinic", "council": f"{url}/council"}
    return http_clinic_catalog(tmp_path_factory.mktemp("rest-clinic"), "rest", urls)


@pytest.fixture(scope="session")
def graphql_clinic(
    clinic_graphql_service: tuple[RemoteGraphQL, str], tmp_path_factory: pytest.TempPathFactory
) -> Catalog:
    """The clinic catalog with both departments served by the remote GraphQL API."""
    _, url = clinic_graphql_service
    return http_clinic_catalog(tmp_path_factory.mktemp("graphql-clinic"), "graphql", {"clinic": url, "council": url})


@pytest.fixture(scope="session")
def engine_catalogs(
    sqlite_clinic: Catalog,
    postgres_clinic: Catalog,
    mariadb_clinic: Catalog,
    rest_clinic: Catalog,
    graphql_clinic: Catalog,
) -> dict[str, Catalog]:
    return {
        "sqlite": sqlite_clinic,
        "postgres": postgres_clinic,
        "mariadb": mariadb_clinic,
        "rest": rest_clinic,
        "graphql": graphql_clinic,
    }


@pytest.fixture(scope="session")
async def engine_gateways(engine_catalogs: dict[str, Catalog]) -> AsyncIterator[dict[str, Gateway]]:
    """A started gateway over the clinic fixture for each engine."""
    gateways = {name: await started_gateway(catalog) for name, catalog in engine_catalogs.items()}
    try:
        yield gateways
    finally:
        for gateway in gateways.values():
            await gateway.stop()


@pytest.fixture(scope="session")
async def sqlite_gateway(sqlite_clinic: Catalog) -> AsyncIterator[Gateway]:
    gateway = await started_gateway(sqlite_clinic)
    try:
        yield gateway
    finally:
        await gateway.stop()


RULES = FIXTURES / "clinic_rules.yaml"
MASTER = b"a test master secret, not for production"
#: The principal attributes the test policies' row filters use, as if an issuer mapped them.
ATTRS = frozenset({"min_visits", "people", "org_code", "org"})


def load_test_policy(path: Path, catalog: Catalog) -> Policy:
    """A test policy file loaded with the fixed test secret, as if an issuer mapped :data:`ATTRS`."""
    return load_policy(path, catalog, secrets=PolicySecrets(MASTER), secret_configured=True, attributes=ATTRS)


@pytest.fixture(scope="session")
async def policy_gateways(engine_catalogs: dict[str, Catalog]) -> AsyncIterator[dict[str, Gateway]]:
    """A started gateway per engine enforcing tests/fixtures/clinic_rules.yaml, with a fixed secret."""
    started = {}
    for engine, catalog in engine_catalogs.items():
        policy = load_test_policy(RULES, catalog)
        started[engine] = await started_gateway(catalog, policy=policy)
    try:
        yield started
    finally:
        for gateway in started.values():
            await gateway.stop()
