"""The audit in the demo, as a newcomer meets it (issue 16's "done when"): the MASH client reads one
person's records; the security administrator finds that access by the person's NHS number, through
``/audit/graphql`` and through ``fedgate audit query``, with its purpose, agreement, fields and masks;
``fedgate audit verify`` passes, and fails naming the event after a hand edit of the SQLite store.

Everything is real: the demo's departments (SQLite files and the housing REST API), the dev issuer's
signed tokens, the gateway over HTTP, the CLI on the same store.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import httpx
import orjson
from click.testing import Result
from typer.testing import CliRunner

from demo.run import PURPOSES, Ports, examples, purpose_headers, write_settings
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.cli import app
from gateway.settings import load_settings
from tests.support.demo_support import demo_federation
from tests.support.governance import GovernedDeployment
from tests.support.servers import free_port, gateway_app, serving

runner = CliRunner()

AUDIT_QUERY = """query Who($nhs: String!) {
  auditEvents(where: {subject: $nhs}, limit: 10) {
    seq time principal { clientId organisation role } purpose { name source justification }
    agreements { id version } outcome { status code }
    disclosed { table rows columns { name mask } grants agreements }
    subjects { kind value }
  }
}"""


async def test_a_newcomer_finds_the_mash_access_and_the_store_verifies_until_edited(tmp_path: Path) -> None:
    async with demo_federation(tmp_path, people=600) as federation:
        ports = Ports(free_port(), free_port(), free_port())
        settings_file = write_settings(federation.directory / "fedgate.yaml", federation.data, ports)
        settings = load_settings(settings_file)
        assert settings.dev_issuer is not None and settings.audit.store is not None
        person = next(example for example in examples(federation.catalog, federation.data / "housing.json"))
        assert person.client == "mash-case-app"
        nhs = person.query.split('nhsNumber: "')[1].split('"')[0]
        async with (
            serving(create_dev_issuer_app(settings.dev_issuer), ports.issuer),
            serving(gateway_app(settings_file), ports.gateway) as url,
        ):
            deployment = GovernedDeployment(settings, url)
            answer = await deployment.query(person.query, "mash-case-app", **_headers("mash-case-app"))
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["person"]["nhsNumber"] == nhs

            async with httpx.AsyncClient() as http:
                unscoped = await http.post(
                    f"{url}/audit/graphql",
                    json={"query": "{ auditEvents { seq } }"},
                    headers={"authorization": f"Bearer {await deployment.token('mash-case-app')}",
                             "fedgate-purpose": "audit", "fedgate-justification": "curious"},
                )  # fmt: skip
                assert unscoped.status_code == 403  # the audit is personal data too: it needs its own scope
                assert unscoped.json()["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SCOPE"
                token = await deployment.token("security-admin")
                found = await http.post(
                    f"{url}/audit/graphql",
                    json={"query": AUDIT_QUERY, "variables": {"nhs": nhs}},
                    headers={"authorization": f"Bearer {token}", **purpose_headers("security-admin")},
                )
        assert found.status_code == 200, found.text
        events = found.json()["data"]["auditEvents"]
        assert len(events) == 1
        event = events[0]
        purpose, justification = PURPOSES["mash-case-app"]
        assert event["principal"] == {"clientId": "mash-case-app", "organisation": "E08000035", "role": "mash"}
        assert event["purpose"] == {"name": purpose, "source": "header", "justification": justification}
        assert {"id": "ISA-LEEDS-MASH", "version": 7} in event["agreements"]
        assert event["outcome"] == {"status": "ok", "code": None}
        disclosed = {item["table"]: item for item in event["disclosed"]}
        patients = disclosed["health.patients"]  # the merged fields' values came from the patient's record
        assert patients["rows"] == 1 and patients["grants"] == ["safeguarding.mash"]
        assert patients["agreements"] == ["ISA-LEEDS-MASH@7"]
        assert [c["name"] for c in patients["columns"]] == ["date_of_birth", "family_name", "given_name", "postcode"]
        assert {"name": "nhs_number", "mask": None} in disclosed["person_index.person_links"]["columns"]  # the key
        assert {"kind": "nhs_number", "value": nhs} in event["subjects"]

        listed = await _cli(["audit", "query", "--config", str(settings_file), "--subject", nhs, "--json"])
        assert listed.exit_code == 0, listed.output
        cli_events = json.loads(listed.output)
        # newest first: the security administrator's own read (the audit is personal data too), then the access
        assert [(e["principal"]["client_id"], e["purpose"]["name"]) for e in cli_events] == [
            ("security-admin", "audit"),
            ("mash-case-app", "safeguarding"),
        ]
        assert cli_events[1]["seq"] == event["seq"]
        assert cli_events[0]["disclosed"] == [{"table": "fedgate.audit_events", "rows": 1, "columns": {},
                                               "grants": ["fedgate:audit"], "agreements": []}]  # fmt: skip

        verified = await _cli(["audit", "verify", "--config", str(settings_file)])
        assert verified.exit_code == 0, verified.output
        assert "verified: 3 events" in verified.output  # the 403, the MASH read, the security admin's read

        store = settings.audit.store.file  # type: ignore[union-attr]
        with sqlite3.connect(store) as connection:
            body, event_id = connection.execute(
                "SELECT body, event_id FROM audit_events WHERE seq = ?", (event["seq"],)
            ).fetchone()
            edited = orjson.dumps({**orjson.loads(body), "purpose": {**orjson.loads(body)["purpose"],
                                                                    "name": "direct_care"}}).decode()  # fmt: skip
            connection.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (edited, event["seq"]))
        broken = await _cli(["audit", "verify", "--config", str(settings_file)])
        assert broken.exit_code == 1
        assert f"broken at event {event['seq']} ({event_id})" in broken.output
        assert "its content does not match its hash: it was changed" in broken.output


async def _cli(arguments: list[str]) -> Result:
    """``fedgate`` with ``arguments``, in a thread (the commands run their own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, arguments)


