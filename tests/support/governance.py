"""Purposes and agreements over the clinic fixture (tests/fixtures/clinic_catalog.yaml), for the governance tests.

Two organisations: the clinic's own staff (``CLINIC``) and the council (``COUNCIL``). The policy
(``POLICY``) has a scope per role, each permitting some purposes; the agreements (``AGREEMENTS``, written
as files by :func:`write_agreements`) say what the clinic and the council share with whom, for what.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.auth.dev_issuer import DevIssuerState, create_dev_issuer_app
from gateway.policy.agreements import load_agreements
from gateway.policy.purposes import DEFAULT_PURPOSES, Purpose
from gateway.policy.store import Policy, load_policy
from gateway.principal import Principal
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.conftest import ATTRS
from tests.support.servers import free_port, gateway_app, serving

CLINIC, COUNCIL = "CLINIC-1", "COUNCIL-9"
VOCABULARY = [purpose.name for purpose in DEFAULT_PURPOSES]

POLICY: dict[str, Any] = {
    "version": 1,
    "scopes": [
        {
            "name": "care.team",
            "description": "Care staff: people, visits and the council's cases.",
            "purposes": ["direct_care", "safeguarding"],
            "grants": [
                {"table": "clinic.people", "columns": "*", "masks": {"nhs_number": "show_last(6)"}},
                {"table": "clinic.visits", "columns": "*"},
                {"table": "council.cases", "columns": "*"},
            ],
        },
        {
            "name": "analyst",
            "description": "Planning analysts: dates of birth and visit kinds.",
            "purposes": ["planning"],
            "grants": [
                {"table": "clinic.people", "columns": ["person_id", "born", "score"]},
                {"table": "clinic.visits", "columns": ["visit_id", "person_id", "kind"]},
            ],
        },
    ],
}


def agreement(identifier: str, **fields: Any) -> dict[str, Any]:
    """An agreement document with sensible values for every key ``fields`` does not give."""
    document: dict[str, Any] = {
        "id": identifier,
        "title": f"Agreement {identifier}",
        "version": 1,
        "status": "active",
        "summary": "What is shared and why.",
        "providers": ["clinic"],
        "recipients": [COUNCIL],
        "purposes": ["direct_care"],
        "lawful_basis": {"article_6": "6(1)(e) public task", "statutory_gateway": ["Care Act 2014 s6"]},
        "data_items": {"clinic.people": {"columns": ["person_id", "given_name"]}},
        "retention": "Keep for a year.",
        "starts": "2025-01-01T00:00:00Z",
        "review_by": "2029-01-01",
        "expires": "2030-01-01T00:00:00Z",
        "signatories": [{"name": "A", "role": "Caldicott Guardian", "organisation": "Clinic", "signed": "2024-12-01"}],
    }
    document.update(fields)
    return document


#: The council's care team: people (NHS numbers masked more than the scope does, only active people),
#: their visits, for direct care; for safeguarding, also the council's own cases.
AGREEMENTS: dict[str, dict[str, Any]] = {
    "care.yaml": agreement(
        "ISA-CARE",
        version=3,
        data_items={
            "clinic.people": {
                "columns": ["person_id", "given_name", "family_name", "nhs_number", "born"],
                "masks": {"nhs_number": "show_last(4)", "born": "year_only"},
                "row_condition": "active = TRUE",
            },
            "clinic.visits": {"columns": ["visit_id", "person_id", "at", "kind"]},
        },
        retention="Keep in the care record for 8 years.",
    ),
    "safeguarding.yaml": agreement(
        "ISA-SAFE",
        providers=["clinic", "council"],
        purposes=["safeguarding"],
        data_items={
            "clinic.people": {"columns": ["person_id", "given_name", "nhs_number"]},
            "council.cases": {"columns": ["case_id", "nhs_number", "status"]},
        },
    ),
}


def write_agreements(folder: Path, agreements: Mapping[str, dict[str, Any]] = AGREEMENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for existing in folder.glob("*.yaml"):
        existing.unlink()
    for name, document in agreements.items():
        (folder / name).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def governed_policy(
    directory: Path,
    catalog: Catalog,
    agreements: Mapping[str, dict[str, Any]] = AGREEMENTS,
    clock: Callable[[], dt.datetime] | None = None,
) -> Policy:
    """The clinic policy with purposes, under ``agreements`` written into ``directory/agreements``."""
    (directory / "policy.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False), encoding="utf-8")
    folder = write_agreements(directory / "agreements", agreements)
    loaded = load_agreements(folder, catalog, VOCABULARY, ATTRS)
    extra = {"clock": clock} if clock is not None else {}
    return load_policy(directory / "policy.yaml", catalog, attributes=ATTRS, purposes=VOCABULARY,
                       agreements=loaded, **extra)  # fmt: skip


def caller(scope: str, organisation: str, purpose: str | None, justification: str | None = None) -> Principal:
    """A principal holding ``scope`` for ``organisation``, asking for ``purpose`` (stated in a header)."""
    return Principal(
        subject="someone",
        client_id=f"{organisation}-app",
        scopes=frozenset({scope}),
        attributes={"org_code": organisation},
        authenticated=True,
        purpose=Purpose(purpose, "header", justification) if purpose is not None else None,
    )


#: The dev issuer's clients in :func:`governed_deployment`: scopes and claims (``purpose_of_use`` binds a purpose).
CLIENTS: dict[str, dict[str, Any]] = {
    "council-care": {"scopes": ["care.team"], "claims": {"org_code": COUNCIL}},
    "council-bound": {"scopes": ["care.team"], "claims": {"org_code": COUNCIL, "purpose_of_use": "direct_care"}},
    "clinic-analyst": {"scopes": ["analyst"], "claims": {"org_code": CLINIC}},
    "admin": {"scopes": ["fedgate:admin"], "claims": {"org_code": CLINIC}},
}


class GovernedDeployment:
    """fedgate (policy with purposes, agreements) and the dev issuer, served on loopback."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        self.settings = settings
        self.base_url = base_url

    async def token(self, client: str) -> str:
        issuer = self.settings.dev_issuer
        assert issuer is not None
        secret = DevIssuerState.load_or_create(issuer).client_secrets[client]
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{issuer.issuer}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client, secret)
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def query(self, query: str, client: str, **headers: str) -> httpx.Response:
        headers = {name.replace("_", "-"): value for name, value in headers.items()}
        headers["authorization"] = f"Bearer {await self.token(client)}"
        async with httpx.AsyncClient() as http:
            return await http.post(f"{self.base_url}/graphql", json={"query": query}, headers=headers)


