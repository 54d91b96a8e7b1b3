"""Information sharing agreements: loading, time, coverage, refusals and caches, over the clinic on SQLite.

Expected rows are written by hand from tests/fixtures/clinic_data.py (active people: p01, p03, p05, p07,
p09, p11, p13) and the agreements of tests/support/governance.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError, NoAgreementError
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.policy.agreements import load_agreements
from gateway.policy.coverage import stricter
from gateway.policy.masks import Mask
from gateway.policy.store import load_policy, policy_from_settings
from gateway.reload import PolicyReloader
from gateway.service import Gateway, GraphQLRequest
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.conftest import ATTRS, make_settings, run
from tests.support.governance import (
    AGREEMENTS,
    CLINIC,
    COUNCIL,
    POLICY,
    VOCABULARY,
    agreement,
    caller,
    governed_policy,
    write_agreements,
)

UTC = dt.UTC


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def gateway(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[Gateway]:
    started = Gateway(
        sqlite_clinic, make_settings(), GuardedAdapters(sqlite_clinic), governed_policy(tmp_path, sqlite_clinic)
    )
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


# --- coverage -------------------------------------------------------------------------------------------


async def test_access_is_what_the_scope_grants_and_the_agreement_covers(gateway: Gateway) -> None:
    """The scope shows NHS numbers' last 6 digits and every row; the agreement only active people, NHS
    numbers' last 4 and years of birth: the stricter wins, column by column."""
    response = await run(
        gateway, "{ clinic { people(limit: 20) { personId nhsNumber born } } }", None,
        caller("care.team", COUNCIL, "direct_care"),
    )  # fmt: skip
    assert response.errors == []
    people = [("p01", "1980"), ("p03", "1990"), ("p05", "2001"), ("p07", "1960"), ("p09", "1985"), ("p11", "1972"),
              ("p13", "2000")]  # fmt: skip
    assert response.data == {
        "clinic": {
            "people": [
                {"personId": pid, "nhsNumber": f"****00{pid[1:]}", "born": dt.date(int(year), 1, 1)}
                for pid, year in people
            ]
        }
    }
    assert response.extensions["purpose"] == {"name": "direct_care", "source": "header"}
    assert response.extensions["agreements"] == [
        {"id": "ISA-CARE", "version": 3, "retention": "Keep in the care record for 8 years."}
    ]


