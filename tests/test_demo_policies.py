"""Each demo client gets exactly its slice of the demo departments (demo/policy.yaml)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from demo.generate import generate
from demo.load import write_sqlite
from gateway.endpoint import dumps
from gateway.execution.sources import Sources
from gateway.policy.store import policy_from_settings
from gateway.principal import Principal
from gateway.service import Gateway
from gateway.settings import Settings, load_settings
from schema.catalog import load_catalog
from tests.conftest import run

DEMO = Path(__file__).parent.parent / "demo"


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Gateway, Settings, Path]]:
    directory = tmp_path_factory.mktemp("demo")
    for name in ("catalog.yaml", "policy.yaml", "fedgate.yaml"):
        shutil.copy(DEMO / name, directory / name)
    settings = load_settings(directory / "fedgate.yaml")
    catalog = load_catalog(settings.catalog_path)
    rows = generate(people=1500)
    for department in catalog.departments:
        write_sqlite(department.source.file, catalog, department, rows)  # type: ignore[union-attr]
    gateway = Gateway(catalog, settings, Sources(catalog), policy_from_settings(settings, catalog))
    await gateway.start()
    try:
        yield gateway, settings, directory / "data"
    finally:
        await gateway.stop()


def client(settings: Settings, client_id: str) -> Principal:
    assert settings.dev_issuer is not None
    definition = settings.dev_issuer.client(client_id)
    assert definition is not None
    return Principal(
        subject=client_id, client_id=client_id, scopes=frozenset(definition.scopes), attributes=dict(definition.claims)
    )


def _rows(data: Path, database: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data / f"{database}.db") as connection:
        return connection.execute(sql).fetchall()


async def _data(gateway: Gateway, query: str, principal: Principal) -> Any:
    response = await run(gateway, query, None, principal)
    assert response.errors == [], response.errors
    return orjson.loads(dumps(response.data))


async def test_the_gp_sees_its_own_patients_in_full(demo: tuple[Gateway, Settings, Path]) -> None:
    gateway, settings, data = demo
    gp = client(settings, "gp-surgery-app")
    answer = await _data(
        gateway,
        "{ health { patients(limit: 1000) { nhsNumber gpPracticeCode hospitalSpells(limit: 50) { spellId } } } }",
        gp,
    )
    patients = answer["health"]["patients"]
    own = {row[0] for row in _rows(data, "health", "SELECT nhs_number FROM patients WHERE gp_practice_code = 'B86001'")}
    assert own
    assert {p["nhsNumber"] for p in patients} == own
    assert {p["gpPracticeCode"] for p in patients} == {"B86001"}
    spells = {s["spellId"] for p in patients for s in p["hospitalSpells"]}
    with sqlite3.connect(data / "health.db") as connection:
        rows = connection.execute("SELECT spell_id, nhs_number FROM hospital_spells").fetchall()
    expected = {spell for spell, nhs in rows if nhs in own}
    assert spells == expected
    refused = await run(gateway, "{ health { hospitalSpells { spellId } } }", None, gp)
    assert refused.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"  # only through its own patients


async def test_the_social_worker_sees_their_councils_clients_and_their_discharges(
    demo: tuple[Gateway, Settings, Path],
) -> None:
    gateway, settings, data = demo
    worker = client(settings, "social-worker-app")
    answer = await _data(
        gateway,
        "{ socialCare { clients(limit: 1000) { clientId laCode "
        "hospitalSpells(limit: 50) { dischargedAt dischargeDestination } services(limit: 20) { status } } } }",
        worker,
    )
    clients = answer["socialCare"]["clients"]
    leeds = {row[0] for row in _rows(data, "social_care", "SELECT client_id FROM clients WHERE la_code = 'E08000035'")}
    assert {c["clientId"] for c in clients} == leeds
    assert any(c["hospitalSpells"] for c in clients)
    other_council = await _data(gateway, '{ socialCare { client(clientId: "KIR-000001") { clientId } } }', worker)
    assert other_council == {"socialCare": {"client": None}}
    schema = await _data(gateway, '{ __type(name: "HealthHospitalSpell") { fields { name } } }', worker)
    assert {f["name"] for f in schema["__type"]["fields"]} == {
        "spellId", "nhsNumber", "admittedAt", "dischargedAt", "admissionMethod", "dischargeDestination"
    }  # fmt: skip


async def test_the_dwp_investigator_sees_only_a_pseudonymised_nhs_number(demo: tuple[Gateway, Settings, Path]) -> None:
    gateway, settings, data = demo
    investigator = client(settings, "dwp-investigator")
    answer = await _data(gateway, "{ personIndex { personLinks(limit: 200) { nino nhsNumber } } }", investigator)
    links = answer["personIndex"]["personLinks"]
    raw = {row[0] for row in _rows(data, "person_index", "SELECT nhs_number FROM person_links")}
    assert links
    assert all(re.fullmatch(r"[0-9a-f]{64}", link["nhsNumber"]) for link in links)
    assert not {link["nhsNumber"] for link in links} & raw
    assert all(link["nino"] is not None for link in links)  # the grant admits linked customers only
    claims = await _data(
        gateway, "{ dwp { customers(limit: 5) { nino benefitClaims { benefitType } } } }", investigator
    )
    assert len(claims["dwp"]["customers"]) == 5
    refused = await run(gateway, "{ health { patients { nhsNumber } } }", None, investigator)
    assert refused.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_the_researcher_sees_year_of_birth_and_district_only(demo: tuple[Gateway, Settings, Path]) -> None:
    gateway, settings, _ = demo
    researcher = client(settings, "researcher")
    answer = await _data(gateway, "{ health { patients(limit: 300) { dateOfBirth postcode sex } } }", researcher)
    patients = answer["health"]["patients"]
    assert len(patients) == 300
    assert all(p["dateOfBirth"].endswith("-01-01") for p in patients)
    assert all(p["postcode"] is None or " " not in p["postcode"] for p in patients)
    assert all(p["postcode"] is None or re.fullmatch(r"[A-Z]{1,2}[0-9][0-9A-Z]?", p["postcode"]) for p in patients)
    schema = await _data(gateway, '{ __type(name: "HealthPatient") { fields { name } } }', researcher)
    assert {f["name"] for f in schema["__type"]["fields"]} == {"dateOfBirth", "sex", "postcode"}
