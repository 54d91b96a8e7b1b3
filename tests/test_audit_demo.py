"""The audit in the demo, as a newcomer meets it (issue 16's "done when"): the MASH client reads one
person's records; the security administrator finds that access by the person's NHS number, through
``/audit/graphql`` and through ``fedgate audit query``, with its purpose, agreement, fields and masks;
``fedgate audit verify`` passes, and fails naming the event after a hand edit of the SQLite store.

Everything is real: the demo's departments (SQLite files and the housing REST API), the dev issuer's
signed tokens, the gateway over HTTP, the CLI on the same store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import orjson
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
        print(json.dumps(event, indent=1))
        patients = next(item for item in event["disclosed"] if item["table"] == "health.patients")
        assert patients["rows"] == 1 and patients["grants"] == ["safeguarding.mash"]
        assert patients["agreements"] == ["ISA-LEEDS-MASH@7"]
        assert {"name": "nhs_number", "mask": None} in patients["columns"]
        assert {"kind": "nhs_number", "value": nhs} in event["subjects"]

        listed = runner.invoke(app, ["audit", "query", "--config", str(settings_file), "--subject", nhs, "--json"])
        assert listed.exit_code == 0, listed.output
        cli_events = json.loads(listed.output)
        assert [e["seq"] for e in cli_events] == [event["seq"]]
        assert cli_events[0]["principal"]["client_id"] == "mash-case-app"

        verified = runner.invoke(app, ["audit", "verify", "--config", str(settings_file)])
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
        broken = runner.invoke(app, ["audit", "verify", "--config", str(settings_file)])
        assert broken.exit_code == 1
        assert f"broken at event {event['seq']} ({event_id})" in broken.output
        assert "its content does not match its hash: it was changed" in broken.output


def _headers(client: str) -> dict[str, str]:
    return {name.lower().replace("-", "_"): value for name, value in purpose_headers(client).items()}
