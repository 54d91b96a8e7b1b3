"""Council housing of the three West Yorkshire councils: properties and the tenancies of social care clients.

The housing department is the demo's database-free one: fedgate reaches it only through its REST API
(:mod:`demo.housing_api`). Its rows are views of the same synthetic people as every other department.
A council's services share one person index, so a tenancy carries the same ``council_person_id`` as the
tenant's adult social care record; this extract holds the tenancies (current and past) of people known
to adult social care, and every property they rent or rented.

* About half of the clients have a tenancy: council and housing association homes mostly, some private
  rented. Wakefield transferred its council homes to a housing association, so its tenancies are
  housing association or private rented.
* Older clients and those with physical support needs more often live in a bungalow and in an adapted
  home (stair lift, level-access shower); a tenancy ends with the tenant's death or a move into a care
  home; some social tenants owe rent.
* Properties carry an Energy Performance Certificate rating, mostly C-E, with few A/B and some F/G
  (worse in private rented and older detached houses), the score within the rating's SAP band, and a
  council tax band (A and B dominate West Yorkshire). Postcodes are in the council's districts; a
  current home is at the postcode the council's social care record holds.
* UPRNs are made up: twelve digits starting ``99`` (UPRNs have no range reserved for testing).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .people import REFERENCE_DATE, Council, Person, add_years, random_date, random_postcode
from .social_care import SocialCareTables

Row = dict[str, Any]

UPRN_PREFIX = "99"
"""Every demo UPRN is twelve digits starting with this (made up: UPRNs have no test range)."""

PROPERTY_TYPES = ("flat", "terraced house", "semi-detached", "detached", "bungalow")
TENURES = ("council", "housing association", "private rented")
EPC_BANDS = {"A": (92, 100), "B": (81, 91), "C": (69, 80), "D": (55, 68), "E": (39, 54), "F": (21, 38), "G": (1, 20)}
"""EPC rating -> the SAP scores it covers."""
COUNCIL_TAX_BANDS = "ABCDEFGH"

_EARLIEST_TENANCY = date(1990, 4, 1)
_EARLIEST_EPC = date(2009, 1, 1)
_PENNY = Decimal("0.01")
_NO_ARREARS = Decimal("0.00")
_ACCOMMODATION_SERVICES = frozenset({"residential care", "nursing care"})

_TENURE_WEIGHTS = {
    "E08000035": {"council": 60, "housing association": 20, "private rented": 20},  # Leeds
    "E08000034": {"council": 55, "housing association": 20, "private rented": 25},  # Kirklees
    "E08000036": {"council": 0, "housing association": 78, "private rented": 22},  # Wakefield (stock transfer)
}  # fmt: skip
_SOCIAL_PROPERTY_WEIGHTS = {"flat": 42, "terraced house": 22, "semi-detached": 20, "detached": 2, "bungalow": 14}
_PRIVATE_PROPERTY_WEIGHTS = {"flat": 35, "terraced house": 40, "semi-detached": 17, "detached": 5, "bungalow": 3}
_COUNCIL_TAX_WEIGHTS = {
    "flat": (70, 22, 6, 2, 0, 0, 0, 0),
    "terraced house": (60, 28, 9, 3, 0, 0, 0, 0),
    "semi-detached": (25, 40, 22, 9, 3, 1, 0, 0),
    "bungalow": (30, 38, 20, 9, 3, 0, 0, 0),
    "detached": (0, 10, 25, 30, 20, 10, 4, 1),
}  # fmt: skip
# Social landlords have improved their stock; private rented homes are older and less efficient.
_SOCIAL_EPC_WEIGHTS = (0.5, 5, 48, 33, 10, 2.7, 0.8)
_PRIVATE_EPC_WEIGHTS = (0.2, 2, 28, 40, 20, 7.5, 2.3)
_STREET_STEMS = (
    "Church", "Station", "Victoria", "Park", "Mill", "Chapel", "Moor", "Green", "Hall", "Manor", "Oak",
    "Beech", "Ash", "Elm", "Cross", "Spring", "Albert", "Wood", "Bank", "Hill",
)  # fmt: skip
_STREET_SUFFIXES = ("Road", "Street", "Lane", "Avenue", "Grove", "Close", "Crescent", "Terrace", "Drive", "Mount")
_BLOCK_SUFFIXES = ("Court", "House", "Heights", "Towers", "Mews")


@dataclass
class HousingTables:
    """The rows of the housing department."""

    properties: list[Row] = field(default_factory=list)
    tenancies: list[Row] = field(default_factory=list)
    uprns: set[str] = field(default_factory=set)
    """UPRNs given out so far."""
    serials: dict[str, int] = field(default_factory=dict)
    """The last tenancy serial number per council."""


@dataclass(frozen=True)
class _Client:
    """What housing needs to know of a social care client."""

    row: Row
    person: Person
    has_equipment: bool
    placement_start: date | None
    """Start of an open residential or nursing placement, if any."""


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _clients(people: list[Person], social_care: SocialCareTables) -> list[_Client]:
    ids = social_care.client_id_by_nhs_number
    person_by_client = {ids[person.nhs_number]: person for person in people if person.nhs_number in ids}
    equipment = {s["client_id"] for s in social_care.services if s["service_type"] == "equipment"}
    placements: dict[str, date] = {}
    for service in social_care.services:
        if service["service_type"] in _ACCOMMODATION_SERVICES and service["end_date"] is None:
            placements[service["client_id"]] = service["start_date"]
    return [
        _Client(
            row, person_by_client[row["client_id"]], row["client_id"] in equipment, placements.get(row["client_id"])
        )
        for row in social_care.clients
    ]


def _tenancy_probability(client: _Client) -> float:
    return 0.55 if client.person.age < 65 else 0.45


def _new_uprn(rng: random.Random, council: Council, tables: HousingTables) -> str:
    while True:
        uprn = f"{UPRN_PREFIX}{council.la_code[-2:]}{rng.randrange(10**8):08d}"
        if uprn not in tables.uprns:
            tables.uprns.add(uprn)
            return uprn


def _address(rng: random.Random, council: Council, property_type: str) -> str:
    stem = rng.choice(council.places if rng.random() < 0.5 else _STREET_STEMS)
    if property_type == "flat":
        return f"Flat {rng.randrange(1, 49)}, {stem} {rng.choice(_BLOCK_SUFFIXES)}"
    return f"{rng.randrange(1, 181)} {stem} {rng.choice(_STREET_SUFFIXES)}"


def _epc(rng: random.Random, tenure: str, property_type: str) -> tuple[str | None, int | None, date | None]:
    """(rating, score, assessed on), or three ``None`` for a property never assessed."""
    if rng.random() >= (0.8 if tenure == "private rented" else 0.92):
        return None, None, None
    weights = _PRIVATE_EPC_WEIGHTS if tenure == "private rented" else _SOCIAL_EPC_WEIGHTS
    index = rng.choices(range(len(EPC_BANDS)), weights=weights)[0]
    if property_type in {"detached", "bungalow"} and rng.random() < 0.3:
        index = min(index + 1, len(EPC_BANDS) - 1)  # more exposed walls and roof
    elif property_type == "flat" and rng.random() < 0.2:
        index = max(index - 1, 0)  # neighbours on most sides
    rating = "ABCDEFG"[index]
    low, high = EPC_BANDS[rating]
    return rating, rng.randint(low, high), random_date(rng, _EARLIEST_EPC, REFERENCE_DATE - timedelta(days=1))


def _add_property(
    rng: random.Random, council: Council, tenure: str, postcode: str, elderly: bool, tables: HousingTables
) -> Row:
    weights: dict[str, float] = dict(
        _PRIVATE_PROPERTY_WEIGHTS if tenure == "private rented" else _SOCIAL_PROPERTY_WEIGHTS
    )
    if elderly:
        weights["bungalow"] *= 3
    property_type = _weighted(rng, weights)
    rating, score, assessed_on = _epc(rng, tenure, property_type)
    band = rng.choices(COUNCIL_TAX_BANDS, weights=_COUNCIL_TAX_WEIGHTS[property_type])[0]
    row: Row = {
        "uprn": _new_uprn(rng, council, tables),
        "address_line": _address(rng, council, property_type),
        "postcode": postcode,
        "la_code": council.la_code,
        "property_type": property_type,
        "epc_rating": rating,
        "epc_score": score,
        "epc_assessed_on": assessed_on,
        "council_tax_band": band,
    }
    tables.properties.append(row)
    return row


def _arrears(rng: random.Random, tenure: str, current: bool) -> Decimal | None:
    """Rent arrears in pounds; ``None`` where the council holds no rent account (private rented)."""
    if tenure == "private rented":
        return None
    if rng.random() >= (0.28 if current else 0.2):
        return _NO_ARREARS
    pennies = round(math.exp(rng.uniform(math.log(500), math.log(300_000))))  # £5 to £3,000, mostly small
    return (Decimal(pennies) / 100).quantize(_PENNY)


def _adaptations(rng: random.Random, client: _Client, property_type: str, tenure: str, current: bool) -> bool:
    """Stair lift, level-access shower...: likelier when old, physically disabled or given equipment."""
    age = client.person.age
    reason = str(client.row["primary_support_reason"])
    chance = 0.05 + (0.2 if age >= 65 else 0) + (0.15 if age >= 80 else 0)
    chance += 0.25 if reason.startswith("Physical Support") else 0.1 if reason.startswith("Sensory Support") else 0
    chance += (0.15 if client.has_equipment else 0) + (0.15 if property_type == "bungalow" else 0)
    if tenure == "private rented":
        chance *= 0.4
    if not current:
        chance *= 0.5
    return rng.random() < min(chance, 0.9)


def _add_tenancy(
    rng: random.Random,
    client: _Client,
    home: Row,
    tenure: str,
    dates: tuple[date, date | None],
    tables: HousingTables,
) -> None:
    council = client.person.council
    if council.la_code not in tables.serials:
        tables.serials[council.la_code] = rng.randrange(100, 900)
    tables.serials[council.la_code] += rng.randrange(1, 25)
    start_date, end_date = dates
    current = end_date is None
    tables.tenancies.append(
        {
            "tenancy_id": f"{council.client_id_prefix}-T{tables.serials[council.la_code]:06d}",
            "council_person_id": client.row["client_id"],
            "uprn": home["uprn"],
            "la_code": council.la_code,
            "tenure": tenure,
            "start_date": start_date,
            "end_date": end_date,
            "rent_arrears": _arrears(rng, tenure, current),
            "has_adaptations": _adaptations(rng, client, home["property_type"], tenure, current),
        }
    )


def _tenancy_dates(rng: random.Random, client: _Client) -> tuple[date, date | None] | None:
    """(start, end) of the client's latest tenancy, or ``None`` if no tenancy fits their life."""
    person = client.person
    earliest = max(add_years(person.date_of_birth, 18), _EARLIEST_TENANCY)
    latest = person.last_alive_date - timedelta(days=30)
    if client.placement_start is not None:
        latest = min(latest, client.placement_start - timedelta(days=30))
    if latest < earliest:
        return None
    start = random_date(rng, earliest, latest)
    end: date | None = None
    if person.date_of_death is not None:
        end = min(person.date_of_death + timedelta(days=rng.randrange(7, 57)), REFERENCE_DATE)
    elif client.placement_start is not None:
        end = min(client.placement_start + timedelta(days=rng.randrange(14, 91)), REFERENCE_DATE)
    elif rng.random() < 0.05 and (REFERENCE_DATE - start).days > 400:
        end = random_date(rng, start + timedelta(days=180), REFERENCE_DATE - timedelta(days=1))  # moved away
    return start, end


