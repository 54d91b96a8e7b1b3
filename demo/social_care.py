"""Adult social care tables of three West Yorkshire councils: clients, assessments and services.

Council records are deliberately imperfect against the NHS record: about one in ten lacks a verified
NHS number, some use a nickname or a double-barrelled surname, and some hold another postcode.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from .people import COUNCILS, Person, add_years, random_date, random_postcode

Row = dict[str, Any]

_EARLIEST_REGISTRATION = date(2010, 4, 1)
_PENNY = Decimal("0.01")

NICKNAMES = {
    "Abigail": "Abbie", "Alexander": "Alex", "Andrew": "Andy", "Anthony": "Tony", "Barbara": "Babs",
    "Benjamin": "Ben", "Catherine": "Kate", "Christine": "Chris", "Christopher": "Chris", "Daniel": "Dan",
    "David": "Dave", "Deborah": "Debbie", "Edward": "Ted", "Elizabeth": "Betty", "Geoffrey": "Geoff",
    "Gillian": "Gill", "Jacqueline": "Jackie", "James": "Jim", "Jennifer": "Jenny", "John": "Jack",
    "Jonathan": "Jon", "Joseph": "Joe", "Kathleen": "Kath", "Kenneth": "Ken", "Margaret": "Peggy",
    "Matthew": "Matt", "Michael": "Mick", "Nicholas": "Nick", "Pamela": "Pam", "Patricia": "Pat",
    "Peter": "Pete", "Philip": "Phil", "Raymond": "Ray", "Rebecca": "Becky", "Richard": "Dick",
    "Robert": "Bob", "Samantha": "Sam", "Samuel": "Sam", "Sandra": "Sandy", "Stephanie": "Steph",
    "Stephen": "Steve", "Steven": "Steve", "Susan": "Sue", "Terence": "Terry", "Thomas": "Tom",
    "Timothy": "Tim", "Valerie": "Val", "Victoria": "Vicky", "William": "Bill",
}  # fmt: skip
"""Formal given name -> the familiar form a council might record instead."""

_SUPPORT_REASONS_UNDER_65 = {
    "Learning Disability Support": 35, "Mental Health Support": 30,
    "Physical Support: Personal care support": 15, "Physical Support: Access and mobility only": 5,
    "Social Support: Substance misuse support": 5, "Sensory Support: Support for visual impairment": 3,
    "Sensory Support: Support for hearing impairment": 2, "Support with Memory and Cognition": 2,
    "Social Support: Support for Social Isolation/Other": 3,
}  # fmt: skip
_SUPPORT_REASONS_65_AND_OVER = {
    "Physical Support: Personal care support": 48, "Physical Support: Access and mobility only": 10,
    "Support with Memory and Cognition": 25, "Mental Health Support": 7, "Learning Disability Support": 2,
    "Sensory Support: Support for visual impairment": 4, "Sensory Support: Support for hearing impairment": 2,
    "Social Support: Support for Social Isolation/Other": 2,
}  # fmt: skip
_SERVICE_WEEKLY_COST_RANGES = {
    "home care": (150, 700), "day care": (80, 320), "residential care": (750, 1100),
    "nursing care": (950, 1400), "direct payment": (120, 800), "equipment": (80, 150),
}  # fmt: skip
_ACCOMMODATION_SERVICES = frozenset({"residential care", "nursing care"})
_NEEDS_OUTCOMES = {
    "eligible needs - services arranged": 60, "eligible needs - direct payment": 15,
    "no eligible needs - information and advice": 25,
}  # fmt: skip
_REVIEW_OUTCOMES = {"review - no change": 60, "review - support increased": 25, "review - support reduced": 15}
_CARERS_OUTCOMES = {"carer support plan agreed": 70, "carer given information and advice": 30}


@dataclass
class SocialCareTables:
    """The rows of the social care department, and which client record belongs to which person."""

    clients: list[Row] = field(default_factory=list)
    assessments: list[Row] = field(default_factory=list)
    services: list[Row] = field(default_factory=list)
    client_id_by_nhs_number: dict[str, str] = field(default_factory=dict)
    """The true owner of each client record, including records without an NHS number."""
    weak_match_nhs_numbers: set[str] = field(default_factory=set)
    """People whose client record lacks the NHS number or records the name differently."""
    postcode_mismatch_nhs_numbers: set[str] = field(default_factory=set)
    """People whose client record holds a postcode other than the NHS one."""


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _client_probability(age: int, discharged_to_care_home: bool) -> float:
    """About 8% of adults become clients, far more often when old or discharged to a care home."""
    if discharged_to_care_home:
        return 0.8
    if age < 65:
        return 0.04
    if age < 75:
        return 0.10
    if age < 85:
        return 0.22
    return 0.40


def _recorded_name(rng: random.Random, fake: Faker, person: Person) -> tuple[str, str, bool]:
    """The (given, family) name the council holds, and whether it differs from the NHS record."""
    if rng.random() >= 0.12:
        return person.given_name, person.family_name, False
    nickname = NICKNAMES.get(person.given_name)
    if nickname is not None and rng.random() < 0.7:
        return nickname, person.family_name, True
    other = str(fake.last_name())
    double_barrelled = f"{person.family_name}-{other}" if rng.random() < 0.5 else f"{other}-{person.family_name}"
    return person.given_name, double_barrelled, True


def _money(rng: random.Random, low_pounds: int, high_pounds: int) -> Decimal:
    pennies = rng.randrange(low_pounds * 100, high_pounds * 100 + 1)
    return (Decimal(pennies) / 100).quantize(_PENNY)


def build_social_care(
    rng: random.Random, fake: Faker, people: list[Person], care_home_discharges: dict[str, date]
) -> SocialCareTables:
    """Client records (one per client, held by the council they live in) with assessments and services."""
    tables = SocialCareTables()
    social_workers = {council.la_code: [str(fake.name()) for _ in range(12)] for council in COUNCILS}
    next_serial = {council.la_code: rng.randrange(100, 900) for council in COUNCILS}
    for person in people:
        if person.age < 18:
            continue
        care_home_date = care_home_discharges.get(person.nhs_number)
        if rng.random() >= _client_probability(person.age, care_home_date is not None):
            continue
        council = person.council
        next_serial[council.la_code] += rng.randrange(1, 40)
        client_id = f"{council.client_id_prefix}-{next_serial[council.la_code]:06d}"
        earliest = max(add_years(person.date_of_birth, 18), _EARLIEST_REGISTRATION)
        if care_home_date is not None and care_home_date < earliest:
            care_home_date = None
        if care_home_date is not None:
            registered_on = random_date(rng, max(earliest, care_home_date - timedelta(days=5 * 365)), care_home_date)
        else:
            registered_on = random_date(rng, earliest, max(earliest, person.last_alive_date - timedelta(days=14)))
        given_name, family_name, name_differs = _recorded_name(rng, fake, person)
        postcode = person.postcode
        if postcode is None or care_home_date is not None or rng.random() < 0.08:
            postcode = random_postcode(rng, rng.choice(council.postcode_districts))
        nhs_number = person.nhs_number if rng.random() < 0.9 else None
        reasons = _SUPPORT_REASONS_UNDER_65 if person.age < 65 else _SUPPORT_REASONS_65_AND_OVER
        tables.clients.append(
            {
                "client_id": client_id,
                "la_code": council.la_code,
                "nhs_number": nhs_number,
                "given_name": given_name,
                "family_name": family_name,
                "date_of_birth": person.date_of_birth,
                "postcode": postcode,
                "primary_support_reason": _weighted(rng, reasons),
                "registered_on": registered_on,
            }
        )
        tables.client_id_by_nhs_number[person.nhs_number] = client_id
        if nhs_number is None or name_differs:
            tables.weak_match_nhs_numbers.add(person.nhs_number)
        if postcode != person.postcode:
            tables.postcode_mismatch_nhs_numbers.add(person.nhs_number)
        _add_assessments(rng, person, client_id, registered_on, social_workers[council.la_code], tables)
        _add_services(rng, person, client_id, registered_on, care_home_date, tables)
    return tables


def _add_assessments(
    rng: random.Random,
    person: Person,
    client_id: str,
    registered_on: date,
    social_workers: list[str],
    tables: SocialCareTables,
) -> None:
    """A needs assessment soon after registration, then up to two reviews or carer's assessments."""
    last_day = person.last_alive_date
    started_on = min(registered_on + timedelta(days=rng.randrange(31)), last_day)
    social_worker = rng.choice(social_workers)
    for index in range(rng.choices((1, 2, 3), weights=(45, 35, 20))[0]):
        if index and started_on > last_day:
            break
        assessment_type = "needs" if index == 0 else "carers" if rng.random() < 0.2 else "review"
        outcomes = {"needs": _NEEDS_OUTCOMES, "review": _REVIEW_OUTCOMES, "carers": _CARERS_OUTCOMES}
        completed_on: date | None = started_on + timedelta(days=rng.randrange(7, 91))
        outcome: str | None = _weighted(rng, outcomes[assessment_type])
        if completed_on is not None and completed_on > last_day:
            if person.date_of_death is None:
                completed_on, outcome = None, None  # still in progress on the reference date
            else:
                completed_on, outcome = person.date_of_death, "closed - client died"
        tables.assessments.append(
            {
                "assessment_id": f"{client_id}-A{len(tables.assessments) + 1:06d}",
                "client_id": client_id,
                "assessment_type": assessment_type,
                "started_on": started_on,
                "completed_on": completed_on,
                "outcome": outcome,
                "social_worker": social_worker,
            }
        )
        started_on += timedelta(days=rng.randrange(90, 541))
        if rng.random() < 0.3:  # the case is reallocated to another social worker
            social_worker = rng.choice(social_workers)


