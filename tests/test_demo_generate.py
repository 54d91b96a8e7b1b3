"""Tests for demo.generate: the synthetic rows must fit demo/catalog.yaml and hang together."""

import itertools
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from demo.generate import REFERENCE_DATE, REFERENCE_INSTANT, generate
from demo.identifiers import is_valid_nhs_number, is_valid_nino, is_valid_upn
from schema.configfile import load_yaml

Rows = dict[str, list[dict[str, Any]]]

CATALOG_PATH = Path(__file__).resolve().parent.parent / "demo" / "catalog.yaml"
SMALL_PEOPLE = 800
COUNCIL_PREFIXES = {"E08000035": "LDS", "E08000034": "KIR", "E08000036": "WAK"}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(CATALOG_PATH).data
    return loaded


@pytest.fixture(scope="module")
def tables(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Catalog table definitions keyed by "department.table"."""
    return {
        f"{department['name']}.{table['name']}": table
        for department in catalog["departments"]
        for table in department["tables"]
    }


@pytest.fixture(scope="module")
def rows() -> Rows:
    return generate(people=SMALL_PEOPLE)


def _is_utc_whole_second(value: object) -> bool:
    return (
        type(value) is datetime
        and value.tzinfo is not None
        and value.utcoffset() == timedelta(0)
        and value.microsecond == 0
    )


TYPE_CHECKS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "float": lambda v: type(v) is float,
    "decimal": lambda v: isinstance(v, Decimal) and v.is_finite() and v.as_tuple().exponent == -2,
    "boolean": lambda v: type(v) is bool,
    "date": lambda v: type(v) is date,
    "datetime": _is_utc_whole_second,
}


def _join_columns(relationship: dict[Any, Any]) -> tuple[list[str], list[str]]:
    """(local columns, target columns) of a relationship's ``on`` mapping."""
    on = relationship["on"]
    return list(on), list(on.values())


def _index(table_rows: list[dict[str, Any]], columns: list[str]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(row[c] for c in columns) for row in table_rows)


# --- Fit to the catalog -----------------------------------------------------------------------------


def test_every_catalog_table_has_rows_with_exactly_its_columns(rows: Rows, tables: dict[str, Any]) -> None:
    assert set(rows) == set(tables)
    for name, table in tables.items():
        expected = [column["name"] for column in table["columns"]]
        assert rows[name], f"{name} has no rows"
        for row in rows[name]:
            assert list(row) == expected, name


def test_values_have_the_declared_python_types(rows: Rows, tables: dict[str, Any]) -> None:
    for name, table in tables.items():
        for column in table["columns"]:
            check = TYPE_CHECKS[column["type"]]  # a new catalog type fails here until it is handled
            bad = [row[column["name"]] for row in rows[name] if row[column["name"]] is not None]
            bad = [value for value in bad if not check(value)]
            assert not bad, f"{name}.{column['name']} ({column['type']}): {bad[:3]}"


def test_non_nullable_columns_are_never_none(rows: Rows, tables: dict[str, Any]) -> None:
    for name, table in tables.items():
        for column in table["columns"]:
            if not column.get("nullable", True):
                assert all(row[column["name"]] is not None for row in rows[name]), f"{name}.{column['name']}"


def test_nullable_columns_use_none_somewhere(rows: Rows) -> None:
    # Empty-while-open columns must really be empty for open records, or the demo cannot show them.
    for name, column in [
        ("health.gp_registrations", "registered_to"),
        ("health.hospital_spells", "discharged_at"),
        ("social_care.clients", "nhs_number"),
        ("social_care.services", "end_date"),
        ("dwp.benefit_claims", "end_date"),
        ("person_index.person_links", "nino"),
    ]:
        assert any(row[column] is None for row in rows[name]), f"{name}.{column}"


def test_primary_keys_are_unique(rows: Rows, tables: dict[str, Any]) -> None:
    for name, table in tables.items():
        keys = _index(rows[name], table["primary_key"])
        assert max(keys.values()) == 1, f"duplicate primary key in {name}"


def test_one_relationships_resolve_to_exactly_one_row(rows: Rows, tables: dict[str, Any]) -> None:
    checked = 0
    for name, table in tables.items():
        for relationship in table.get("relationships", []):
            if relationship["kind"] != "one":
                continue
            local, remote = _join_columns(relationship)
            targets = _index(rows[relationship["target"]], remote)
            for row in rows[name]:
                key = tuple(row[c] for c in local)
                if None not in key:
                    assert targets[key] == 1, f"{name}.{relationship['name']} -> {key}: {targets[key]} rows"
                    checked += 1
    assert checked > 0


def test_every_relationship_is_exercised(rows: Rows, tables: dict[str, Any]) -> None:
    for name, table in tables.items():
        for relationship in table.get("relationships", []):
            local, remote = _join_columns(relationship)
            targets = _index(rows[relationship["target"]], remote)
            keys = [tuple(row[c] for c in local) for row in rows[name]]
            matched = sum(1 for key in keys if None not in key and targets[key] > 0)
            assert matched > 0, f"{name}.{relationship['name']} never matches a row"


def test_identifiers_are_valid_and_from_test_ranges(
    rows: Rows, catalog: dict[str, Any], tables: dict[str, Any]
) -> None:
    patterns = {i["name"]: re.compile(i["pattern"]) for i in catalog["identifiers"] if "pattern" in i}
    validators: dict[str, Callable[[str], bool]] = {
        "nhs_number": lambda v: v.startswith("999") and is_valid_nhs_number(v),
        "nino": lambda v: v.startswith("QQ") and is_valid_nino(v),
        "upn": is_valid_upn,
        "council_person_id": lambda v: re.fullmatch(r"(LDS|KIR|WAK)-[0-9]{6}", v) is not None,
        "school_urn": lambda v: re.fullmatch(r"[0-9]{6}", v) is not None,
        "uprn": lambda v: re.fullmatch(r"99[0-9]{10}", v) is not None,  # made up: 12 digits starting 99
    }
    for name, table in tables.items():
        for column in table["columns"]:
            if "identifier" not in column:
                continue
            validate = validators[column["identifier"]]  # a new identifier kind fails here until handled
            pattern = patterns.get(column["identifier"])
            for row in rows[name]:
                value = row[column["name"]]
                if value is None:
                    continue
                assert validate(value), f"{name}.{column['name']}: {value}"
                assert pattern is None or pattern.match(value), f"{name}.{column['name']}: {value}"


# --- Determinism ------------------------------------------------------------------------------------


def test_same_arguments_give_identical_rows(rows: Rows) -> None:
    random.seed(1)  # the global random state must not matter
    again = generate(people=SMALL_PEOPLE)
    assert again == rows


def test_another_seed_gives_other_people(rows: Rows) -> None:
    other = generate(people=SMALL_PEOPLE, seed=1)
    assert {r["nhs_number"] for r in other["health.patients"]} != {r["nhs_number"] for r in rows["health.patients"]}


def test_people_must_be_positive() -> None:
    with pytest.raises(ValueError, match="people"):
        generate(people=0)


# --- Consistency within and across departments ------------------------------------------------------


def test_nothing_happens_after_the_reference_date(rows: Rows) -> None:
    for name, table_rows in rows.items():
        for row in table_rows:
            for column, value in row.items():
                if type(value) is date:
                    assert value <= REFERENCE_DATE, f"{name}.{column}: {value}"
                elif isinstance(value, datetime):
                    assert value < REFERENCE_INSTANT, f"{name}.{column}: {value}"


def test_patients_ages_and_gp_registrations(rows: Rows) -> None:
    registrations = defaultdict(list)
    for registration in rows["health.gp_registrations"]:
        registrations[registration["nhs_number"]].append(registration)
    oldest = date(REFERENCE_DATE.year - 101, REFERENCE_DATE.month, REFERENCE_DATE.day)
    for patient in rows["health.patients"]:
        assert oldest < patient["date_of_birth"] <= REFERENCE_DATE
        assert patient["sex"] in {"female", "male", "unknown"}
        history = sorted(registrations[patient["nhs_number"]], key=lambda r: r["registered_from"])
        assert history, "every patient has a GP registration"
        for earlier, later in itertools.pairwise(history):
            assert earlier["registered_to"] is not None
            assert earlier["registered_from"] <= earlier["registered_to"] < later["registered_from"]
        current = history[-1]
        assert current["practice_code"] == patient["gp_practice_code"]
        assert current["registered_to"] == patient["date_of_death"]  # open unless the patient died
        assert patient["date_of_birth"] <= history[0]["registered_from"]


def test_hospital_spells_are_ordered_and_respect_death(rows: Rows) -> None:
    patients = {p["nhs_number"]: p for p in rows["health.patients"]}
    spells = defaultdict(list)
    for spell in rows["health.hospital_spells"]:
        spells[spell["nhs_number"]].append(spell)
        assert spell["admission_method"] in {"elective", "emergency", "maternity"}
        if spell["discharged_at"] is None:
            assert spell["discharge_destination"] is None
        else:
            assert spell["admitted_at"] <= spell["discharged_at"]
            assert spell["discharge_destination"] in {"usual residence", "care home", "other hospital", "died"}
    for nhs_number, history in spells.items():
        patient = patients[nhs_number]
        assert 1 <= len(history) <= 6
        history.sort(key=lambda s: s["admitted_at"])
        for earlier, later in itertools.pairwise(history):
            assert earlier["discharged_at"] is not None
            assert earlier["discharged_at"] < later["admitted_at"]
        assert history[0]["admitted_at"].date() >= patient["date_of_birth"]
        died = [s for s in history if s["discharge_destination"] == "died"]
        if died:
            assert died == [history[-1]]
            assert history[-1]["discharged_at"].date() == patient["date_of_death"]
        if patient["date_of_death"] is not None:
            assert all(s["discharged_at"] is not None for s in history)
            assert history[-1]["discharged_at"].date() <= patient["date_of_death"]
        if any(s["admission_method"] == "maternity" for s in history):
            assert patient["sex"] == "female"


def test_social_care_records(rows: Rows) -> None:
    patients = {p["nhs_number"]: p for p in rows["health.patients"]}
    for client in rows["social_care.clients"]:
        assert client["client_id"].startswith(COUNCIL_PREFIXES[client["la_code"]] + "-")
        if client["nhs_number"] is not None:
            assert client["date_of_birth"] == patients[client["nhs_number"]]["date_of_birth"]
        assert client["registered_on"] >= client["date_of_birth"]
    for assessment in rows["social_care.assessments"]:
        assert assessment["assessment_type"] in {"needs", "carers", "review"}
        assert (assessment["completed_on"] is None) == (assessment["outcome"] is None)
        if assessment["completed_on"] is not None:
            assert assessment["started_on"] <= assessment["completed_on"]
    for service in rows["social_care.services"]:
        assert service["service_type"] in {
            "home care", "day care", "residential care", "nursing care", "direct payment", "equipment",
        }  # fmt: skip
        assert service["status"] in {"open", "closed"}
        assert (service["status"] == "open") == (service["end_date"] is None)
        assert service["end_date"] is None or service["start_date"] <= service["end_date"]
        assert Decimal("80.00") <= service["weekly_cost"] <= Decimal("1400.00")


def test_dwp_records(rows: Rows) -> None:
    customers = {c["nino"]: c for c in rows["dwp.customers"]}
    for customer in customers.values():
        assert customer["date_of_birth"] <= date(REFERENCE_DATE.year - 16, REFERENCE_DATE.month, REFERENCE_DATE.day)
    benefits = {"Universal Credit", "PIP", "ESA", "Attendance Allowance", "Pension Credit", "Carer's Allowance"}
    claims_per_customer = Counter(claim["nino"] for claim in rows["dwp.benefit_claims"])
    assert max(claims_per_customer.values()) <= 3
    for claim in rows["dwp.benefit_claims"]:
        assert claim["benefit_type"] in benefits
        assert claim["status"] in {"open", "suspended", "closed"}
        assert (claim["status"] == "closed") == (claim["end_date"] is not None)
        assert claim["end_date"] is None or claim["start_date"] <= claim["end_date"]
        assert Decimal("0") < claim["weekly_amount"] < Decimal("500")
        if claim["benefit_type"] in {"Pension Credit", "Attendance Allowance"}:
            born = customers[claim["nino"]]["date_of_birth"]
            assert claim["start_date"] >= date(born.year + 66, born.month, 1)


def test_pupils_year_groups_match_their_birthdays(rows: Rows) -> None:
    schools = {s["urn"]: s for s in rows["education.schools"]}
    school_year = REFERENCE_DATE.year if REFERENCE_DATE.month >= 9 else REFERENCE_DATE.year - 1
    for pupil in rows["education.pupils"]:
        group = pupil["year_group"]
        # Reception (0) in the school year starting September Y is born 1 Sep (Y-5) to 31 Aug (Y-4).
        assert date(school_year - 5 - group, 9, 1) <= pupil["date_of_birth"] <= date(school_year - 4 - group, 8, 31)
        assert 0 <= group <= 13
        assert schools[pupil["school_urn"]]["phase"] == ("primary" if group <= 6 else "secondary")
        assert pupil["sen_status"] in {"none", "SEN support", "EHC plan"}
    assert {s["la_code"] for s in schools.values()} == set(COUNCIL_PREFIXES)


# --- The person index -------------------------------------------------------------------------------


def _linked_records(rows: Rows) -> list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """(link, patient, [linked DWP/education/social care records]) for every person link."""
    patients = {p["nhs_number"]: p for p in rows["health.patients"]}
    customers = {c["nino"]: c for c in rows["dwp.customers"]}
    pupils = {p["upn"]: p for p in rows["education.pupils"]}
    clients = {c["client_id"]: c for c in rows["social_care.clients"]}
    result = []
    for link in rows["person_index.person_links"]:
        linked = [
            index[link[column]]
            for column, index in (("nino", customers), ("upn", pupils), ("council_person_id", clients))
            if link[column] is not None
        ]
        result.append((link, patients[link["nhs_number"]], linked))
    return result


def _agrees(patient: dict[str, Any], record: dict[str, Any]) -> bool:
    return record["date_of_birth"] == patient["date_of_birth"]


def test_person_links_cover_everyone_once(rows: Rows) -> None:
    links = rows["person_index.person_links"]
    assert [link["link_id"] for link in links] == list(range(1, len(rows["health.patients"]) + 1))
    assert sorted(link["nhs_number"] for link in links) == sorted(p["nhs_number"] for p in rows["health.patients"])
    for column in ("nino", "upn", "council_person_id"):
        values = [link[column] for link in links if link[column] is not None]
        assert len(values) == len(set(values)), f"{column} linked twice"


def test_person_link_scores_and_methods(rows: Rows) -> None:
    links = rows["person_index.person_links"]
    probabilistic = [link for link in links if link["match_method"] == "probabilistic"]
    deterministic = [link for link in links if link["match_method"] == "deterministic"]
    assert len(probabilistic) + len(deterministic) == len(links)
    assert 0.03 <= len(probabilistic) / len(links) <= 0.05
    assert all(0.95 <= link["match_score"] <= 1.0 for link in deterministic)
    assert all(0.55 <= link["match_score"] <= 0.94 for link in probabilistic)


def test_low_confidence_links_include_right_and_wrong_ones(rows: Rows) -> None:
    right_but_low, wrong = 0, 0
    for link, patient, linked in _linked_records(rows):
        low_confidence = link["match_method"] == "probabilistic" and link["match_score"] < 0.8
        if all(_agrees(patient, record) for record in linked):
            if low_confidence:
                right_but_low += 1
        else:
            wrong += 1
            assert low_confidence, link
    assert right_but_low >= 1
    assert wrong >= 1


def test_wrong_links_attach_another_persons_nino(rows: Rows) -> None:
    customers = {c["nino"]: c for c in rows["dwp.customers"]}
    for link, patient, _ in _linked_records(rows):
        if link["nino"] is None:
            continue
        customer = customers[link["nino"]]
        same_person = (customer["given_name"], customer["family_name"], customer["date_of_birth"]) == (
            patient["given_name"],
            patient["family_name"],
            patient["date_of_birth"],
        )
        if not same_person:
            assert link["match_method"] == "probabilistic"
            assert link["match_score"] < 0.8


# --- Realism at the default size --------------------------------------------------------------------


def test_default_population_is_realistic() -> None:
    data = generate()

    patients = data["health.patients"]
    assert len(patients) == 5000
    born = {p["nhs_number"]: p["date_of_birth"] for p in patients}

    def age(nhs_number: str) -> int:
        dob = born[nhs_number]
        return REFERENCE_DATE.year - dob.year - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (dob.month, dob.day))

    ages = [age(n) for n in born]
    assert min(ages) == 0
    assert max(ages) <= 100
    assert 0.15 <= sum(a >= 65 for a in ages) / len(ages) <= 0.25
    assert 0 < sum(p["date_of_death"] is not None for p in patients) < 0.05 * len(patients)
    assert 30 <= len({p["gp_practice_code"] for p in patients}) <= 50
    assert {p["postcode"].split()[0].rstrip("0123456789") for p in patients if p["postcode"]} == {
        "LS",
        "WF",
        "HD",
        "BD",
    }
    registrations = Counter(r["nhs_number"] for r in data["health.gp_registrations"])
    assert any(count > 1 for count in registrations.values())

    spells = data["health.hospital_spells"]
    assert 0.25 <= len({s["nhs_number"] for s in spells}) / len(patients) <= 0.42
    assert any(s["admitted_at"] >= REFERENCE_INSTANT - timedelta(days=30) for s in spells)
    assert 0 < sum(s["discharged_at"] is None for s in spells) <= 0.02 * len(spells)
    young = [s for s in spells if 18 <= age(s["nhs_number"]) < 65 and s["admission_method"] != "maternity"]
    old = [s for s in spells if age(s["nhs_number"]) >= 75]
    assert sum(s["admission_method"] == "emergency" for s in old) / len(old) > sum(
        s["admission_method"] == "emergency" for s in young
    ) / len(young)

    adults = [n for n in born if age(n) >= 18]
    clients = data["social_care.clients"]
    assert 0.06 <= len(clients) / len(adults) <= 0.11
    assert 0.85 <= sum(c["nhs_number"] is not None for c in clients) / len(clients) <= 0.95
    by_nhs = {p["nhs_number"]: p for p in patients}
    recorded = [c for c in clients if c["nhs_number"] is not None]
    assert any(c["given_name"] != by_nhs[c["nhs_number"]]["given_name"] for c in recorded)
    assert any(c["family_name"] != by_nhs[c["nhs_number"]]["family_name"] for c in recorded)
    assert any(c["postcode"] != by_nhs[c["nhs_number"]]["postcode"] for c in recorded)

    over_16 = [n for n in born if age(n) >= 16]
    assert 0.80 <= len(data["dwp.customers"]) / len(over_16) <= 0.90
    nhs_postcodes = {(p["given_name"], p["family_name"], p["date_of_birth"]): p["postcode"] for p in patients}
    moved = [
        c
        for c in data["dwp.customers"]
        if c["postcode"] != nhs_postcodes[(c["given_name"], c["family_name"], c["date_of_birth"])]
    ]
    assert 0.03 <= len(moved) / len(data["dwp.customers"]) <= 0.08

    # Reception to year 13 in September 2026: born 1 September 2008 to 31 August 2022.
    school_age = [
        n
        for n, dob in born.items()
        if date(2008, 9, 1) <= dob <= date(2022, 8, 31) and by_nhs[n]["date_of_death"] is None
    ]
    assert 0.90 <= len(data["education.pupils"]) / len(school_age) <= 0.99
    assert 25 <= len(data["education.schools"]) <= 35

    probabilistic = [link for link in data["person_index.person_links"] if link["match_method"] == "probabilistic"]
    assert 0.035 <= len(probabilistic) / len(patients) <= 0.045
