"""The synthetic population behind every demo department: people, councils, GP practices, postcodes.

Each ``Person`` is the ground truth of one fictional West Yorkshire resident; the department tables are
views of these people, with the discrepancies real administrative data has.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from faker import Faker

from .identifiers import generate_nhs_numbers

REFERENCE_DATE = date(2026, 11, 1)
"""The "today" of the demo data: ages, open records and recent events are relative to it."""

REFERENCE_INSTANT = datetime(REFERENCE_DATE.year, REFERENCE_DATE.month, REFERENCE_DATE.day, tzinfo=UTC)
"""Midnight UTC at the start of ``REFERENCE_DATE``; every generated timestamp is earlier."""

_POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters never include C, I, K, M, O, V
_PRACTICE_SUFFIXES = ("Medical Centre", "Surgery", "Health Centre", "Medical Practice", "Family Practice")

# Share of the population in each five-year age band (0-4 ... 90-94, then 95-100), after ONS Census 2021.
_AGE_BAND_WEIGHTS = (
    5.4, 5.9, 6.0, 5.7, 6.0, 6.6, 6.9, 6.6, 6.3, 6.3,
    6.9, 6.7, 5.9, 5.0, 4.9, 3.6, 2.4, 1.5, 0.7, 0.25,
)  # fmt: skip


@dataclass(frozen=True)
class Council:
    """A West Yorkshire metropolitan council, with the codes each department uses for it."""

    la_code: str
    name: str
    client_id_prefix: str
    dfe_la_number: int
    practice_code_prefix: str
    trust_codes: tuple[str, ...]
    postcode_districts: tuple[str, ...]
    places: tuple[str, ...]
    population_weight: float
    practice_count: int


COUNCILS = (
    Council(
        la_code="E08000035",
        name="Leeds",
        client_id_prefix="LDS",
        dfe_la_number=383,
        practice_code_prefix="B86",
        trust_codes=("RR8",),
        postcode_districts=(*(f"LS{n}" for n in range(1, 18)), "LS25", "LS26", "LS27", "LS28", "BD11"),
        places=(
            "Armley", "Beeston", "Bramley", "Chapel Allerton", "Crossgates", "Garforth", "Harehills",
            "Headingley", "Holbeck", "Horsforth", "Kirkstall", "Meanwood", "Moortown", "Morley", "Pudsey",
            "Rothwell", "Roundhay", "Seacroft", "Burley", "Hunslet", "Drighlington", "Middleton", "Halton",
        ),
        population_weight=0.50,
        practice_count=18,
    ),
    Council(
        la_code="E08000034",
        name="Kirklees",
        client_id_prefix="KIR",
        dfe_la_number=382,
        practice_code_prefix="B85",
        trust_codes=("RWY", "RXF"),
        postcode_districts=(
            *(f"HD{n}" for n in (1, 2, 3, 4, 5, 7, 8, 9)), *(f"WF{n}" for n in range(12, 18)), "BD19",
        ),
        places=(
            "Huddersfield", "Lindley", "Marsh", "Almondbury", "Honley", "Holmfirth", "Kirkburton",
            "Dewsbury", "Batley", "Mirfield", "Heckmondwike", "Cleckheaton", "Birstall", "Slaithwaite",
            "Marsden",
        ),
        population_weight=0.27,
        practice_count=12,
    ),
    Council(
        la_code="E08000036",
        name="Wakefield",
        client_id_prefix="WAK",
        dfe_la_number=384,
        practice_code_prefix="B87",
        trust_codes=("RXF",),
        postcode_districts=tuple(f"WF{n}" for n in range(1, 12)),
        places=(
            "Wakefield", "Ossett", "Horbury", "Normanton", "Castleford", "Pontefract", "Featherstone",
            "Knottingley", "Hemsworth", "South Elmsall", "Outwood", "Sandal", "Stanley",
        ),
        population_weight=0.23,
        practice_count=10,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Practice:
    """A GP practice: ODS code, name, and the postcode district it serves."""

    code: str
    name: str
    council: Council
    postcode_district: str


@dataclass(frozen=True)
class Person:
    """One fictional resident: the truth that every department's record is derived from."""

    nhs_number: str
    given_name: str
    family_name: str
    sex: str
    date_of_birth: date
    date_of_death: date | None
    council: Council
    practice: Practice
    postcode: str | None

    @property
    def age(self) -> int:
        """Age in whole years on the reference date (or on the date of death)."""
        return age_on(self.date_of_birth, self.date_of_death or REFERENCE_DATE)

    @property
    def last_alive_date(self) -> date:
        """The last date on which this person's records can change: death or the reference date."""
        return self.date_of_death or REFERENCE_DATE