def _earlier_home(rng: random.Random, council: Council, tenure: str, moved_out: date, tables: HousingTables) -> Row:
    """The home of an earlier tenancy: sometimes one since re-let to another client, else a new property."""
    if rng.random() < 0.35:
        relet = {
            t["uprn"]
            for t in tables.tenancies
            if t["la_code"] == council.la_code and t["tenure"] == tenure and t["start_date"] > moved_out
        }
        earlier = {t["uprn"] for t in tables.tenancies if t["start_date"] <= moved_out or t["tenure"] != tenure}
        candidates = [p for p in tables.properties if p["uprn"] in relet - earlier]
        if candidates:
            return rng.choice(candidates)
    district = rng.choice(council.postcode_districts)
    return _add_property(rng, council, tenure, random_postcode(rng, district), False, tables)


def build_housing(rng: random.Random, people: list[Person], social_care: SocialCareTables) -> HousingTables:
    """Tenancies for about half of the social care clients (a quarter of them with an earlier tenancy too)."""
    tables = HousingTables()
    for client in _clients(people, social_care):
        if rng.random() >= _tenancy_probability(client):
            continue
        dates = _tenancy_dates(rng, client)
        if dates is None:
            continue
        council = client.person.council
        tenure = _weighted(rng, _TENURE_WEIGHTS[council.la_code])
        start = dates[0]
        earliest = max(add_years(client.person.date_of_birth, 18), _EARLIEST_TENANCY)
        if rng.random() < 0.25 and (start - earliest).days > 2 * 365:
            earlier_start = random_date(rng, earliest, start - timedelta(days=400))
            moved_out = start - timedelta(days=rng.randrange(1, 61))
            earlier_tenure = _weighted(rng, _TENURE_WEIGHTS[council.la_code])
            earlier_home = _earlier_home(rng, council, earlier_tenure, moved_out, tables)
            _add_tenancy(rng, client, earlier_home, earlier_tenure, (earlier_start, moved_out), tables)
        elderly = client.person.age >= 70
        home = _add_property(rng, council, tenure, str(client.row["postcode"]), elderly, tables)
        _add_tenancy(rng, client, home, tenure, dates, tables)
    return tables