def governed_settings(
    directory: Path,
    catalog: Catalog,
    issuer_port: int,
    *,
    policy: Mapping[str, Any] = POLICY,
    agreements: Mapping[str, dict[str, Any]] = AGREEMENTS,
    clients: Mapping[str, dict[str, Any]] = CLIENTS,
    policy_section: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings for the clinic under ``policy`` and ``agreements`` (by default :data:`POLICY` and
    :data:`AGREEMENTS`) with the dev issuer's ``clients``, the purpose headers allowed."""
    described = catalog.model_dump(mode="json", by_alias=True, exclude_none=True)
    (directory / "catalog.yaml").write_text(yaml.safe_dump(described))
    (directory / "policy.yaml").write_text(yaml.safe_dump(dict(policy), sort_keys=False))
    write_agreements(directory / "agreements", agreements)
    claims = {"attributes": {"org_code": "org_code"}, "purpose": {"claim": "purpose_of_use"}}
    settings: dict[str, Any] = {
        "catalog": "catalog.yaml",
        "auth": {"issuers": [{"issuer": f"http://127.0.0.1:{issuer_port}", "audiences": ["fedgate"],
                              "profile": "rfc9068", "claims": claims}]},
        "policy": dict(policy_section or {"file": "policy.yaml"}),
        "purposes": {"header": True},
        "agreements": {"folder": "agreements", "watch": False},
        "audit": {"enabled": False},
        "dev_issuer": {
            "port": issuer_port,
            "state_file": "issuer.json",
            "clients": [{"id": name, "name": name, **client} for name, client in clients.items()],
        },
        "logging": {"format": "console", "level": "warning"},
        **overrides,
    }  # fmt: skip
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    return load_settings(directory / "fedgate.yaml")


@contextlib.asynccontextmanager
async def governed_deployment(directory: Path, catalog: Catalog, **overrides: Any) -> AsyncIterator[GovernedDeployment]:
    """fedgate and the dev issuer on loopback (``overrides``: :func:`governed_settings`' arguments and
    settings sections)."""
    issuer_port = free_port()
    settings = governed_settings(directory, catalog, issuer_port, **overrides)
    assert settings.dev_issuer is not None
    issuer = create_dev_issuer_app(settings.dev_issuer)
    async with serving(issuer, issuer_port), serving(gateway_app(directory / "fedgate.yaml")) as url:
        yield GovernedDeployment(settings, url)


def audited_settings(directory: Path, catalog: Catalog, issuer_port: int, **overrides: Any) -> Settings:
    """:func:`governed_settings` with the audit on (``overrides["audit"]``: its section, e.g. the store and the
    key), and a configured policy secret (``directory/policy-secret``) so several workers may serve it."""
    secret = directory / "policy-secret"
    if not secret.exists():
        secret.write_text("ab" * 32)
    return governed_settings(
        directory, catalog, issuer_port, policy_section={"file": "policy.yaml", "secret_file": "policy-secret"},
        **overrides,
    )  # fmt: skip
