"""The demo's person-centred view: one query merges health, social care, DWP and the housing REST API,
and still answers, with a clear error, when the housing service is stopped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from demo.backends import write_catalog_variant
from demo.run import LEEDS, examples
from demo.services import start_housing_api
from gateway.endpoint import dumps
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway
from schema.catalog import load_catalog
from tests.conftest import run
from tests.support.demo_support import TOKEN, DemoFederation, client, demo_federation
from tests.support.servers import free_port


def _json(data: Any) -> Any:
    return orjson.loads(dumps(data))


def _expected(federation: DemoFederation, nhs_number: str) -> dict[str, Any]:
    """The person's records, straight from the generated rows (what the MASH client may see of them)."""
    rows = federation.rows
    (link,) = [row for row in rows["person_index.person_links"] if row["nhs_number"] == nhs_number]
    return {
        "clients": sorted(
            row["client_id"]
            for row in rows["social_care.clients"]
            if row["client_id"] == link["council_person_id"] and row["la_code"] == LEEDS
        ),
        "claims": sorted(
            (row["benefit_type"], str(row["weekly_amount"]))
            for row in rows["dwp.benefit_claims"]
            if row["nino"] == link["nino"] and row["status"] == "open"
        ),
        "tenancies": sorted(
            row["tenancy_id"]
            for row in rows["housing.tenancies"]
            if row["council_person_id"] == link["council_person_id"] and row["la_code"] == LEEDS
        ),
    }


def _vulnerable(federation: DemoFederation) -> list[str]:
    """Confidently linked tenants of a current Leeds tenancy with adaptations who had an emergency
    admission since 1 June 2026 (the demo's cross-department example), from the generated rows."""
    rows = federation.rows
    adapted = {
        row["council_person_id"]
        for row in rows["housing.tenancies"]
        if row["la_code"] == LEEDS and row["has_adaptations"] and row["end_date"] is None
    }
    admitted = {
        row["nhs_number"]
        for row in rows["health.hospital_spells"]
        if row["admission_method"] == "emergency" and row["admitted_at"] >= dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    }
    return sorted(
        row["nhs_number"]
        for row in rows["person_index.person_links"]
        if row["match_score"] >= 0.9 and row["council_person_id"] in adapted and row["nhs_number"] in admitted
    )


async def test_one_query_merges_four_departments_and_survives_one_stopping(tmp_path: Path) -> None:
    async with demo_federation(tmp_path, people=5000) as federation:
        port = free_port()
        variant = write_catalog_variant(
            federation.directory / "catalog.yaml", federation.data / "catalog.process.yaml", (),
            housing_url=f"http://127.0.0.1:{port}",
        )  # fmt: skip
        catalog = load_catalog(variant)
        settings = federation.settings
        person, vulnerable = examples(catalog, federation.data / "housing.json")[:2]
        service = start_housing_api(
            host="127.0.0.1", port=port, data=federation.data / "housing.json", token=TOKEN, quiet=True
        )
        gateway = Gateway(catalog, settings, GuardedAdapters(catalog), federation.policy(catalog))
        await gateway.start()
        mash = client(settings, person.client)
        try:
            before = await run(gateway, person.query, None, mash)
            filtered = await run(gateway, vulnerable.query, None, mash)
            service.stop()
            after = await run(gateway, person.query, None, mash)
        finally:
            service.stop()
            await gateway.stop()

    assert before.errors == []
    record = _json(before.data)["person"]
    expected = _expected(federation, record["nhsNumber"])
    assert record["givenName"] and record["dateOfBirth"]  # health's demographics
    assert sorted(c["clientId"] for c in record["socialCareClients"]) == expected["clients"] != []
    assert sorted((c["benefitType"], c["weeklyAmount"]) for c in record["benefitClaims"]) == expected["claims"]
    assert len(record["tenancies"]) == len(expected["tenancies"]) > 0  # from the REST department
    assert {"health", "social_care", "dwp", "housing", "person_index"} <= set(before.statements)

    assert filtered.errors == []
    people = _json(filtered.data)["people"]
    assert [p["nhsNumber"] for p in people] == _vulnerable(federation) != []
    assert _json(filtered.data)["peopleCount"] == len(people)

    partial = _json(after.data)["person"]
    assert partial["tenancies"] is None  # null, never an empty list that reads as "no tenancies"
    assert {key: value for key, value in partial.items() if key != "tenancies"} == {
        key: value for key, value in record.items() if key != "tenancies"
    }
    (error,) = after.errors
    assert error["path"] == ["person", "tenancies"]
    assert error["extensions"]["department"] == "housing"
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert error["extensions"]["retryable"] is True
