"""Deterministic synthetic data for the demo federation's six departments.

``generate()`` builds a fictional West Yorkshire population and returns, for every table declared in
``demo/catalog.yaml``, its rows as dicts keyed by column name. The same arguments always give the same
rows: all randomness comes from one ``random.Random(seed)`` and one seeded ``Faker("en_GB")`` (housing, added
later, draws from its own ``random.Random`` derived from the seed, so the other departments' rows did not
change), and every date is relative to the fixed ``REFERENCE_DATE``, never the wall clock.
"""

from __future__ import annotations

import random
from typing import Any

from faker import Faker

from .dwp import DwpTables, build_dwp
from .education import EducationTables, build_education
from .health import build_health
from .housing import build_housing
from .people import REFERENCE_DATE, REFERENCE_INSTANT, Person, generate_population
from .social_care import SocialCareTables, build_social_care

__all__ = ["DEFAULT_PEOPLE", "DEFAULT_SEED", "REFERENCE_DATE", "REFERENCE_INSTANT", "generate"]

DEFAULT_PEOPLE = 5000
DEFAULT_SEED = 20261101

PROBABILISTIC_LINK_SHARE = 0.04
"""Share of people whose person index entry was made by probabilistic matching."""

Row = dict[str, Any]


def generate(people: int = DEFAULT_PEOPLE, seed: int = DEFAULT_SEED) -> dict[str, list[dict[str, Any]]]:
    """Rows for every demo table, keyed by ``"department.table"`` (e.g. ``"health.patients"``).

    Column values are ``str``, ``int``, ``float``, ``Decimal`` (two places), ``bool``, ``date`` or
    UTC ``datetime`` (whole seconds), or ``None`` in nullable columns. Foreign keys always refer to
    existing rows. Raises ``ValueError`` if ``people`` is less than 1.
    """
    rng = random.Random(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    population = generate_population(rng, fake, people)
    health = build_health(rng, population)
    social_care = build_social_care(rng, fake, population.people, health.care_home_discharges)
    dwp = build_dwp(rng, population.people)
    education = build_education(rng, population.people)
    person_links = build_person_links(rng, population.people, social_care, dwp, education)
    housing = build_housing(random.Random(f"{seed}:housing"), population.people, social_care)
    return {
        "health.patients": health.patients,
        "health.gp_registrations": health.gp_registrations,
        "health.hospital_spells": health.hospital_spells,
        "social_care.clients": social_care.clients,
        "social_care.assessments": social_care.assessments,
        "social_care.services": social_care.services,
        "dwp.customers": dwp.customers,
        "dwp.benefit_claims": dwp.benefit_claims,
        "education.pupils": education.pupils,
        "education.schools": education.schools,
        "person_index.person_links": person_links,
        "housing.properties": housing.properties,
        "housing.tenancies": housing.tenancies,
    }


def _pick_wrong_nino_owner(
    person: Person, customers: list[Person], taken: set[str], nino_by_nhs_number: dict[str, str]
) -> Person | None:
    """The DWP customer a careless matcher would confuse with ``person``: same surname, nearest birth."""
    available = [c for c in customers if c.nhs_number not in taken and c.nhs_number != person.nhs_number]
    same_surname = [c for c in available if c.family_name == person.family_name]
    pool = same_surname or available
    if not pool:
        return None
    return min(
        pool, key=lambda c: (abs((c.date_of_birth - person.date_of_birth).days), nino_by_nhs_number[c.nhs_number])
    )


def build_person_links(
    rng: random.Random,
    people: list[Person],
    social_care: SocialCareTables,
    dwp: DwpTables,
    education: EducationTables,
) -> list[Row]:
    """One person index entry per person, linking the identifiers each department holds for them.

    About 96% of entries are deterministic (score 0.95-1). The other ~4% are probabilistic (0.55-0.94):
    mostly correct links for people whose records disagree (no NHS number on the council record, another
    name or postcode), and a handful of wrong links that attach someone else's NINO, always scored below
    0.8. The NINO taken by a wrong link is left off its true owner's entry, so every identifier appears
    in at most one entry.
    """
    nino_of = dict(dwp.nino_by_nhs_number)
    probabilistic_target = round(PROBABILISTIC_LINK_SHARE * len(people))
    wrong_target = max(1, round(probabilistic_target / 10)) if probabilistic_target >= 10 else 0
    scores: dict[str, float] = {}

    # A handful of adults without a NINO of their own wrongly linked to a namesake's NINO.
    customers = [p for p in people if p.nhs_number in nino_of]
    no_nino_adults = [p for p in people if p.age >= 16 and p.nhs_number not in nino_of]
    taken: set[str] = set()
    for person in rng.sample(no_nino_adults, k=min(wrong_target, len(no_nino_adults))):
        owner = _pick_wrong_nino_owner(person, customers, taken, dwp.nino_by_nhs_number)
        if owner is None:
            break
        taken.update({person.nhs_number, owner.nhs_number})
        nino_of[person.nhs_number] = nino_of.pop(owner.nhs_number)
        scores[person.nhs_number] = round(rng.uniform(0.55, 0.789), 3)

    # Correct probabilistic links, preferring people whose records genuinely disagree.
    linkable = [
        p.nhs_number
        for p in people
        if p.nhs_number not in taken
        and (
            p.nhs_number in nino_of
            or p.nhs_number in education.upn_by_nhs_number
            or p.nhs_number in social_care.client_id_by_nhs_number
        )
    ]
    weak = [n for n in linkable if n in social_care.weak_match_nhs_numbers]
    mismatched_postcode = [
        n
        for n in linkable
        if n not in social_care.weak_match_nhs_numbers
        and (n in social_care.postcode_mismatch_nhs_numbers or n in dwp.postcode_mismatch_nhs_numbers)
    ]
    weak_set, postcode_set = set(weak), set(mismatched_postcode)
    others = [n for n in linkable if n not in weak_set and n not in postcode_set]
    candidates = rng.sample(weak, k=len(weak)) + rng.sample(mismatched_postcode, k=len(mismatched_postcode))
    candidates += rng.sample(others, k=len(others))
    for nhs_number in candidates[: max(0, probabilistic_target - len(scores))]:
        low, high = (0.55, 0.85) if nhs_number in weak_set else (0.80, 0.94)
        scores[nhs_number] = round(rng.uniform(low, high), 3)

    rows: list[Row] = []
    for link_id, person in enumerate(people, start=1):
        score = scores.get(person.nhs_number)
        method = "deterministic" if score is None else "probabilistic"
        if score is None:
            score = 1.0 if rng.random() < 0.85 else round(rng.uniform(0.95, 0.999), 3)
        rows.append(
            {
                "link_id": link_id,
                "nhs_number": person.nhs_number,
                "nino": nino_of.get(person.nhs_number),
                "upn": education.upn_by_nhs_number.get(person.nhs_number),
                "council_person_id": social_care.client_id_by_nhs_number.get(person.nhs_number),
                "match_score": score,
                "match_method": method,
            }
        )
    return rows