async def test_a_column_no_agreement_lists_is_invisible_like_an_ungranted_one(gateway: Gateway) -> None:
    principal = caller("care.team", COUNCIL, "direct_care")
    hidden = await run(gateway, "{ clinic { people { score } } }", None, principal)
    missing = await run(gateway, "{ clinic { people { shoeSize } } }", None, principal)
    assert hidden.data is None
    assert [e["extensions"]["code"] for e in hidden.errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert hidden.errors[0]["message"] == missing.errors[0]["message"].replace("shoeSize", "score")


async def test_a_table_no_agreement_covers_is_refused_naming_the_purpose_and_table(gateway: Gateway) -> None:
    response = await run(gateway, "{ council { cases { caseId } } }", None, caller("care.team", COUNCIL, "direct_care"))
    assert response.data is None
    (error,) = response.errors
    assert error["extensions"] == {"code": "NO_AGREEMENT", "purpose": "direct_care", "tables": ["council.cases"]}
    assert "ISA-" not in error["message"]  # never names agreements
    assert response.http_status == 403


async def test_another_purpose_is_covered_by_another_agreement(gateway: Gateway) -> None:
    """For safeguarding the council sees its cases (every row: no row condition), and people with the scope's
    own NHS number mask (the agreement adds none)."""
    response = await run(
        gateway,
        '{ clinic { person(personId: "p07") { nhsNumber } } council { cases(limit: 10) { caseId status } } }',
        None,
        caller("care.team", COUNCIL, "safeguarding", "Referral 7"),
    )
    assert response.errors == []
    statuses = ["open", "closed", "open", "open", "closed", "open"]
    assert response.data == {
        "clinic": {"person": {"nhsNumber": "****000007"}},
        "council": {"cases": [{"caseId": f"c{n}", "status": status} for n, status in enumerate(statuses, start=1)]},
    }
    assert [entry["id"] for entry in response.extensions["agreements"]] == ["ISA-SAFE"]


@pytest.mark.parametrize(
    ("scope", "organisation", "purpose"),
    [("analyst", CLINIC, "planning"), ("care.team", CLINIC, "direct_care"), ("care.team", COUNCIL, "research")],
    ids=["no agreement for the purpose", "not a recipient", "a purpose no agreement covers"],
)
def test_a_caller_no_agreement_covers_at_all_is_refused_before_reading_the_document(
    gateway: Gateway, scope: str, organisation: str, purpose: str
) -> None:
    with pytest.raises(NoAgreementError) as refused:
        gateway.require_access(caller(scope, organisation, purpose))
    assert refused.value.purpose == purpose
    assert refused.value.http_status == 403


# --- time ------------------------------------------------------------------------------------------------


async def test_an_agreement_is_usable_from_starts_until_expires_to_the_second(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    starts, expires = dt.datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC), dt.datetime(2026, 3, 1, 17, 0, 0, tzinfo=UTC)
    timed = {"care.yaml": {**AGREEMENTS["care.yaml"], "starts": starts.isoformat(), "expires": expires.isoformat()}}
    clock = Clock(starts - dt.timedelta(seconds=1))
    policy = governed_policy(tmp_path, sqlite_clinic, timed, clock=clock)
    gateway = Gateway(sqlite_clinic, make_settings(), GuardedAdapters(sqlite_clinic), policy)
    await gateway.start()
    principal = caller("care.team", COUNCIL, "direct_care")
    query = '{ clinic { person(personId: "p01") { personId } } }'
    answers = []
    try:
        for now in (starts - dt.timedelta(seconds=1), starts, expires - dt.timedelta(seconds=1), expires):
            clock.now = now
            response = await run(gateway, query, None, principal)
            answers.append(response.errors[0]["extensions"]["code"] if response.errors else response.data)
    finally:
        await gateway.stop()
    served = {"clinic": {"person": {"personId": "p01"}}}
    assert answers == ["NO_AGREEMENT", served, served, "NO_AGREEMENT"]


def test_which_agreements_are_in_force_is_worked_out_again_only_when_one_starts_or_expires(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    later = agreement("ISA-LATER", starts="2027-01-01T00:00:00Z")
    folder = write_agreements(tmp_path / "agreements", {**AGREEMENTS, "later.yaml": later})
    agreements = load_agreements(folder, sqlite_clinic, VOCABULARY, ATTRS)
    before = agreements.in_force(dt.datetime(2026, 6, 1, tzinfo=UTC))
    assert [a.id for a in before.agreements] == ["ISA-CARE", "ISA-SAFE"]
    assert agreements.in_force(dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) is before
    after = agreements.in_force(dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert [a.id for a in after.agreements] == ["ISA-CARE", "ISA-LATER", "ISA-SAFE"]
    assert after.key != before.key


# --- caches ----------------------------------------------------------------------------------------------


def test_plans_and_schemas_are_never_shared_across_purposes_or_agreement_versions(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    query = GraphQLRequest("{ clinic { people(limit: 2) { personId givenName } } }")
    gateway = Gateway(
        sqlite_clinic, make_settings(), GuardedAdapters(sqlite_clinic), governed_policy(tmp_path, sqlite_clinic)
    )
    care = gateway.prepare(query, caller("care.team", COUNCIL, "direct_care"))
    again = gateway.prepare(query, caller("care.team", COUNCIL, "direct_care"))
    safe = gateway.prepare(query, caller("care.team", COUNCIL, "safeguarding", "why"))
    assert again.bound is care.bound  # the same purpose and agreements: the cached plan
    assert safe.bound is not care.bound and safe.access.key != care.access.key
    assert safe.schema.key != care.schema.key
    # A new version of the same agreement, same coverage: still new access, schema and plan.
    bumped = {**AGREEMENTS, "care.yaml": {**AGREEMENTS["care.yaml"], "version": 4}}
    gateway.use_policy(governed_policy(tmp_path, sqlite_clinic, bumped))
    newer = gateway.prepare(query, caller("care.team", COUNCIL, "direct_care"))
    assert newer.access.key != care.access.key and newer.schema.key != care.schema.key
    assert newer.bound is not care.bound


# --- loading ----------------------------------------------------------------------------------------------

BROKEN: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown table", {"data_items": {"clinic.patients": {"columns": ["x"]}}}, "data_items.clinic.patients",
     "table 'clinic.patients' is not in the catalog"),
    ("unknown column", {"data_items": {"clinic.people": {"columns": ["person_id", "shoe_size"]}}},
     "data_items.clinic.people.columns[1]", "column 'shoe_size' does not exist in clinic.people"),
    ("mask on a column not shared", {"data_items": {"clinic.people": {"columns": ["person_id"],
     "masks": {"born": "year_only"}}}}, "data_items.clinic.people.masks.born",
     "'born' is not one of the shared columns"),
    ("bad row condition", {"data_items": {"clinic.people": {"columns": ["person_id"], "row_condition": "nope ="}}},
     "data_items.clinic.people.row_condition", "not a valid SQL expression"),
    ("provider mismatch", {"data_items": {"council.cases": {"columns": ["case_id"]}}}, "data_items.council.cases",
     "belongs to council, which is not one of the providers"),
    ("unknown purpose", {"purposes": ["marketing"]}, "purposes[0]", "'marketing' is not in the purpose vocabulary"),
    ("expires before starts", {"expires": "2024-01-01T00:00:00Z"}, "", "expires must be after starts"),
    ("unknown status", {"status": "pending"}, "status", "Input should be"),
    ("unknown key", {"colour": "blue"}, "colour", "unknown key"),
    ("naive datetime", {"starts": "2025-01-01T00:00:00"}, "starts", "timezone"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "where", "reason"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_every_problem_of_an_agreement_file_is_named_with_file_line_and_path(
    sqlite_clinic: Catalog, tmp_path: Path, change: dict[str, Any], where: str, reason: str
) -> None:
    folder = write_agreements(tmp_path / "agreements", {"good.yaml": agreement("ISA-GOOD"), "bad.yaml": agreement(
        "ISA-BAD", **change)})  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        load_agreements(folder, sqlite_clinic, VOCABULARY, ATTRS)
    (issue,) = refused.value.issues
    assert issue.file == str(folder / "bad.yaml")
    assert issue.line is not None and issue.line >= 1
    assert issue.path == where
    assert reason.lower() in issue.reason.lower()


def test_an_agreement_id_defined_twice_is_refused(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    folder = write_agreements(
        tmp_path / "agreements", {"a.yaml": agreement("ISA-TWICE"), "b.yaml": agreement("ISA-TWICE", version=2)}
    )
    with pytest.raises(ConfigError) as refused:
        load_agreements(folder, sqlite_clinic, VOCABULARY, ATTRS)
    (issue,) = refused.value.issues
    assert (issue.file, issue.path, issue.line) == (str(folder / "b.yaml"), "id", 1)
    assert issue.reason == "agreement 'ISA-TWICE' is also defined in a.yaml"


def test_a_scope_permitting_a_purpose_outside_the_vocabulary_is_refused(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    policy = {**POLICY, "scopes": [{**POLICY["scopes"][0], "purposes": ["direct_care", "marketing"]}]}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    with pytest.raises(ConfigError) as refused:
        load_policy(tmp_path / "policy.yaml", sqlite_clinic, attributes=ATTRS, purposes=VOCABULARY)
    (issue,) = refused.value.issues
    assert (issue.path, issue.reason) == (
        "scopes[care.team].purposes[1]",
        "'marketing' is not in the purpose vocabulary",
    )


# --- masks -----------------------------------------------------------------------------------------------

STRICTER = [
    (None, None, None),
    (None, "hash", "hash"),
    ("show_last(6)", "show_last(4)", "show_last(4)"),
    ("round(2)", "round(0)", "round(0)"),
    ("month_only", "year_only", "year_only"),
    ("show_last(4)", "redact", "redact"),
    ("null", "show_first(2)", "null"),
    ("show_last(4)", "hash", "null"),  # they reveal different things: nothing is shown
    ("show_first(2)", "show_last(2)", "null"),
]


@pytest.mark.parametrize(("first", "second", "expected"), STRICTER)
def test_the_stricter_of_two_masks(first: str | None, second: str | None, expected: str | None) -> None:
    def parsed(text: str | None) -> Mask | None:
        if text is None:
            return None
        kind, _, argument = text.partition("(")
        return Mask(kind, number=int(argument.rstrip(")")) if argument else None)

    assert stricter(parsed(first), parsed(second)) == parsed(expected)
    assert stricter(parsed(second), parsed(first)) == parsed(expected)


# --- reload ---------------------------------------------------------------------------------------------


def _settings(directory: Path, catalog: Catalog) -> Settings:
    (directory / "catalog.yaml").write_text(
        yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    (directory / "policy.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    write_agreements(directory / "agreements")
    settings = {
        "catalog": "catalog.yaml",
        "auth": {"issuers": [{"issuer": "https://idp.example", "audiences": ["fedgate"],
                              "claims": {"attributes": {"org_code": "org_code"}}}]},
        "policy": {"file": "policy.yaml"},
        "agreements": {"folder": "agreements", "watch": False},
        "audit": {"enabled": False},
        "logging": {"format": "console"},
    }  # fmt: skip
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(settings))
    return load_settings(directory / "fedgate.yaml")


async def test_suspending_an_agreement_ends_access_at_once_on_reload(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    settings = _settings(tmp_path, sqlite_clinic)

    gateway = Gateway(
        sqlite_clinic, settings, GuardedAdapters(sqlite_clinic), policy_from_settings(settings, sqlite_clinic, None)
    )
    await gateway.start()
    reloader = PolicyReloader(gateway, settings, sqlite_clinic)
    principal = caller("care.team", COUNCIL, "direct_care")
    query = '{ clinic { person(personId: "p01") { personId } } }'
    try:
        assert (await run(gateway, query, None, principal)).data == {"clinic": {"person": {"personId": "p01"}}}
        write_agreements(tmp_path / "agreements", {**AGREEMENTS, "care.yaml": {**AGREEMENTS["care.yaml"],
                         "status": "suspended", "version": 4}})  # fmt: skip
        outcome = reloader.reload("test")
        assert outcome.reloaded and outcome.problems == ()
        refused = await run(gateway, query, None, principal)
        assert refused.errors[0]["extensions"]["code"] == "NO_AGREEMENT"
    finally:
        await gateway.stop()


async def test_a_bad_file_on_reload_keeps_the_running_version_and_says_why(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, sqlite_clinic)

    policy = policy_from_settings(settings, sqlite_clinic, None)
    assert policy is not None and policy.agreements is not None
    gateway = Gateway(sqlite_clinic, settings, GuardedAdapters(sqlite_clinic), policy)
    await gateway.start()
    reloader = PolicyReloader(gateway, settings, sqlite_clinic)
    try:
        broken = agreement("ISA-CARE", data_items={"clinic.people": {"columns": ["shoe_size"]}})
        write_agreements(tmp_path / "agreements", {**AGREEMENTS, "care.yaml": broken})
        outcome = reloader.reload("test")
        assert not outcome.reloaded
        assert outcome.agreements_version == policy.agreements.version
        file = tmp_path / "agreements" / "care.yaml"
        line = file.read_text().splitlines().index("    - shoe_size") + 1
        assert outcome.problems == (
            f"{file}:{line}: data_items.clinic.people.columns[0]: column 'shoe_size' does not exist in clinic.people",
        )
        assert gateway.policy is policy
        answer = await run(gateway, '{ clinic { person(personId: "p01") { personId } } }', None,
                           caller("care.team", COUNCIL, "direct_care"))  # fmt: skip
        assert answer.data == {"clinic": {"person": {"personId": "p01"}}}
    finally:
        await gateway.stop()
