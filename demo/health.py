"""NHS tables of the demo federation: patients, GP registrations and hospital spells."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .people import REFERENCE_INSTANT, Person, Population, age_on, random_date

Row = dict[str, Any]

_HOSPITAL_DATA_START = datetime(2020, 4, 1, tzinfo=UTC)
_EARLIEST_GP_RECORD = date(1990, 1, 1)
_SECONDS_PER_DAY = 86_400
_RECENT_WINDOW = timedelta(days=30)
_WEST_YORKSHIRE_TRUSTS = ("RR8", "RXF", "RWY", "RAE")  # Leeds, Mid Yorkshire, Calderdale & Huddersfield, Bradford
_EMERGENCY_ADULT_SPECIALTIES = (
    "General medicine", "Cardiology", "Respiratory medicine", "General surgery",
    "Trauma and orthopaedics", "Gastroenterology",
)  # fmt: skip
_ELECTIVE_ADULT_SPECIALTIES = (
    "General surgery", "Trauma and orthopaedics", "Ophthalmology", "Urology", "Gastroenterology",
    "Ear, nose and throat", "Clinical oncology",
)  # fmt: skip
_CHILD_SPECIALTIES = ("Paediatrics", "Paediatrics", "Paediatrics", "Trauma and orthopaedics", "Ear, nose and throat")


@dataclass
class HealthTables:
    """The rows of the health department, plus facts other departments draw on."""

    patients: list[Row] = field(default_factory=list)
    gp_registrations: list[Row] = field(default_factory=list)
    hospital_spells: list[Row] = field(default_factory=list)
    care_home_discharges: dict[str, date] = field(default_factory=dict)
    """NHS number -> date of the most recent discharge to a care home."""


def build_health(rng: random.Random, population: Population) -> HealthTables:
    """Build the patient, GP registration and hospital spell rows for every person."""
    tables = HealthTables()
    for person in population.people:
        tables.patients.append(
            {
                "nhs_number": person.nhs_number,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "date_of_birth": person.date_of_birth,
                "sex": person.sex,
                "postcode": person.postcode,
                "gp_practice_code": person.practice.code,
                "date_of_death": person.date_of_death,
            }
        )
        _add_gp_registrations(rng, person, population, tables.gp_registrations)
        if rng.random() < _spell_probability(person.age):
            _add_hospital_spells(rng, person, tables)
    return tables


def _add_gp_registrations(rng: random.Random, person: Person, population: Population, rows: list[Row]) -> None:
    """A registration history ending with the person's current practice (closed at death, if any)."""
    last_day = person.last_alive_date
    if person.date_of_birth >= _EARLIEST_GP_RECORD:
        first_from = person.date_of_birth + timedelta(days=rng.randrange(7, 61))
    else:
        first_from = random_date(rng, _EARLIEST_GP_RECORD, date(2005, 1, 1))
    first_from = max(person.date_of_birth, min(first_from, last_day))
    span_days = (last_day - first_from).days
    past_count = rng.choices((0, 1, 2, 3), weights=(60, 25, 10, 5))[0]
    past_count = min(past_count, span_days)
    change_offsets = sorted(rng.sample(range(1, span_days + 1), k=past_count)) if past_count else []
    starts = [first_from, *(first_from + timedelta(days=offset) for offset in change_offsets)]
    practices = [person.practice]
    for _ in range(past_count):
        nearby = [p for p in population.practices if p.council is person.council and p is not practices[0]]
        candidates = nearby if rng.random() < 0.7 else [p for p in population.practices if p is not practices[0]]
        practices.insert(0, rng.choice(candidates))
    for index, (start, practice) in enumerate(zip(starts, practices, strict=True)):
        is_current = index == len(starts) - 1
        registered_to = starts[index + 1] - timedelta(days=1) if not is_current else person.date_of_death
        rows.append(
            {
                "registration_id": len(rows) + 1,
                "nhs_number": person.nhs_number,
                "practice_code": practice.code,
                "practice_name": practice.name,
                "registered_from": start,
                "registered_to": registered_to,
            }
        )


def _spell_probability(age: int) -> float:
    """Chance that a person has any hospital spell in the data; about one in three overall."""
    if age < 16:
        return 0.2
    if age < 50:
        return 0.25
    if age < 70:
        return 0.4
    return 0.6


def _instant(rng: random.Random, first: datetime, last: datetime) -> datetime:
    """A random whole-second instant in ``first``..``last`` (UTC)."""
    seconds = int((last - first).total_seconds())
    return first + timedelta(seconds=rng.randrange(max(seconds, 1)))


def _admission_method(rng: random.Random, person: Person, age: int) -> str:
    if person.sex == "female" and 16 <= age <= 45 and rng.random() < 0.3:
        return "maternity"
    emergency_share = 0.35 + 0.45 * min(age, 90) / 90  # 35% for children, about 80% at 90+
    return "emergency" if rng.random() < emergency_share else "elective"


