"""What the audit records, checked against the clinic fixture's rows (tests/fixtures/clinic_data.py):
for each answer, the people its rows are about and, per table, the rows, the columns and the mask on each,
the grants and agreements that admitted them; for each refusal, who was refused and why, and nothing
disclosed. Real tokens from the dev issuer, fedgate over HTTP, the SQLite store read back through
``/audit/graphql``'s own code (``shaped``) so the test sees what a privacy officer sees.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.audit.keys import generate_key_file
from gateway.audit.sqlite_store import SqliteAuditStore
from gateway.audit.store import Filter
from gateway.audit_queries import shaped
from schema.catalog import Catalog
from tests.fixtures.clinic_data import ROWS
from tests.support.governance import (
    AGREEMENTS,
    CLIENTS,
    CLINIC,
    COUNCIL,
    POLICY,
    GovernedDeployment,
    agreement,
    governed_deployment,
)

PEOPLE = ROWS["clinic.people"]
ACTIVE = [p for p in PEOPLE if p["active"] is True]

#: A researcher who sees NHS numbers only as pseudonyms, under an agreement of its own.
RESEARCH_POLICY: dict[str, Any] = copy.deepcopy(POLICY)
RESEARCH_POLICY["scopes"].append({
    "name": "research", "description": "Researchers: pseudonymised people.", "purposes": ["research"],
    "grants": [{"table": "clinic.people", "columns": ["person_id", "nhs_number", "born"],
                "masks": {"nhs_number": "pseudonym"}}],
})  # fmt: skip
RESEARCH_AGREEMENTS = {
    **AGREEMENTS,
    "research.yaml": agreement(
        "ISA-RES", purposes=["research"],
        data_items={"clinic.people": {"columns": ["person_id", "nhs_number", "born"],
                                      "masks": {"nhs_number": "pseudonym"}}},
    ),
}  # fmt: skip
RESEARCH_CLIENTS = {**CLIENTS, "council-research": {"scopes": ["research"], "claims": {"org_code": COUNCIL}}}


@contextlib.asynccontextmanager
async def audited(directory: Path, catalog: Catalog, **overrides: Any) -> AsyncIterator[GovernedDeployment]:
    generate_key_file(directory / "audit-key.pem")
    audit = {"store": {"kind": "sqlite", "path": "audit.sqlite"}, "signing_key_file": "audit-key.pem"}
    async with governed_deployment(directory, catalog, audit=audit, **overrides) as deployment:
        yield deployment


async def recorded(directory: Path) -> list[dict[str, Any]]:
    """Every event, oldest first, as ``/audit/graphql`` shows them."""
    store = SqliteAuditStore(directory / "audit.sqlite")
    await store.open()
    try:
        return [shaped(event) for event in reversed(await store.query(Filter(), 1000))]
    finally:
        await store.close()


def _disclosed(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["table"]: {**item, "columns": {c["name"]: c["mask"] for c in item["columns"]}}
        for item in event["disclosed"]
    }


def _subjects(event: dict[str, Any]) -> set[str]:
    assert {subject["kind"] for subject in event["subjects"]} <= {"nhs_number"}
    return {subject["value"] for subject in event["subjects"]}


async def test_a_row_filtered_masked_table_and_its_nested_level(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    async with audited(tmp_path, sqlite_clinic) as deployment:
        answer = await deployment.query(
            "{ clinic { people(limit: 100) { personId nhsNumber visits { visitId } } } }", "council-care",
            fedgate_purpose="direct_care",
        )  # fmt: skip
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    [event] = await recorded(tmp_path)
    returned = answer.json()["data"]["clinic"]["people"]
    assert sorted(p["personId"] for p in returned) == sorted(p["person_id"] for p in ACTIVE)  # active only
    assert event["principal"]["clientId"] == "council-care" and event["principal"]["organisation"] == COUNCIL
    assert event["purpose"] == {"name": "direct_care", "source": "header", "justification": None}
    assert event["agreements"] == [{"id": "ISA-CARE", "version": 3}]
    assert event["outcome"] == {"status": "ok", "code": None}
    assert {d["name"]: d["status"] for d in event["departments"]} == {"clinic": "ok"}
    # the real NHS numbers of the people returned, though the caller saw only their last four digits
    assert _subjects(event) == {p["nhs_number"] for p in ACTIVE if p["nhs_number"]}
    assert {p["nhsNumber"] for p in returned} == {f"****{p['nhs_number'][-4:]}" for p in ACTIVE}
    visits = [v for v in ROWS["clinic.visits"] if v["person_id"] in {p["person_id"] for p in ACTIVE}]
    assert _disclosed(event) == {
        "clinic.people": {"table": "clinic.people", "rows": len(ACTIVE), "grants": ["care.team"],
                          "agreements": ["ISA-CARE@3"], "columns": {"nhs_number": "show_last(4)", "person_id": None}},
        "clinic.visits": {"table": "clinic.visits", "rows": len(visits), "grants": ["care.team"],
                          "agreements": ["ISA-CARE@3"], "columns": {"visit_id": None}},
    }  # fmt: skip


async def test_a_relationship_to_another_department(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    query = '{ clinic { person(personId: "p01") { givenName cases { caseId status } } } }'
    policy = copy.deepcopy(POLICY)
    del policy["scopes"][0]["grants"][0]["masks"]  # the join key readable as stored: cases match it
    async with audited(tmp_path, sqlite_clinic, policy=policy) as deployment:
        answer = await deployment.query(
            query, "council-care", fedgate_purpose="safeguarding", fedgate_justification="Referral 7"
        )
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    [event] = await recorded(tmp_path)
    cases = [c for c in ROWS["council.cases"] if c["nhs_number"] == "9990000001"]
    assert len(cases) == 2
    assert event["purpose"] == {"name": "safeguarding", "source": "header", "justification": "Referral 7"}
    assert _subjects(event) == {"9990000001"}
    disclosed = _disclosed(event)
    assert disclosed["clinic.people"]["rows"] == 1 and disclosed["clinic.people"]["columns"] == {"given_name": None}
    assert disclosed["council.cases"]["rows"] == 2
    assert disclosed["council.cases"]["columns"] == {"case_id": None, "status": None}
    assert disclosed["council.cases"]["agreements"] == ["ISA-SAFE@1"]
    assert {d["name"]: d["status"] for d in event["departments"]} == {"clinic": "ok", "council": "ok"}


async def test_a_caller_shown_pseudonyms_is_recorded_against_the_real_people(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "policy-secret").write_text("ab" * 32)
    settings = {"policy": RESEARCH_POLICY, "agreements": RESEARCH_AGREEMENTS, "clients": RESEARCH_CLIENTS}
    settings["policy_section"] = {"file": "policy.yaml", "secret_file": "policy-secret"}
    query = "{ clinic { people(limit: 3, orderBy: [{personId: ASC}]) { nhsNumber } } }"
    async with audited(tmp_path, sqlite_clinic, **settings) as deployment:
        answer = await deployment.query(query, "council-research", fedgate_purpose="research")
        # the same table and columns for a caller shown them otherwise, then the researcher again (each
        # caller's masks are its own, however often they are recorded)
        for client, purpose in (("council-care", "direct_care"), ("council-research", "research")):
            again = await deployment.query(query, client, fedgate_purpose=purpose)
            assert again.status_code == 200 and "errors" not in again.json(), again.text
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    event, care, research = await recorded(tmp_path)
    assert _disclosed(care)["clinic.people"]["columns"] == {"nhs_number": "show_last(4)"}
    assert _disclosed(care)["clinic.people"]["grants"] == ["care.team"]
    assert _disclosed(research)["clinic.people"] == _disclosed(event)["clinic.people"]
    real = [p["nhs_number"] for p in sorted(PEOPLE, key=lambda p: p["person_id"])[:3]]
    shown = [p["nhsNumber"] for p in answer.json()["data"]["clinic"]["people"]]
    assert not set(shown) & set(real)  # the caller never saw them
    assert _subjects(event) == set(real)
    assert _disclosed(event)["clinic.people"]["columns"] == {"nhs_number": "pseudonym"}


async def test_a_caller_shown_the_stored_identifiers_is_recorded_against_them(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    policy = copy.deepcopy(POLICY)
    policy["scopes"].append({
        "name": "registry", "description": "The register: people as stored.", "purposes": ["safeguarding"],
        "grants": [{"table": "clinic.people", "columns": ["person_id", "nhs_number"]}],
    })  # fmt: skip
    clients = {**CLIENTS, "council-registry": {"scopes": ["registry"], "claims": {"org_code": COUNCIL}}}
    async with audited(tmp_path, sqlite_clinic, policy=policy, clients=clients) as deployment:  # under ISA-SAFE
        answer = await deployment.query(
            "{ clinic { people(limit: 4, orderBy: [{personId: DESC}]) { personId nhsNumber } } }", "council-registry",
            fedgate_purpose="safeguarding", fedgate_justification="a referral about this family",
        )  # fmt: skip
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    [event] = await recorded(tmp_path)
    expected = sorted(PEOPLE, key=lambda p: p["person_id"], reverse=True)[:4]
    shown = [p["nhsNumber"] for p in answer.json()["data"]["clinic"]["people"]]
    assert shown == [p["nhs_number"] for p in expected]  # stored values, as the policy shows them
    assert _subjects(event) == {p["nhs_number"] for p in expected if p["nhs_number"]}
    assert _disclosed(event)["clinic.people"]["columns"] == {"nhs_number": None, "person_id": None}


async def test_a_department_down_is_recorded_as_failed_and_only_what_was_returned_as_disclosed(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    catalog = sqlite_clinic.model_copy(deep=True)
    council = catalog.department("council")
    broken = council.source.model_copy(update={"path": str(tmp_path / "missing" / "council.db")})
    catalog.departments[catalog.departments.index(council)] = council.model_copy(update={"source": broken})
    query = '{ clinic { person(personId: "p07") { givenName cases { caseId } } } }'
    async with audited(tmp_path, catalog) as deployment:
        answer = await deployment.query(
            query, "council-care", fedgate_purpose="safeguarding", fedgate_justification="Referral 8"
        )
    body = answer.json()
    assert body["data"]["clinic"]["person"] == {"givenName": "back\\slash", "cases": None}
    [event] = await recorded(tmp_path)
    code = body["errors"][0]["extensions"]["code"]
    assert event["outcome"] == {"status": "partial", "code": code}
    departments = {d["name"]: (d["status"], d["code"]) for d in event["departments"]}
    assert departments == {"clinic": ("ok", None), "council": ("failed", code)}
    assert set(_disclosed(event)) == {"clinic.people"}
    assert _subjects(event) == {"9990000007"}


@pytest.mark.parametrize(
    ("client", "headers", "query", "code"),
    [
        ("council-care", {}, "{ clinic { people { personId } } }", "PURPOSE_REQUIRED"),
        (
            "council-care",
            {"fedgate_purpose": "planning"},
            "{ clinic { people { personId } } }",
            "PURPOSE_NOT_PERMITTED",
        ),
        ("clinic-analyst", {"fedgate_purpose": "planning"}, "{ clinic { people { personId } } }", "NO_AGREEMENT"),
        (
            "council-care",
            {"fedgate_purpose": "direct_care"},
            "{ clinic { people { postcode } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("council-care", {"fedgate_purpose": "direct_care"}, "{ clinic { people { ", "GRAPHQL_PARSE_FAILED"),
    ],
    ids=["no purpose", "a purpose the scope does not permit", "no agreement", "a column not granted", "bad GraphQL"],
)
async def test_a_refusal_records_who_and_why_and_nothing_disclosed(
    sqlite_clinic: Catalog, tmp_path: Path, client: str, headers: dict[str, str], query: str, code: str
) -> None:
    async with audited(tmp_path, sqlite_clinic) as deployment:
        answer = await deployment.query(query, client, **headers)
    assert orjson.loads(answer.content)["errors"][0]["extensions"]["code"] == code
    [event] = await recorded(tmp_path)
    assert event["principal"]["clientId"] == client
    assert event["outcome"] == {"status": "refused", "code": code}
    assert (event["disclosed"], event["subjects"], event["departments"]) == ([], [], [])


AUDIT_CLIENTS = {**CLIENTS, "privacy-officer": {"scopes": ["fedgate:audit"], "claims": {"org_code": CLINIC}}}


async def _audit_query(deployment: GovernedDeployment, query: str, **headers: str) -> dict[str, Any]:
    token = await deployment.token("privacy-officer")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{deployment.base_url}/audit/graphql", json={"query": query},
            headers={"authorization": f"Bearer {token}", **headers},
        )  # fmt: skip
    return {"status": response.status_code, **response.json()}


async def test_reading_the_audit_needs_its_purpose_and_is_bounded_before_any_work(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    why = {"fedgate-purpose": "audit", "fedgate-justification": "Subject access request 12"}
    async with audited(tmp_path, sqlite_clinic, clients=AUDIT_CLIENTS) as deployment:
        for _ in range(3):
            await deployment.query("{ clinic { people(limit: 1) { personId } } }", "council-care",
                                   fedgate_purpose="direct_care")  # fmt: skip
        no_purpose = await _audit_query(deployment, "{ auditEvents { seq } }")
        unjustified = await _audit_query(deployment, "{ auditEvents { seq } }", **{"fedgate-purpose": "audit"})
        too_many = await _audit_query(
            deployment, "{ a: auditEvents(limit: 600) { seq } b: auditEvents(limit: 600) { seq } }", **why
        )
        bad_time = await _audit_query(deployment, '{ auditEvents(where: {since: "yesterday"}) { seq } }', **why)
        found = await _audit_query(
            deployment,
            '{ auditEvents(where: {clientId: "council-care"}, limit: 2) { seq principal { clientId } } }',
            **why,
        )
        async with httpx.AsyncClient() as http:
            page = await http.get(f"{deployment.base_url}/audit/graphql", headers={"accept": "text/html"})
    assert (no_purpose["status"], no_purpose["errors"][0]["extensions"]["code"]) == (403, "PURPOSE_REQUIRED")
    assert unjustified["errors"][0]["extensions"]["code"] == "JUSTIFICATION_REQUIRED"
    codes = [error["extensions"]["code"] for error in too_many["errors"]]
    assert codes == ["QUERY_LIMIT_EXCEEDED"]  # the second field is refused before it reads anything
    assert "data" not in too_many  # the fields are non-null: nothing is returned
    assert bad_time["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert found["data"]["auditEvents"] == [{"seq": 3, "principal": {"clientId": "council-care"}},
                                            {"seq": 2, "principal": {"clientId": "council-care"}}]  # fmt: skip
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    events = await recorded(tmp_path)
    reads = [e for e in events if e["principal"]["clientId"] == "privacy-officer"]
    assert [(e["outcome"]["status"], e["outcome"]["code"]) for e in reads] == [
        ("refused", "PURPOSE_REQUIRED"), ("refused", "JUSTIFICATION_REQUIRED"), ("refused", "QUERY_LIMIT_EXCEEDED"),
        ("refused", "BAD_USER_INPUT"), ("ok", None),
    ]  # fmt: skip
    assert reads[-1]["disclosed"][0]["table"] == "fedgate.audit_events" and reads[-1]["disclosed"][0]["rows"] == 2


async def test_a_justification_is_recorded_as_its_sender_wrote_it(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    """Header bytes in UTF-8 (curl, client libraries) and in Latin-1 (a browser's ``fetch``) alike."""
    sent = ["Referral for Siân 🙂".encode(), "Referral for Siân".encode("latin-1")]
    async with audited(tmp_path, sqlite_clinic) as deployment:
        token = await deployment.token("council-care")
        async with httpx.AsyncClient() as http:
            for justification in sent:
                response = await http.post(
                    f"{deployment.base_url}/graphql", json={"query": "{ clinic { people(limit: 1) { personId } } }"},
                    headers={"authorization": f"Bearer {token}", "fedgate-purpose": "direct_care",
                             "fedgate-justification": justification},
                )  # fmt: skip
                assert response.status_code == 200, response.text
    events = await recorded(tmp_path)
    assert [event["purpose"]["justification"] for event in events] == ["Referral for Siân 🙂", "Referral for Siân"]
