"""Each demo client gets exactly its slice of the demo departments (demo/policy.yaml)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import get_introspection_query

from gateway.endpoint import dumps
from gateway.errors import NoAgreementError
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.principal import Principal
from gateway.service import Gateway
from gateway.settings import Settings
from tests.conftest import run
from tests.support.demo_support import DemoFederation, client, demo_federation


@pytest.fixture(scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoFederation]:
    async with demo_federation(tmp_path_factory.mktemp("demo"), people=1500) as started:
        yield started


@pytest.fixture(scope="module")
async def demo(federation: DemoFederation) -> AsyncIterator[tuple[Gateway, Settings, Path]]:
    settings, catalog = federation.settings, federation.catalog
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog), federation.policy(catalog))
    await gateway.start()
    try:
        yield gateway, settings, federation.data
    finally:
        await gateway.stop()


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


# --- Housing, a REST department ---------------------------------------------------------------------


async def _fields(gateway: Gateway, type_name: str, principal: Principal) -> set[str] | None:
    answer = await _data(gateway, f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}', principal)
    return None if answer["__type"] is None else {f["name"] for f in answer["__type"]["fields"]}


async def test_the_social_worker_sees_their_clients_tenancies_with_adaptations_and_arrears(
    demo: tuple[Gateway, Settings, Path], federation: DemoFederation
) -> None:
    gateway, settings, data = demo
    worker = client(settings, "social-worker-app")
    answer = await _data(
        gateway,
        "{ socialCare { clients(limit: 1000) { clientId tenancies(limit: 10) { tenancyId councilPersonId "
        "hasAdaptations rentArrears tenure property { uprn postcode epcRating } } } } }",
        worker,
    )
    leeds = {row[0] for row in _rows(data, "social_care", "SELECT client_id FROM clients WHERE la_code = 'E08000035'")}
    expected = {t["tenancy_id"]: t for t in federation.rows["housing.tenancies"] if t["council_person_id"] in leeds}
    seen = {t["tenancyId"]: t for c in answer["socialCare"]["clients"] for t in c["tenancies"]}
    assert expected and set(seen) == set(expected)
    properties = {p["uprn"]: p for p in federation.rows["housing.properties"]}
    for tenancy_id, tenancy in seen.items():
        truth = expected[tenancy_id]
        assert tenancy["hasAdaptations"] == truth["has_adaptations"]
        arrears = None if tenancy["rentArrears"] is None else Decimal(tenancy["rentArrears"])
        assert arrears == truth["rent_arrears"]
        assert tenancy["property"]["postcode"] == properties[truth["uprn"]]["postcode"]
    assert any(t["hasAdaptations"] for t in seen.values())
    assert any(t["rentArrears"] not in (None, "0") for t in seen.values())
    # No root fields: tenancies and homes only through the council's own clients.
    refused = await run(gateway, "{ housing { tenancies { tenancyId } } }", None, worker)
    assert refused.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    kirklees = next(t for t in federation.rows["housing.tenancies"] if t["la_code"] == "E08000034")
    other = await _data(
        gateway,
        f'{{ socialCare {{ client(clientId: "{kirklees["council_person_id"]}") {{ tenancies {{ tenure }} }} }} }}',
        worker,
    )
    assert other == {"socialCare": {"client": None}}


async def test_the_mash_sees_its_councils_tenancies_and_every_property(
    demo: tuple[Gateway, Settings, Path], federation: DemoFederation
) -> None:
    gateway, settings, _ = demo
    mash = client(settings, "mash-case-app")
    answer = await _data(gateway, "{ housing { tenancies(limit: 1000) { tenancyId laCode } } }", mash)
    expected = {t["tenancy_id"] for t in federation.rows["housing.tenancies"] if t["la_code"] == "E08000035"}
    assert {t["tenancyId"] for t in answer["housing"]["tenancies"]} == expected
    properties = await _data(gateway, "{ housing { properties(limit: 1000) { uprn addressLine } } }", mash)
    assert len(properties["housing"]["properties"]) == len(federation.rows["housing.properties"])
    # The row filter is pushed to the API as a parameter: only Leeds tenancies cross the network.
    federation.recorder.requests.clear()
    await _data(gateway, "{ housing { tenancies(limit: 5) { tenancyId } } }", mash)
    assert federation.recorder.requests
    assert all("la_code=E08000035" in query for path, query in federation.recorder.requests if path == "/tenancies")


async def test_the_researcher_sees_epc_ratings_by_postcode_district_only(
    demo: tuple[Gateway, Settings, Path], federation: DemoFederation
) -> None:
    gateway, settings, _ = demo
    researcher = client(settings, "researcher")
    answer = await _data(
        gateway, "{ housing { properties(limit: 1000) { postcode epcRating epcScore epcAssessedOn } } }", researcher
    )
    properties = answer["housing"]["properties"]
    assert len(properties) == len(federation.rows["housing.properties"])
    assert all(re.fullmatch(r"[A-Z]{1,2}[0-9][0-9A-Z]?", p["postcode"]) for p in properties)
    assert all(p["epcAssessedOn"] is None or p["epcAssessedOn"].endswith("-01-01") for p in properties)
    districts = sorted(p["postcode"].split(" ")[0] for p in federation.rows["housing.properties"])
    assert sorted(p["postcode"] for p in properties) == districts
    assert await _fields(gateway, "HousingProperty", researcher) == {
        "postcode", "laCode", "propertyType", "epcRating", "epcScore", "epcAssessedOn", "councilTaxBand"
    }  # fmt: skip
    assert await _fields(gateway, "HousingTenancy", researcher) is None


@pytest.mark.parametrize("client_id", ["gp-surgery-app", "dwp-investigator"])
async def test_clients_without_a_housing_grant_see_no_housing(
    demo: tuple[Gateway, Settings, Path], client_id: str
) -> None:
    gateway, settings, _ = demo
    principal = client(settings, client_id)
    assert await _fields(gateway, "HousingProperty", principal) is None
    assert await _fields(gateway, "HousingTenancy", principal) is None
    refused = await run(gateway, "{ housing { properties { uprn } } }", None, principal)
    assert refused.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


CLIENTS = ["gp-surgery-app", "social-worker-app", "dwp-investigator", "researcher", "mash-case-app", "security-admin"]


@pytest.mark.parametrize("client_id", CLIENTS)
async def test_the_standard_introspection_query_works_for_every_client_under_the_default_limits(
    demo: tuple[Gateway, Settings, Path], client_id: str
) -> None:
    """GraphiQL's Docs panel and autocompletion send the standard query, which nests ``ofType`` deeper than
    graphql.max_depth: introspection is bounded on its own, so the caller's schema slice always loads."""
    gateway, settings, _ = demo
    assert settings.graphql.max_depth == 10
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    response = await run(gateway, query, None, client(settings, client_id))
    assert response.errors == []
    assert response.data is not None
    types = {entry["name"]: entry for entry in response.data["__schema"]["types"]}
    assert response.data["__schema"]["queryType"]["name"] in types
    slice_ = await _fields(gateway, "Query", client(settings, client_id))
    assert slice_ is not None
    assert {field["name"] for field in types["Query"]["fields"]} == slice_