def _specialty(rng: random.Random, method: str, age: int, sex: str) -> str:
    if method == "maternity":
        return "Obstetrics"
    if age < 16:
        return rng.choice(_CHILD_SPECIALTIES)
    if method == "emergency":
        if age >= 75 and rng.random() < 0.4:
            return "Geriatric medicine"
        return rng.choice(_EMERGENCY_ADULT_SPECIALTIES)
    if sex == "female" and rng.random() < 0.15:
        return "Gynaecology"
    return rng.choice(_ELECTIVE_ADULT_SPECIALTIES)


def _length_of_stay(rng: random.Random, method: str, age: int) -> timedelta:
    hour = 3600
    if method == "maternity":
        return timedelta(seconds=rng.randrange(6 * hour, 4 * _SECONDS_PER_DAY))
    if method == "elective" and rng.random() < 0.6:
        return timedelta(seconds=rng.randrange(2 * hour, 10 * hour))  # day case
    mean_days = 2.0 + age / 12 if method == "emergency" else 2.5
    return timedelta(seconds=int(hour + rng.expovariate(1 / mean_days) * _SECONDS_PER_DAY))


def _discharge_destination(rng: random.Random, age: int) -> str:
    care_home_share = 0.10 if age >= 80 else 0.04 if age >= 65 else 0.005 if age >= 18 else 0.0
    roll = rng.random()
    if roll < care_home_share:
        return "care home"
    if roll < care_home_share + 0.04:
        return "other hospital"
    return "usual residence"


def _add_hospital_spells(rng: random.Random, person: Person, tables: HealthTables) -> None:
    """1-6 non-overlapping spells since April 2020; a few recent or ongoing; death in hospital if fated."""
    age = person.age
    born = datetime.combine(person.date_of_birth, time(), UTC)
    window_start = max(_HOSPITAL_DATA_START, born)
    death = None
    if person.date_of_death is not None:
        death = datetime.combine(person.date_of_death, time(), UTC) + timedelta(seconds=rng.randrange(_SECONDS_PER_DAY))
    dies_in_hospital = death is not None and rng.random() < 0.5
    window_end = death or REFERENCE_INSTANT
    if dies_in_hospital and death is not None:
        window_end = death - timedelta(days=30)
    count_weights = (30, 25, 18, 12, 9, 6) if age >= 70 else (50, 25, 12, 7, 4, 2)
    count = rng.choices(range(1, 7), weights=count_weights)[0] - (1 if dies_in_hospital else 0)
    admissions = sorted(_instant(rng, window_start, window_end) for _ in range(count) if window_end > window_start)
    if admissions and death is None and rng.random() < 0.05:
        admissions[-1] = _instant(rng, REFERENCE_INSTANT - _RECENT_WINDOW, REFERENCE_INSTANT)
        admissions.sort()
    spells: list[tuple[datetime, datetime | None, str, str | None]] = []
    previous_discharge = window_start
    for drawn in admissions:
        admitted = max(drawn, previous_discharge + timedelta(hours=rng.randrange(2, 72)))
        if admitted >= window_end:
            break
        age_then = age_on(person.date_of_birth, admitted.date())
        method = _admission_method(rng, person, age_then)
        discharged: datetime | None = admitted + _length_of_stay(rng, method, age_then)
        destination: str | None = _discharge_destination(rng, age_then)
        if discharged is not None and discharged >= window_end:
            if death is not None:
                break  # the spell would run past death: leave it out
            discharged, destination = None, None  # still in hospital on the reference date
        spells.append((admitted, discharged, method, destination))
        if discharged is None:
            break
        previous_discharge = discharged
    if dies_in_hospital and death is not None:
        admitted = max(death - _length_of_stay(rng, "emergency", age), born, previous_discharge + timedelta(hours=2))
        spells.append((min(admitted, death), death, "emergency", "died"))
    for admitted, discharged, method, destination in spells:
        age_then = age_on(person.date_of_birth, admitted.date())
        local_trust = rng.choice(person.council.trust_codes)
        provider = local_trust if rng.random() < 0.85 else rng.choice(_WEST_YORKSHIRE_TRUSTS)
        tables.hospital_spells.append(
            {
                "spell_id": f"{provider}-{admitted:%Y}-{len(tables.hospital_spells) + 1:06d}",
                "nhs_number": person.nhs_number,
                "provider_code": provider,
                "admitted_at": admitted,
                "discharged_at": discharged,
                "admission_method": method,
                "specialty": _specialty(rng, method, age_then, person.sex),
                "discharge_destination": destination,
            }
        )
        if destination == "care home" and discharged is not None:
            tables.care_home_discharges[person.nhs_number] = discharged.date()
