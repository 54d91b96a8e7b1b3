"""DWP tables of the demo federation: customers (by National Insurance number) and benefit claims."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .identifiers import generate_ninos
from .people import Person, add_years, random_date, random_postcode

Row = dict[str, Any]

STATE_PENSION_AGE = 66
_PENNY = Decimal("0.01")


@dataclass(frozen=True)
class _Benefit:
    """When a benefit can be awarded, and how likely a person of the right age is to claim it."""

    name: str
    introduced: date
    min_age: int
    max_age: int  # the award must start before this age
    working_age_chance: float
    pension_age_chance: float
    closed_share: float


_BENEFITS = (
    _Benefit("Universal Credit", date(2013, 4, 29), 18, STATE_PENSION_AGE, 0.18, 0.0, 0.2),
    _Benefit("PIP", date(2013, 4, 8), 16, STATE_PENSION_AGE, 0.07, 0.05, 0.15),
    _Benefit("ESA", date(2008, 10, 27), 18, STATE_PENSION_AGE, 0.04, 0.0, 0.7),
    _Benefit("Carer's Allowance", date(2000, 4, 1), 16, 120, 0.03, 0.02, 0.25),
    _Benefit("Pension Credit", date(2003, 10, 6), STATE_PENSION_AGE, 120, 0.0, 0.12, 0.1),
    _Benefit("Attendance Allowance", date(1992, 4, 6), STATE_PENSION_AGE, 120, 0.0, 0.12, 0.1),
)

# 2025/26 weekly rates (pounds) for benefits paid at fixed rates.
_PIP_DAILY_LIVING_RATES = ("0", "73.90", "110.40")
_PIP_MOBILITY_RATES = ("0", "29.20", "77.05")
_FIXED_RATES = {
    "ESA": ("92.05", "138.20"),
    "Carer's Allowance": ("83.30",),
    "Attendance Allowance": ("73.90", "110.40"),
}


@dataclass
class DwpTables:
    """The rows of the DWP department, and each customer's true owner."""

    customers: list[Row] = field(default_factory=list)
    benefit_claims: list[Row] = field(default_factory=list)
    nino_by_nhs_number: dict[str, str] = field(default_factory=dict)
    postcode_mismatch_nhs_numbers: set[str] = field(default_factory=set)
    """People whose DWP postcode differs from their NHS postcode."""


def _random_money(rng: random.Random, low_pounds: int, high_pounds: int) -> Decimal:
    return (Decimal(rng.randrange(low_pounds * 100, high_pounds * 100 + 1)) / 100).quantize(_PENNY)


def _weekly_amount(rng: random.Random, benefit: str) -> Decimal:
    """A realistic weekly award for ``benefit``, to the penny."""
    if benefit == "PIP":
        daily_living, mobility = "0", "0"
        while daily_living == mobility == "0":
            daily_living = rng.choice(_PIP_DAILY_LIVING_RATES)
            mobility = rng.choice(_PIP_MOBILITY_RATES)
        return (Decimal(daily_living) + Decimal(mobility)).quantize(_PENNY)
    if benefit in _FIXED_RATES:
        return Decimal(rng.choice(_FIXED_RATES[benefit])).quantize(_PENNY)
    if benefit == "Universal Credit":
        return _random_money(rng, 60, 320)
    return _random_money(rng, 5, 120)  # Pension Credit tops up income to the guarantee


def build_dwp(rng: random.Random, people: list[Person]) -> DwpTables:
    """Customers for about 85% of people aged 16+, each with 0-3 claims suited to their age."""
    tables = DwpTables()
    ninos = generate_ninos(rng)
    for person in people:
        if person.age < 16 or rng.random() >= 0.85:
            continue
        nino = next(ninos)
        postcode = person.postcode
        if postcode is None or rng.random() < 0.05:
            postcode = random_postcode(rng, rng.choice(person.council.postcode_districts))
            tables.postcode_mismatch_nhs_numbers.add(person.nhs_number)
        tables.customers.append(
            {
                "nino": nino,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "date_of_birth": person.date_of_birth,
                "postcode": postcode,
            }
        )
        tables.nino_by_nhs_number[person.nhs_number] = nino
        _add_claims(rng, person, nino, tables.benefit_claims)
    return tables


def _add_claims(rng: random.Random, person: Person, nino: str, rows: list[Row]) -> None:
    pension_age = person.age >= STATE_PENSION_AGE
    attendance_boost = 2.0 if person.age >= 80 else 1.0
    claimed = 0
    for benefit in _BENEFITS:
        chance = benefit.pension_age_chance if pension_age else benefit.working_age_chance
        if benefit.name == "Attendance Allowance":
            chance *= attendance_boost
        if claimed == 3 or rng.random() >= chance:
            continue
        earliest = max(benefit.introduced, add_years(person.date_of_birth, benefit.min_age))
        latest = min(
            add_years(person.date_of_birth, benefit.max_age) - timedelta(days=1),
            person.last_alive_date - timedelta(days=1),
        )
        if latest < earliest:
            continue
        start_date = random_date(rng, max(earliest, latest - timedelta(days=12 * 365)), latest)
        end_date: date | None = None
        status = "open"
        if person.date_of_death is not None or rng.random() < benefit.closed_share:
            status = "closed"
            end_date = random_date(rng, start_date, person.last_alive_date)
        elif rng.random() < 0.04:
            status = "suspended"
        claimed += 1
        rows.append(
            {
                "claim_id": f"CLM{len(rows) + 1:07d}",
                "nino": nino,
                "benefit_type": benefit.name,
                "status": status,
                "start_date": start_date,
                "end_date": end_date,
                "weekly_amount": _weekly_amount(rng, benefit.name),
            }
        )