def _service_type(rng: random.Random, age: int) -> str:
    if age < 65:
        weights = {"home care": 20, "day care": 30, "direct payment": 30, "equipment": 10, "residential care": 10}
    else:
        weights = {
            "home care": 35, "day care": 12, "direct payment": 10, "equipment": 25,
            "residential care": 10, "nursing care": 8,
        }  # fmt: skip
    return _weighted(rng, weights)


def _add_services(
    rng: random.Random,
    person: Person,
    client_id: str,
    registered_on: date,
    care_home_date: date | None,
    tables: SocialCareTables,
) -> None:
    """0-4 services; a care home placement from the discharge date if the person went to one."""
    last_day = person.last_alive_date
    planned: list[tuple[str, date]] = []
    if care_home_date is not None:
        planned.append(("residential care" if rng.random() < 0.6 else "nursing care", care_home_date))
    for _ in range(rng.choices((0, 1, 2, 3, 4), weights=(15, 35, 25, 15, 10))[0] - len(planned)):
        planned.append((_service_type(rng, person.age), random_date(rng, registered_on, last_day)))
    has_open_placement = False
    for service_type, start_date in sorted(planned, key=lambda item: item[1]):
        is_placement = service_type in _ACCOMMODATION_SERVICES
        stays_open = person.date_of_death is None and rng.random() < 0.55
        if is_placement and has_open_placement:
            stays_open = False
        end_date = (
            None if stays_open else random_date(rng, start_date, min(start_date + timedelta(days=1100), last_day))
        )
        has_open_placement |= is_placement and stays_open
        low, high = _SERVICE_WEEKLY_COST_RANGES[service_type]
        tables.services.append(
            {
                "service_id": f"{client_id}-S{len(tables.services) + 1:06d}",
                "client_id": client_id,
                "service_type": service_type,
                "status": "open" if end_date is None else "closed",
                "start_date": start_date,
                "end_date": end_date,
                "weekly_cost": _money(rng, low, high),
            }
        )
