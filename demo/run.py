"""``fedgate demo``: build the demo departments if they are missing, then explain how to query them.

The five database departments are SQLite files in ``demo/data/``; the housing department's rows go to
``demo/data/housing.json``, which only its REST API (:mod:`demo.housing_api`) reads. The API's service
token is generated on first run into ``demo/data/housing-api-token`` (mode 0600) and handed to the API and
to the gateway in ``FEDGATE_DEMO_HOUSING_TOKEN``: the catalog names the variable, never the secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from copy import deepcopy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gateway.audit.keys import generate_key_file
from gateway.settings import Settings
from schema.catalog import Catalog, load_catalog
from schema.configfile import load_yaml
from schema.http_sources import RestSource
from schema.sources import SqliteSource

from .backends import (
    DATABASE_PREFIX,
    Placement,
    load_backends,
    parse_backends,
    placements,
    variant_name,
    write_catalog_variant,
)
from .generate import generate
from .housing_api import DATA_FILE as HOUSING_DATA
from .housing_api import DEFAULT_PORT as HOUSING_PORT
from .housing_api import TOKEN_ENV, load_or_create_token, write_housing_data
from .load import write_sqlite

DEMO_DIR = Path(str(resources.files(__package__ or "demo")))
LEEDS = "E08000035"
SETTINGS_FILE = DEMO_DIR / "fedgate.yaml"
DATA_DIR = DEMO_DIR / "data"

__all__ = [
    "HOUSING_DATA", "HOUSING_PORT", "Demo", "Ports", "ensure_data", "ensure_housing_token", "examples", "prepare",
    "prepare_async", "write_settings",
]  # fmt: skip

#: The settings keys holding paths (relative to the settings file), made absolute in the demo's written settings.
_PATH_KEYS = (("catalog",), ("policy", "file"), ("policy", "secret_file"), ("graphiql", "assets_dir"),
              ("dev_issuer", "state_file"), ("agreements", "folder"), ("audit", "signing_key_file"),
              ("audit", "store", "path"))  # fmt: skip


@dataclass(frozen=True)
class Ports:
    """The demo's three ports: the gateway, the development issuer, the housing department's REST API."""

    gateway: int = 8000
    issuer: int = 8001
    housing: int = HOUSING_PORT


def write_settings(source: Path, data_dir: Path, ports: Ports, catalog: Path | None = None) -> Path:
    """Write the settings the demo really runs with (``source`` on ``ports``, with ``catalog`` if given and
    every path absolute) to ``data_dir/fedgate.<gateway port>.yaml``, so that ``fedgate token``, ``whocan``
    and the rest can be pointed at exactly this demo (``--config`` or ``$FEDGATE_CONFIG``). Returns the file."""
    document: dict[str, Any] = deepcopy(load_yaml(source).data)
    for keys in _PATH_KEYS:
        parent = document
        for key in keys[:-1]:
            parent = parent.get(key) or {}
        if isinstance(parent.get(keys[-1]), str):
            parent[keys[-1]] = str((source.parent / parent[keys[-1]]).resolve())
    if catalog is not None:
        document["catalog"] = str(catalog.resolve())
    document["server"]["port"] = ports.gateway
    document["dev_issuer"]["port"] = ports.issuer
    issuer = f"http://{document['dev_issuer'].get('host', '127.0.0.1')}:{ports.issuer}"
    for entry in document["auth"]["issuers"]:
        entry["issuer"] = issuer
    target = data_dir / f"fedgate.{ports.gateway}.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `fedgate demo` from {source}: the settings of the demo on port {ports.gateway}.\n"
    target.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def ensure_data(catalog: Catalog, *, regenerate: bool = False, housing_data: Path = HOUSING_DATA) -> list[Path]:
    """Create every SQLite department and the housing rows if missing (or all with ``regenerate``);
    return the files written."""
    missing = [
        department
        for department in catalog.departments
        if isinstance(department.source, SqliteSource) and (regenerate or not department.source.file.exists())
    ]
    housing_missing = regenerate or not housing_data.exists()
    if not missing and not housing_missing:
        return []
    rows = generate()
    written = []
    for department in missing:
        assert isinstance(department.source, SqliteSource)
        write_sqlite(department.source.file, catalog, department, rows)
        written.append(department.source.file)
    if housing_missing:
        write_housing_data(housing_data, rows)
        written.append(housing_data)
    return written


def ensure_housing_token(data_dir: Path = DATA_DIR) -> str:
    """The housing API's service token: ``FEDGATE_DEMO_HOUSING_TOKEN`` if set, else the demo's token file
    (generated on first run); set in this process's environment, where the catalog's credential reads it."""
    token = os.environ.get(TOKEN_ENV) or load_or_create_token(data_dir / "housing-api-token")
    os.environ[TOKEN_ENV] = token
    return token


@dataclass(frozen=True)
class Demo:
    """What ``fedgate demo`` serves: the settings (catalog possibly a generated variant) and its catalog."""

    settings: Settings
    catalog: Catalog
    written: list[Path]
    placements: tuple[Placement, ...]
    housing_port: int
    housing_data: Path
    #: The audit's signing key, when this run generated it.
    generated_key: Path | None = None

    @property
    def housing_url(self) -> str:
        source = self.catalog.department("housing").source
        assert isinstance(source, RestSource)
        return source.base_url


async def prepare_async(
    settings: Settings,
    *,
    regenerate: bool = False,
    backends: str = "",
    housing_port: int = HOUSING_PORT,
    data_dir: Path = DATA_DIR,
    database_prefix: str = DATABASE_PREFIX,
) -> Demo:
    """Generate what is missing, (re)load the departments placed on database servers (``backends``, e.g.
    ``"postgres,mariadb"``) and write the catalog variant they need into ``data_dir``. Raises
    :class:`~demo.backends.BackendError` and :class:`~gateway.errors.ConfigError`."""
    chosen = placements(parse_backends(backends), database_prefix)
    ensure_housing_token(data_dir)
    generated_key = ensure_audit_key(settings)
    catalog = load_catalog(settings.catalog_path)
    housing_data = data_dir / HOUSING_DATA.name
    written = ensure_data(catalog, regenerate=regenerate, housing_data=housing_data)
    if chosen or housing_port != HOUSING_PORT:
        await load_backends(catalog, chosen)
        name = variant_name([placement.server for placement in chosen])
        suffix = name if housing_port == HOUSING_PORT else f"{name}-housing{housing_port}"
        variant = write_catalog_variant(
            settings.catalog_path,
            data_dir / f"catalog.{suffix}.yaml",
            chosen,
            housing_url=f"http://127.0.0.1:{housing_port}",
        )
        settings = settings.model_copy(update={"catalog": str(variant)})
        catalog = load_catalog(variant)
    return Demo(settings, catalog, written, chosen, housing_port, housing_data, generated_key)


def ensure_audit_key(settings: Settings) -> Path | None:
    """The demo's audit signing key, generated on first run (the demo only: a deployment names its own);
    the path when it was generated now."""
    path = settings.audit.signing_key_path
    if path is None or path.exists():
        return None
    generate_key_file(path)
    return path


def prepare(
    settings: Settings, *, regenerate: bool = False, backends: str = "", housing_port: int = HOUSING_PORT
) -> Demo:
    """:func:`prepare_async` for the command line."""
    return asyncio.run(prepare_async(settings, regenerate=regenerate, backends=backends, housing_port=housing_port))


@dataclass(frozen=True)
class Example:
    title: str
    client: str
    query: str

    @property
    def headers(self) -> dict[str, str]:
        """The headers stating the example's purpose (beside ``Authorization``), for GraphiQL's Headers tab."""
        return purpose_headers(self.client)


#: Why each demo client asks, and the justification it gives where its purpose needs one. The DWP
#: investigator's and the researcher's tokens bind their purpose (the ``purpose_of_use`` claim); the
#: others state it in the Fedgate-Purpose header. The school nurse's agreement has expired.
PURPOSES: dict[str, tuple[str, str | None]] = {
    "gp-surgery-app": ("direct_care", None),
    "social-worker-app": ("direct_care", None),
    "dwp-investigator": ("fraud", "Investigation FR-2026-0117: undeclared earnings"),
    "researcher": ("research", None),
    "mash-case-app": ("safeguarding", "Referral 2026-0412: concern about an adult at risk"),
    "warm-homes-team": ("dea_fuel_poverty", None),
    "school-nurse-app": ("direct_care", None),
    "security-admin": ("audit", "Monthly review of access to records"),
}
#: Clients whose tokens bind their purpose: they send only a justification, if their purpose needs one.
TOKEN_PURPOSES = frozenset({"dwp-investigator", "researcher"})


def purpose_headers(client: str) -> dict[str, str]:
    """The Fedgate-Purpose and Fedgate-Justification headers a demo client sends (none for a token purpose)."""
    purpose, justification = PURPOSES.get(client, ("direct_care", None))
    headers = {} if client in TOKEN_PURPOSES else {"Fedgate-Purpose": purpose}
    if justification is not None:
        headers["Fedgate-Justification"] = justification
    return headers


def examples(catalog: Catalog, housing_data: Path = HOUSING_DATA) -> list[Example]:
    """Example queries using a person who really has records in several departments of this data: a
    confidently linked Leeds social care client with a National Insurance number and a council tenancy."""
    source = catalog.department("person_index").source
    assert isinstance(source, SqliteSource)
    tenants = sorted(
        {t["council_person_id"] for t in json.loads(housing_data.read_text())["tenancies"] if t["la_code"] == LEEDS}
        if housing_data.exists()
        else set()
    )
    with sqlite3.connect(f"{source.file.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT nhs_number, council_person_id FROM person_links WHERE nino IS NOT NULL "
            "AND council_person_id IS NOT NULL AND match_method = 'deterministic' ORDER BY link_id"
        ).fetchall()
    chosen = next((nhs for nhs, council_id in rows if council_id in tenants), rows[0][0] if rows else "9990000000")
    person = f"""{{
  person(nhsNumber: "{chosen}") {{
    nhsNumber givenName familyName dateOfBirth postcode
    hospitalSpells(orderBy: [{{admittedAt: DESC}}], limit: 3) {{
      admittedAt dischargedAt admissionMethod dischargeDestination
    }}
    socialCareClients {{ clientId laCode primarySupportReason }}
    benefitClaims(where: {{status: {{eq: "open"}}}}) {{ benefitType weeklyAmount }}
    tenancies {{ tenure startDate endDate hasAdaptations property {{ propertyType epcRating }} }}
    links {{ matchScore matchMethod }}
    possibleMatches {{ link {{ matchScore matchMethod }} benefitClaims {{ benefitType }} }}
  }}
}}"""
    condition = """{tenancies: {hasAdaptations: {eq: true}, endDate: {isNull: true}},
                 hospitalSpells: {admissionMethod: {eq: "emergency"}, admittedAt: {gte: "2026-06-01T00:00:00Z"}}}"""
    vulnerable = f"""{{
  people(where: {condition}, limit: 10) {{
    nhsNumber givenName familyName
    hospitalSpells(where: {{admissionMethod: {{eq: "emergency"}}}}, orderBy: [{{admittedAt: DESC}}], limit: 1) {{
      admittedAt dischargeDestination
    }}
    tenancies(where: {{endDate: {{isNull: true}}}}) {{ tenure property {{ epcRating }} }}
  }}
  peopleCount(where: {condition})
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
    tenancies = """{
  socialCare {
    clients(where: {laCode: {eq: "E08000035"}}, orderBy: [{clientId: ASC}], limit: 5) {
      clientId givenName familyName primarySupportReason
      tenancies(orderBy: [{startDate: DESC}]) {
        tenure startDate endDate hasAdaptations rentArrears
        property { addressLine postcode propertyType epcRating councilTaxBand }
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
        Example("One person merged from health, social care, DWP and the housing REST API", "mash-case-app", person),
        Example(
            "Tenants with home adaptations and a recent emergency admission (a cross-department filter)",
            "mash-case-app",
            vulnerable,
        ),
        Example("Leeds social care clients with their emergency hospital admissions", "social-worker-app", discharges),
        Example("Leeds clients' tenancies and homes, from the housing REST API", "social-worker-app", tenancies),
        Example("Open Attendance Allowance claims with the claimant", "dwp-investigator", claims),
    ]
