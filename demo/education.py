"""Department for Education tables of the demo federation: schools and pupils."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .identifiers import make_upn
from .people import COUNCILS, REFERENCE_DATE, Council, Person, age_on

Row = dict[str, Any]

PRIMARY_YEAR_GROUPS = range(0, 7)  # reception (0) to year 6
SECONDARY_YEAR_GROUPS = range(7, 14)  # year 7 to year 13 (sixth form)

_SCHOOLS_PER_COUNCIL = {"E08000035": (10, 4), "E08000034": (6, 3), "E08000036": (5, 2)}  # (primary, secondary)
_PRIMARY_NAMES = (
    "{place} Primary School", "{place} Primary Academy", "{place} Church of England Primary School",
    "{place} Junior and Infant School", "St Joseph's Catholic Primary School, {place}",
)  # fmt: skip
_SECONDARY_NAMES = ("{place} High School", "{place} Academy", "{place} Community College", "{place} Grammar School")
_SEN_STATUS_WEIGHTS = {"none": 80.5, "SEN support": 14.2, "EHC plan": 5.3}  # England, January 2025


@dataclass(frozen=True)
class School:
    """A state-funded school, with the DfE establishment number used when it allocates UPNs."""

    urn: str
    name: str
    council: Council
    phase: str
    establishment_number: int


@dataclass
class EducationTables:
    """The rows of the education department, and each pupil's true owner."""

    schools: list[Row] = field(default_factory=list)
    pupils: list[Row] = field(default_factory=list)
    upn_by_nhs_number: dict[str, str] = field(default_factory=dict)


def academic_year_start(on: date) -> date:
    """1 September of the school year that ``on`` falls in."""
    return date(on.year if on.month >= 9 else on.year - 1, 9, 1)


def year_group_for(date_of_birth: date, on: date = REFERENCE_DATE) -> int:
    """National curriculum year on ``on``: reception (0) for children aged 4 on 31 August before it."""
    return age_on(date_of_birth, academic_year_start(on) - timedelta(days=1)) - 4


def generate_schools(rng: random.Random) -> list[School]:
    """About thirty primary and secondary schools across the three councils, with distinct URNs."""
    urns = iter(rng.sample(range(100_000, 150_000), k=sum(p + s for p, s in _SCHOOLS_PER_COUNCIL.values())))
    schools: list[School] = []
    for council in COUNCILS:
        primary_count, secondary_count = _SCHOOLS_PER_COUNCIL[council.la_code]
        places = rng.sample(council.places, k=primary_count + secondary_count)
        primary_numbers = rng.sample(range(2000, 3500), k=primary_count)
        secondary_numbers = rng.sample(range(4000, 4700), k=secondary_count)
        for index, place in enumerate(places):
            is_primary = index < primary_count
            name_template = rng.choice(_PRIMARY_NAMES if is_primary else _SECONDARY_NAMES)
            schools.append(
                School(
                    urn=str(next(urns)),
                    name=name_template.format(place=place),
                    council=council,
                    phase="primary" if is_primary else "secondary",
                    establishment_number=(
                        primary_numbers[index] if is_primary else secondary_numbers[index - primary_count]
                    ),
                )
            )
    return schools


def build_education(rng: random.Random, people: list[Person]) -> EducationTables:
    """Schools, and a pupil record with a valid UPN for about 95% of living children in reception-year 13."""
    tables = EducationTables()
    schools = generate_schools(rng)
    tables.schools = [
        {"urn": school.urn, "name": school.name, "la_code": school.council.la_code, "phase": school.phase}
        for school in schools
    ]
    serials: Counter[tuple[int, int, int]] = Counter()
    for person in people:
        year_group = year_group_for(person.date_of_birth)
        in_school_age = year_group in PRIMARY_YEAR_GROUPS or year_group in SECONDARY_YEAR_GROUPS
        if not in_school_age or person.date_of_death is not None or rng.random() >= 0.95:
            continue
        phase = "primary" if year_group in PRIMARY_YEAR_GROUPS else "secondary"
        local = [s for s in schools if s.council is person.council]
        school = rng.choice([s for s in local if s.phase == phase])
        # The UPN was allocated by the primary school the child started at, in their reception year.
        allocating = school if phase == "primary" and rng.random() < 0.8 else None
        allocating = allocating or rng.choice([s for s in local if s.phase == "primary"])
        allocation_year = academic_year_start(REFERENCE_DATE).year - year_group
        key = (person.council.dfe_la_number, allocating.establishment_number, allocation_year)
        serials[key] += 1
        if serials[key] > 999:
            raise ValueError(f"more than 999 UPNs allocated by one school in one year: {key}")
        upn = make_upn(*key, serial=serials[key])
        sen_status = rng.choices(list(_SEN_STATUS_WEIGHTS), weights=list(_SEN_STATUS_WEIGHTS.values()))[0]
        tables.pupils.append(
            {
                "upn": upn,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "date_of_birth": person.date_of_birth,
                "school_urn": school.urn,
                "year_group": year_group,
                "sen_status": sen_status,
                "free_school_meals": rng.random() < (0.38 if sen_status != "none" else 0.23),
            }
        )
        tables.upn_by_nhs_number[person.nhs_number] = upn
    return tables