@dataclass(frozen=True)
class Population:
    """The generated people together with the GP practices they register with."""

    people: list[Person]
    practices: list[Practice]


def age_on(date_of_birth: date, on: date) -> int:
    """Age in completed years on the date ``on``."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)


def add_years(start: date, years: int) -> date:
    """``start`` moved by whole years; 29 February becomes 1 March in a non-leap year."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return date(start.year + years, 3, 1)


def random_date(rng: random.Random, first: date, last: date) -> date:
    """A uniformly random date in the closed interval ``first``..``last``."""
    if last < first:
        raise ValueError(f"empty date interval {first}..{last}")
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def random_postcode(rng: random.Random, district: str) -> str:
    """A well-formed postcode in ``district`` (the outward code), e.g. ``LS6 2QB``."""
    unit = "".join(rng.choice(_POSTCODE_UNIT_LETTERS) for _ in range(2))
    return f"{district} {rng.randrange(10)}{unit}"


def generate_practices(rng: random.Random) -> list[Practice]:
    """About forty GP practices spread over the three councils, with ODS-style codes like ``B86001``."""
    practices: list[Practice] = []
    for council in COUNCILS:
        places = rng.sample(council.places, k=min(council.practice_count, len(council.places)))
        for number in range(1, council.practice_count + 1):
            place = places[(number - 1) % len(places)]
            suffix = _PRACTICE_SUFFIXES[number % len(_PRACTICE_SUFFIXES)]
            practices.append(
                Practice(
                    code=f"{council.practice_code_prefix}{number:03d}",
                    name=f"{place} {suffix}",
                    council=council,
                    postcode_district=rng.choice(council.postcode_districts),
                )
            )
    return practices


def _random_age(rng: random.Random) -> int:
    band = rng.choices(range(len(_AGE_BAND_WEIGHTS)), weights=_AGE_BAND_WEIGHTS)[0]
    band_width = 6 if band == len(_AGE_BAND_WEIGHTS) - 1 else 5  # the last band is 95-100
    return band * 5 + rng.randrange(band_width)


def _death_probability(age: int) -> float:
    if age < 50:
        return 0.002
    if age < 70:
        return 0.01
    if age < 85:
        return 0.04
    return 0.12


def _random_name(fake: Faker, sex: str) -> str:
    if sex == "female":
        return str(fake.first_name_female())
    if sex == "male":
        return str(fake.first_name_male())
    return str(fake.first_name())


def generate_population(rng: random.Random, fake: Faker, people: int) -> Population:
    """Generate ``people`` fictional residents of Leeds, Kirklees and Wakefield, and their practices.

    Ages follow the England age structure (0-100), about 1.5% have died in the last three years, and
    each person is registered with a practice in their council and lives in or near its district.
    """
    if people < 1:
        raise ValueError(f"people must be at least 1, got {people}")
    practices = generate_practices(rng)
    practices_by_council = {council.la_code: [p for p in practices if p.council is council] for council in COUNCILS}
    nhs_numbers = generate_nhs_numbers(rng)
    council_weights = [council.population_weight for council in COUNCILS]
    population: list[Person] = []
    for _ in range(people):
        council = rng.choices(COUNCILS, weights=council_weights)[0]
        practice = rng.choice(practices_by_council[council.la_code])
        age = _random_age(rng)
        # 1..364 days before the birthday anniversary keeps the age exactly ``age`` on the reference date.
        date_of_birth = add_years(REFERENCE_DATE, -age) - timedelta(days=1 + rng.randrange(364))
        date_of_death = None
        if rng.random() < _death_probability(age):
            earliest = max(date_of_birth + timedelta(days=1), add_years(REFERENCE_DATE, -3))
            date_of_death = random_date(rng, earliest, REFERENCE_DATE - timedelta(days=1))
        sex = rng.choices(("female", "male", "unknown"), weights=(50.5, 49.3, 0.2))[0]
        district = practice.postcode_district if rng.random() < 0.85 else rng.choice(council.postcode_districts)
        population.append(
            Person(
                nhs_number=next(nhs_numbers),
                given_name=_random_name(fake, sex),
                family_name=str(fake.last_name()),
                sex=sex,
                date_of_birth=date_of_birth,
                date_of_death=date_of_death,
                council=council,
                practice=practice,
                postcode=None if rng.random() < 0.003 else random_postcode(rng, district),
            )
        )
    return Population(people=population, practices=practices)
