"""A page of 1,000 people, each with records from two other departments, against hand-written SQL.

fedgate answers one GraphQL request for a page of ``people`` (the Person entity of the demo catalog) with
their NHS demographics (health), adult social care records (social care) and benefit claims (DWP). The
reference does the same job directly, with the same drivers and no gateway: the fewest statements a
person writing SQL by hand would send (one to the person index for the page and its links, then one per
department, those three concurrently), their rows decoded into the same Python values and nested into
the same shape. Before timing, the two answers are compared and must be equal.

Printed: statements per department (fedgate's own count, against the issue's target of at most one per
department per nesting level) and the median time of each side with their ratio (target: under 2x).

    python -m bench.people [--people 5000] [--page 1000] [--repeat 40] [--engines sqlite,postgres,mariadb]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.databases import Federation, Fetch, federation
from bench.support import ask, started, timed
from demo.generate import generate

QUERY = """
query People($limit: Int!) {
  people(limit: $limit) {
    nhsNumber
    patient { givenName familyName dateOfBirth postcode }
    socialCareClients { clientId laCode primarySupportReason }
    benefitClaims { claimId benefitType status weeklyAmount }
  }
}
"""

PAGE = """SELECT l.nhs_number, l.council_person_id, l.nino, l.match_score >= {threshold} FROM person_links AS l
JOIN (SELECT nhs_number FROM person_links GROUP BY nhs_number ORDER BY nhs_number LIMIT {limit}) AS page
ON page.nhs_number = l.nhs_number"""
PATIENTS = "SELECT nhs_number, given_name, family_name, date_of_birth, postcode FROM patients WHERE nhs_number {keys}"
CLIENTS = "SELECT client_id, la_code, primary_support_reason FROM clients WHERE client_id {keys}"
CLAIMS = "SELECT claim_id, nino, benefit_type, status, weekly_amount FROM benefit_claims WHERE nino {keys}"


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


async def hand_written(fetch: Fetch, limit: int, threshold: float) -> list[dict[str, Any]]:
    """The page, as the reference computes it: ``fetch(department, sql, keys)`` runs ``sql`` followed by
    an ``IN`` list of ``keys`` (the driver's own placeholders) on ``department``'s connection."""
    links = await fetch("person_index", PAGE.format(limit=int(limit), threshold=float(threshold)), ())
    keys = sorted({nhs for nhs, _, _, _ in links})
    links = [link for link in links if link[3]]  # records reached through a low-score link are not merged
    clients = sorted({client for _, client, _, _ in links if client is not None})
    ninos = sorted({nino for _, _, nino, _ in links if nino is not None})
    patients, client_rows, claim_rows = await asyncio.gather(
        fetch("health", PATIENTS, keys), fetch("social_care", CLIENTS, clients), fetch("dwp", CLAIMS, ninos)
    )
    patient_by_key = {
        row[0]: {"givenName": row[1], "familyName": row[2], "dateOfBirth": _date(row[3]), "postcode": row[4]}
        for row in patients
    }
    client_by_id = {
        row[0]: {"clientId": row[0], "laCode": row[1], "primarySupportReason": row[2]} for row in client_rows
    }
    claims_by_nino: dict[str, list[dict[str, Any]]] = {}
    for claim_id, nino, benefit, status, amount in sorted(claim_rows):
        claim = {"claimId": claim_id, "benefitType": benefit, "status": status, "weeklyAmount": Decimal(str(amount))}
        claims_by_nino.setdefault(nino, []).append(claim)
    clients_of: dict[str, list[str]] = {}
    ninos_of: dict[str, list[str]] = {}
    for nhs, client, nino, _ in links:
        if client is not None:
            clients_of.setdefault(nhs, []).append(client)
        if nino is not None:
            ninos_of.setdefault(nhs, []).append(nino)
    return [
        {
            "nhsNumber": nhs,
            "patient": patient_by_key.get(nhs),
            "socialCareClients": [client_by_id[c] for c in sorted(clients_of.get(nhs, ())) if c in client_by_id],
            "benefitClaims": [claim for n in sorted(ninos_of.get(nhs, ())) for claim in claims_by_nino.get(n, ())],
        }
        for nhs in keys
    ]


def _comparable(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lists in a fixed order (by their identifier), so two correct answers compare equal."""
    return [
        {
            **person,
            "socialCareClients": sorted(person["socialCareClients"], key=lambda c: c["clientId"]),
            "benefitClaims": sorted(person["benefitClaims"], key=lambda c: c["claimId"]),
        }
        for person in people
    ]


async def measure(setup: Federation, page: int, repeat: int) -> tuple[dict[str, int], float, float]:
    gateway = await started(setup.catalog)
    try:
        response = await ask(gateway, QUERY, {"limit": page})
        reference = await hand_written(setup.fetch, page, setup.threshold)
        assert response.data is not None
        if _comparable(response.data["people"]) != _comparable(reference):
            raise SystemExit(f"{setup.engine}: fedgate's answer and the hand-written one differ")
        if len(reference) != page:
            raise SystemExit(f"{setup.engine}: the page has {len(reference)} people, not {page}")
        statements = dict(response.statements)
        ours = await timed(lambda: ask(gateway, QUERY, {"limit": page}), repeat=repeat)
        theirs = await timed(lambda: hand_written(setup.fetch, page, setup.threshold), repeat=repeat)
        ours_again = await timed(lambda: ask(gateway, QUERY, {"limit": page}), repeat=repeat)
        theirs_again = await timed(lambda: hand_written(setup.fetch, page, setup.threshold), repeat=repeat)
    finally:
        await gateway.stop()
    return statements, min(ours.median, ours_again.median), min(theirs.median, theirs_again.median)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.people", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5000, help="population of the generated demo data")
    parser.add_argument("--page", type=int, default=1000, help="people in the page asked for")
    parser.add_argument("--repeat", type=int, default=40, help="timed runs of each side, twice, interleaved")
    parser.add_argument("--engines", default="sqlite,postgres,mariadb", help="comma-separated, any of these three")
    args = parser.parse_args(argv)
    rows = generate(people=args.people)
    print(f"A page of {args.page} people with health, social care and DWP records ({args.people} people generated)")
    failed = False
    with tempfile.TemporaryDirectory(prefix="fedgate-bench-") as directory:
        for engine in args.engines.split(","):
            async with federation(engine.strip(), rows, Path(directory)) as setup:
                statements, ours, theirs = await measure(setup, args.page, args.repeat)
            most = max(statements.values())
            counted = ", ".join(f"{name} {count}" for name, count in sorted(statements.items()))
            print(f"\n{engine}")
            print(f"  statements     {counted}   (target: <= 1 per department per level; most {most})")
            print(f"  fedgate        {ours * 1000:8.2f} ms (median)")
            print(f"  hand-written   {theirs * 1000:8.2f} ms (median)")
            verdict = "meets" if ours / theirs < 2 else "MISSES"
            print(f"  ratio          {ours / theirs:8.2f}x   ({verdict} the target of < 2x)")
            failed |= ours / theirs >= 2
    if failed:
        print("\nAt least one engine misses the target.")


if __name__ == "__main__":
    asyncio.run(main())
