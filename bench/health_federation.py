"""The side-by-side benchmark's federation: the reference ``health`` PostgreSQL database and a SQLite ``care``
department, with a catalog, a policy (one row filter and one mask on the queried table), an information
sharing agreement covering it for direct care, and settings: governed as in production (every request
carries a purpose, bound by its token, and needs the agreement) with the audit on, in SQLite or PostgreSQL,
or off for comparison.

``health`` is ``../shared/bench/health.sql`` (200,000 patients, 600,000 appointments), loaded once into the
database ``health`` on 127.0.0.1:5432 (reloaded only when its row counts are wrong). ``care`` is a SQLite
file with one care plan for every fourth patient, written next to the settings.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import asyncpg
import yaml

from bench.support import REPO
from gateway.audit.keys import generate_key_file

#: ``../shared/bench`` beside the repository; $BENCH_SHARED names another (a worktree's benchmarks).
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared" / "bench"))
HEALTH_SQL = SHARED / "health.sql"
DSN = "postgres://postgres@127.0.0.1:5432/health"
PATIENTS, APPOINTMENTS = 200_000, 600_000
SCOPE = "bench.clinician"
AUDIENCE = "fedgate"
ORGANISATION = "BENCH-ORG"
PURPOSE = "direct_care"
#: The PostgreSQL database of the audit store when it is in PostgreSQL (made afresh for each run).
AUDIT_DATABASE = "fedgate_bench_audit"
#: The audit settings fedgate can be benchmarked with.
AUDIT_MODES = ("off", "sqlite", "postgres")


def _required(*columns: tuple[str, str]) -> list[dict[str, object]]:
    """Catalog columns that are never null: (name, type) pairs."""
    return [{"name": name, "type": type_, "nullable": False} for name, type_ in columns]


PATIENT_COLUMNS = (
    ("nhs_number", "string"),
    ("given_name", "string"),
    ("family_name", "string"),
    ("date_of_birth", "date"),
    ("postcode", "string"),
    ("gp_practice", "string"),
    ("deceased", "boolean"),
)
APPOINTMENT_COLUMNS = (("id", "integer"), ("nhs_number", "string"), ("at", "datetime"), ("clinic", "string"),
                       ("outcome", "string"))  # fmt: skip
CARE_PLAN_COLUMNS = (("plan_id", "integer"), ("nhs_number", "string"), ("started_on", "date"), ("status", "string"))


def _identified(*columns: tuple[str, str]) -> list[dict[str, object]]:
    """:func:`_required`, with ``nhs_number`` marked as the identifier it is (the audit records it)."""
    return [
        {**column, "identifier": "nhs_number"} if column["name"] == "nhs_number" else column
        for column in _required(*columns)
    ]


CATALOG = {
    "version": 1,
    "identifiers": [{"name": "nhs_number", "description": "NHS number."}],
    "departments": [
        {
            "name": "health",
            "title": "Health (the reference data set)",
            "source": {
                "kind": "postgres",
                "host": "127.0.0.1",
                "database": "health",
                "user": "postgres",
                "pool_size": 8,
            },
            "tables": [
                {
                    "name": "patients",
                    "type_name": "Patient",
                    "lookup_field": "patient",
                    "primary_key": ["nhs_number"],
                    "columns": _identified(*PATIENT_COLUMNS),
                    "relationships": [
                        {
                            "name": "appointments",
                            "target": "health.appointments",
                            "on": {"nhs_number": "nhs_number"},
                            "kind": "many",
                        }
                    ],
                },
                {
                    "name": "appointments",
                    "type_name": "Appointment",
                    "primary_key": ["id"],
                    "columns": _identified(*APPOINTMENT_COLUMNS),
                },
            ],
        },
        {
            "name": "care",
            "title": "Adult social care",
            "source": {"kind": "sqlite", "path": "care.db", "pool_size": 4},
            "tables": [
                {
                    "name": "care_plans",
                    "type_name": "CarePlan",
                    "primary_key": ["plan_id"],
                    "columns": _identified(*CARE_PLAN_COLUMNS),
                }
            ],
        },
    ],
}

POLICY = {
    "version": 1,
    "scopes": [
        {
            "name": SCOPE,
            "description": "A clinician: living patients only, given names shortened.",
            "purposes": [PURPOSE],
            "grants": [
                {
                    "table": "health.patients",
                    "columns": "*",
                    "row_filter": "deceased = FALSE",
                    "masks": {"given_name": "show_first(3)"},
                },
                {"table": "health.appointments", "columns": "*", "via": ["health.patients.appointments"]},
                {"table": "care.care_plans", "columns": "*"},
            ],
        }
    ],
}


AGREEMENT = {
    "id": "ISA-BENCH",
    "title": "Benchmark direct care",
    "version": 1,
    "status": "active",
    "summary": "The benchmark's clinicians read patients, appointments and care plans for direct care.",
    "providers": ["health", "care"],
    "recipients": [ORGANISATION],
    "purposes": [PURPOSE],
    "lawful_basis": {
        "article_6": "6(1)(e) public task",
        "article_9": "9(2)(h) health or social care",
        "statutory_gateway": ["Health and Social Care Act 2012 s251B (duty to share for direct care)"],
    },
    "data_items": {
        "health.patients": {"columns": [name for name, _ in PATIENT_COLUMNS]},
        "health.appointments": {"columns": [name for name, _ in APPOINTMENT_COLUMNS]},
        "care.care_plans": {"columns": [name for name, _ in CARE_PLAN_COLUMNS]},
    },
    "retention": "None: a benchmark.",
    "starts": "2025-01-01T00:00:00Z",
    "review_by": "2030-01-01",
    "expires": "2031-01-01T00:00:00Z",
    "signatories": [{"name": "B", "role": "Caldicott Guardian", "organisation": "Bench", "signed": "2024-12-01"}],
}


async def ensure_health_data() -> None:
    """Create and load the ``health`` database unless it already holds the reference data set."""
    admin = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'health'"):
            await admin.execute("CREATE DATABASE health")
    finally:
        await admin.close()
    connection = await asyncpg.connect(DSN)
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('patients', 'appointments')"
        )
        loaded = (
            tables == 2
            and await connection.fetchval("SELECT count(*) FROM patients") == PATIENTS
            and await connection.fetchval("SELECT count(*) FROM appointments") == APPOINTMENTS
        )
        if not loaded:
            print(f"loading {HEALTH_SQL} into 'health' (about a minute)...", flush=True)
            await connection.execute(HEALTH_SQL.read_text())
    finally:
        await connection.close()


def write_care(path: Path) -> None:
    """One care plan for every fourth patient of the reference data set, keyed by NHS number."""
    if path.exists():
        return
    scratch = path.with_suffix(".tmp")
    scratch.unlink(missing_ok=True)
    with sqlite3.connect(scratch) as db:
        db.execute(
            "CREATE TABLE care_plans (plan_id INTEGER PRIMARY KEY, nhs_number TEXT NOT NULL, "
            "started_on TEXT NOT NULL, status TEXT NOT NULL)"
        )
        db.executemany(
            "INSERT INTO care_plans VALUES (?, ?, ?, ?)",
            (
                (i, f"{9_000_000_000 + i:010d}", f"20{10 + i % 16}-0{1 + i % 9}-1{i % 10}", ("open", "closed")[i % 2])
                for i in range(4, PATIENTS + 1, 4)
            ),
        )
        db.execute("CREATE INDEX care_plans_nhs_number ON care_plans (nhs_number)")
    scratch.rename(path)


def write_files(directory: Path, issuer_port: int) -> dict[str, Path]:
    """The catalog, policy, agreement and settings fedgate is served with, in ``directory``: a settings file
    per audit mode (:data:`AUDIT_MODES`), by mode. The audit's signing key is generated for the benchmark."""
    directory.mkdir(parents=True, exist_ok=True)
    write_care(directory / "care.db")
    (directory / "catalog.yaml").write_text(yaml.safe_dump(CATALOG, sort_keys=False))
    (directory / "policy.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    (directory / "agreements").mkdir(exist_ok=True)
    (directory / "agreements" / "bench.yaml").write_text(yaml.safe_dump(AGREEMENT, sort_keys=False))
    key = directory / "audit-signing-key.pem"
    if not key.exists():
        generate_key_file(key)
    claims = {"attributes": {"org_code": "org_code"}, "purpose": {"claim": "purpose_of_use"}}
    stores: dict[str, dict[str, object]] = {
        "sqlite": {"kind": "sqlite", "path": "audit.sqlite"},
        "postgres": {"kind": "postgres", "database": AUDIT_DATABASE, "user": "postgres"},
    }
    files = {}
    for mode in AUDIT_MODES:
        audit = {"enabled": False} if mode == "off" else {"store": stores[mode], "signing_key_file": key.name}
        settings = {
            "catalog": "catalog.yaml",
            "auth": {
                "issuers": [{"issuer": f"http://127.0.0.1:{issuer_port}", "audiences": [AUDIENCE],
                             "profile": "rfc9068", "claims": claims}]
            },
            "policy": {"file": "policy.yaml", "secret_file": "policy-secret"},
            "agreements": {"folder": "agreements", "watch": False},
            "audit": audit,
            "logging": {"level": "warning", "format": "json"},
        }  # fmt: skip
        files[mode] = directory / f"fedgate.audit-{mode}.yaml"
        files[mode].write_text(yaml.safe_dump(settings, sort_keys=False))
    return files