def _headers(client: str) -> dict[str, str]:
    return {name.lower().replace("-", "_"): value for name, value in purpose_headers(client).items()}


async def test_a_possible_match_is_recorded_only_when_its_records_are_returned(tmp_path: Path) -> None:
    """The merged person's subjects are the identifiers of the links confident enough to be them; a possible
    match (a link under the threshold) is someone else, recorded only when its records are in the answer."""
    async with demo_federation(tmp_path, people=600) as federation:
        links = federation.data / "person_index.db"
        claims = federation.data / "dwp.db"
        with sqlite3.connect(claims) as dwp:
            claimed = {row[0] for row in dwp.execute("SELECT DISTINCT nino FROM benefit_claims")}
        with sqlite3.connect(links) as index:
            low = "SELECT nhs_number, nino FROM person_links WHERE match_score < 0.9 AND nino IS NOT NULL"
            rows = index.execute(low + " ORDER BY link_id").fetchall()
        nhs, nino = next((nhs, nino) for nhs, nino in rows if nino in claimed)
        ports = Ports(free_port(), free_port(), free_port())
        settings_file = write_settings(federation.directory / "fedgate.yaml", federation.data, ports)
        settings = load_settings(settings_file)
        assert settings.dev_issuer is not None
        person = f'person(nhsNumber: "{nhs}")'
        async with (
            serving(create_dev_issuer_app(settings.dev_issuer), ports.issuer),
            serving(gateway_app(settings_file), ports.gateway) as url,
        ):
            deployment = GovernedDeployment(settings, url)
            plain = await deployment.query(
                f"{{ {person} {{ givenName }} }}", "mash-case-app", **_headers("mash-case-app")
            )
            matches = "possibleMatches { link { nino matchScore } benefitClaims { claimId } }"
            matched = await deployment.query(
                f"{{ {person} {{ givenName {matches} }} }}", "mash-case-app", **_headers("mash-case-app")
            )
        assert plain.status_code == matched.status_code == 200
        possible = matched.json()["data"]["person"]["possibleMatches"]
        assert any(match["link"]["nino"] == nino and match["benefitClaims"] for match in possible)
        listed = await _cli(["audit", "query", "--config", str(settings_file), "--subject", nino, "--json"])
        assert listed.exit_code == 0, listed.output
        events = json.loads(listed.output)
        assert len(events) == 1  # the second request: the first returned nothing about that NINO's person
        assert "dwp.benefit_claims" in {item["table"] for item in events[0]["disclosed"]}
        assert nino in events[0]["subjects"]["nino"] and nhs in events[0]["subjects"]["nhs_number"]