async def test_introspection_that_recurses_through_fields_is_refused(demo: tuple[Gateway, Settings, Path]) -> None:
    gateway, settings, _ = demo
    cyclic = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }"
    response = await run(gateway, cyclic, None, client(settings, "mash-case-app"))
    assert response.data is None
    assert response.errors[0]["message"] == "Maximum introspection depth exceeded"
    deep_data = "{ socialCare { clients { tenancies { property { tenancies { property { tenancies { property " \
        "{ tenancies { property { tenancies { uprn } } } } } } } } } } } }"  # fmt: skip
    refused = await run(gateway, deep_data, None, client(settings, "mash-case-app"))
    assert refused.errors[0]["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "depth"}


# --- purposes and agreements ------------------------------------------------------------------------------

ASKED = {
    "gp-surgery-app": ("{ health { patients(limit: 1) { nhsNumber } } }", ["ISA-LTHT-B86001-DIRECT-CARE"]),
    "social-worker-app": ("{ socialCare { clients(limit: 1) { clientId } } }", ["ISA-LTHT-LCC-DISCHARGE"]),
    "dwp-investigator": ("{ dwp { customers(limit: 1) { nino } } }", ["ISA-DWP-COUNTER-FRAUD"]),
    "researcher": ("{ health { patients(limit: 1) { sex } } }", ["ISA-COPI-POPULATION-HEALTH"]),
    "mash-case-app": ("{ education { pupils(limit: 1) { upn } } }", ["ISA-LEEDS-MASH"]),
    "warm-homes-team": ("{ housing { properties(limit: 1) { epcRating } } }", ["ISA-LCC-DWP-WARM-HOMES"]),
}


@pytest.mark.parametrize("client_id", sorted(ASKED))
async def test_every_demo_client_is_answered_under_a_named_agreement(
    demo: tuple[Gateway, Settings, Path], client_id: str
) -> None:
    gateway, settings, _ = demo
    query, agreements = ASKED[client_id]
    principal = client(settings, client_id)
    response = await run(gateway, query, None, principal)
    assert response.errors == []
    assert principal.purpose is not None
    assert response.extensions["purpose"] == {"name": principal.purpose.name, "source": principal.purpose.source}
    assert [agreement["id"] for agreement in response.extensions["agreements"]] == agreements
    assert all(agreement["retention"] for agreement in response.extensions["agreements"])


def test_the_school_nurse_whose_agreement_expired_is_refused(demo: tuple[Gateway, Settings, Path]) -> None:
    gateway, settings, _ = demo
    with pytest.raises(NoAgreementError) as refused:
        gateway.require_access(client(settings, "school-nurse-app"))
    assert refused.value.extensions() == {
        "code": "NO_AGREEMENT",
        "purpose": "direct_care",
        "tables": ["education.pupils", "education.schools"],
    }


async def test_the_warm_homes_team_sees_only_the_benefits_its_agreement_names(
    demo: tuple[Gateway, Settings, Path],
) -> None:
    """The scope grants every benefit claim's type and status; the agreement shares only Pension Credit and
    Universal Credit, and never amounts."""
    gateway, settings, data = demo
    team = client(settings, "warm-homes-team")
    answer = await _data(gateway, "{ dwp { benefitClaims(limit: 1000) { claimId benefitType } } }", team)
    expected = _rows(
        data, "dwp",
        "SELECT claim_id, benefit_type FROM benefit_claims "
        "WHERE benefit_type IN ('Pension Credit', 'Universal Credit') ORDER BY claim_id",
    )  # fmt: skip
    assert [(claim["claimId"], claim["benefitType"]) for claim in answer["dwp"]["benefitClaims"]] == expected
    amounts = await run(gateway, "{ dwp { benefitClaims(limit: 1) { weeklyAmount } } }", None, team)
    assert amounts.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
