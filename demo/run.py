"""``fedgate demo``: build the demo departments if they are missing, then explain how to query them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from demo.generate import generate
from demo.load import write_sqlite
from schema.catalog import Catalog
from schema.sources import SqliteSource

DEMO_DIR = Path(str(resources.files("demo")))
SETTINGS_FILE = DEMO_DIR / "fedgate.yaml"


def ensure_data(catalog: Catalog, *, regenerate: bool = False) -> list[Path]:
    """Create every SQLite department that is missing (or all with ``regenerate``); return what was written."""
    missing = [
        department
        for department in catalog.departments
        if isinstance(department.source, SqliteSource) and (regenerate or not department.source.file.exists())
    ]
    if not missing:
        return []
    rows = generate()
    written = []
    for department in missing:
        assert isinstance(department.source, SqliteSource)
        write_sqlite(department.source.file, catalog, department, rows)
        written.append(department.source.file)
    return written


@dataclass(frozen=True)
class Example:
    title: str
    client: str
    query: str


def examples(catalog: Catalog) -> list[Example]:
    """Example queries using a person who really has records in several departments of this data."""
    source = catalog.department("person_index").source
    assert isinstance(source, SqliteSource)
    with sqlite3.connect(f"{source.file.as_uri()}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT nhs_number FROM person_links WHERE nino IS NOT NULL AND council_person_id IS NOT NULL "
            "AND match_method = 'deterministic' ORDER BY link_id LIMIT 1"
        ).fetchone()
    nhs_number = row[0] if row else "9990000000"
    person = f"""{{
  health {{
    patient(nhsNumber: "{nhs_number}") {{
      nhsNumber givenName familyName dateOfBirth postcode
      hospitalSpells(orderBy: [{{admittedAt: DESC}}], limit: 3) {{
        admittedAt dischargedAt admissionMethod dischargeDestination
      }}
      socialCareClients {{ laCode primarySupportReason services {{ serviceType status weeklyCost }} }}
      personLink {{
        matchScore matchMethod
        dwpCustomer {{ nino benefitClaims {{ benefitType status weeklyAmount }} }}
      }}
    }}
  }}
}}"""
    discharges = """{
  socialCare {
    clients(where: {laCode: {eq: "E08000035"}}, orderBy: [{familyName: ASC}], limit: 5) {
      clientId givenName familyName
      hospitalSpells(where: {admissionMethod: {eq: "emergency"}}, orderBy: [{admittedAt: DESC}], limit: 2) {
        admittedAt dischargedAt dischargeDestination
      }
    }
  }
}"""
    claims = """{
  dwp {
    benefitClaims(where: {benefitType: {eq: "Attendance Allowance"}, status: {eq: "open"}}, limit: 5) {
      claimId weeklyAmount customer { nino givenName familyName }
    }
  }
}"""
    return [
        Example(
            "One person's records across health, social care and DWP (via the person index)", "mash-case-app", person
        ),
        Example("Leeds social care clients with their emergency hospital admissions", "social-worker-app", discharges),
        Example("Open Attendance Allowance claims with the claimant", "dwp-investigator", claims),
    ]
