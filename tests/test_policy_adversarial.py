"""Attempts to learn what the policy hides. None may reveal anything, on any engine.

The policy is tests/fixtures/clinic_rules.yaml over the clinic fixture; each attack is run against
SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.principal import Principal
from gateway.service import Gateway
from tests.conftest import run
from tests.fixtures.clinic_data import CASES, PEOPLE

ENGINES = ("sqlite", "postgres", "mariadb", "rest", "graphql")
RAW_NHS = {person["nhs_number"] for person in PEOPLE if person["nhs_number"]}


def who(*scopes: str, **attributes: Any) -> Principal:
    return Principal(subject="attacker", client_id="attacker", scopes=frozenset(scopes), attributes=attributes)


RECEPTION = who("reception", min_visits="2")
AUDIT = who("audit", people=["p02", "p05"])
LINKAGE = who("linkage")


async def _data(gateway: Gateway, query: str, principal: Principal, variables: dict[str, Any] | None = None) -> Any:
    response = await run(gateway, query, variables, principal)
    assert response.errors == [], response.errors
    return response.data


@pytest.mark.parametrize("engine", ENGINES)
async def test_guessing_a_masked_value_by_filtering_finds_only_the_mask(
    policy_gateways: dict[str, Gateway], engine: str
) -> None:
    gateway = policy_gateways[engine]
    # The raw NHS numbers all start with 999; the masked ones with ****.
    for pattern in ("9%", "99%", "999%", "%999%", "_9%"):
        data = await _data(
            gateway, f'{{ clinic {{ people(where: {{nhsNumber: {{like: "{pattern}"}}}}) {{ personId }} }} }}', RECEPTION
        )
        assert data == {"clinic": {"people": []}}, pattern
    exact = await _data(
        gateway, '{ clinic { people(where: {nhsNumber: {eq: "9990000005"}}) { personId } } }', RECEPTION
    )
    assert exact == {"clinic": {"people": []}}
    # A redacted name cannot be guessed character by character either.
    for pattern in ("b%", "bo%", "bob"):
        data = await _data(
            gateway, f'{{ clinic {{ people(where: {{givenName: {{like: "{pattern}"}}}}) {{ personId }} }} }}', AUDIT
        )
        assert data == {"clinic": {"people": []}}, pattern


@pytest.mark.parametrize("engine", ENGINES)
async def test_range_probes_see_the_mask_not_the_value(policy_gateways: dict[str, Gateway], engine: str) -> None:
    gateway = policy_gateways[engine]
    # Everyone's masked NHS number begins with '*', which sorts before every digit.
    below = await _data(gateway, '{ clinic { people(where: {nhsNumber: {lt: "0"}}) { personId } } }', RECEPTION)
    above = await _data(gateway, '{ clinic { people(where: {nhsNumber: {gte: "0"}}) { personId } } }', RECEPTION)
    assert above == {"clinic": {"people": []}}
    assert len(below["clinic"]["people"]) == 7  # every visible row, whatever its stored number
    # Year-only dates: a probe for the exact birthday finds nothing; the year's first day finds the year.
    exact = await _data(gateway, '{ clinic { people(where: {born: {eq: "1980-01-02"}}) { personId } } }', RECEPTION)
    year = await _data(gateway, '{ clinic { people(where: {born: {eq: "1980-01-01"}}) { personId } } }', RECEPTION)
    assert exact == {"clinic": {"people": []}}
    assert {p["personId"] for p in year["clinic"]["people"]} == {"p01"}


@pytest.mark.parametrize("engine", ENGINES)
async def test_sorting_and_pages_use_masked_values_and_visible_rows_only(
    policy_gateways: dict[str, Gateway], engine: str
) -> None:
    gateway = policy_gateways[engine]
    data = await _data(gateway, "{ clinic { people(orderBy: [{nhsNumber: DESC}]) { personId nhsNumber } } }", RECEPTION)
    rows = data["clinic"]["people"]
    masked = [row["nhsNumber"] for row in rows]
    assert masked == sorted(masked, key=lambda value: (value is not None, value), reverse=True)
    assert not set(masked) & RAW_NHS
    visible = len(rows)
    beyond = await _data(gateway, f"{{ clinic {{ people(offset: {visible}) {{ personId }} }} }}", RECEPTION)
    assert beyond == {"clinic": {"people": []}}  # no page reaches the rows the filter hides


@pytest.mark.parametrize("engine", ENGINES)
async def test_aliases_fragments_and_variables_change_nothing(policy_gateways: dict[str, Gateway], engine: str) -> None:
    gateway = policy_gateways[engine]
    query = """
    query($n: String, $id: String!) {
      clinic {
        raw: person(personId: $id) { ...Secret number: nhsNumber }
        probe: people(where: {nhsNumber: {eq: $n}}) { personId }
      }
    }
    fragment Secret on ClinicPerson { ... on ClinicPerson { nhsNumber } }
    """
    data = await _data(gateway, query, RECEPTION, {"n": "9990000001", "id": "p01"})
    assert data["clinic"]["raw"] == {"nhsNumber": "****0001", "number": "****0001"}
    assert data["clinic"]["probe"] == []
    hidden = await _data(gateway, query, RECEPTION, {"n": "9990000002", "id": "p02"})
    assert hidden["clinic"]["raw"] is None  # p02 is filtered out: the look-up finds nothing


@pytest.mark.parametrize("engine", ENGINES)
async def test_relationships_never_reach_filtered_rows(policy_gateways: dict[str, Gateway], engine: str) -> None:
    gateway = policy_gateways[engine]
    data = await _data(
        gateway, "{ clinic { people { personId cases { caseId status } } } council { cases { caseId } } }", LINKAGE
    )
    reached = {case["caseId"] for person in data["clinic"]["people"] for case in person["cases"] or []}
    listed = {case["caseId"] for case in data["council"]["cases"]}
    open_cases = {case["case_id"] for case in CASES if case["status"] == "open"}
    assert reached <= open_cases
    assert listed == open_cases
    assert "c2" not in reached | listed  # p01's closed case: filtered, by any route


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_null_mask_hides_even_whether_a_value_exists(policy_gateways: dict[str, Gateway], engine: str) -> None:
    gateway = policy_gateways[engine]
    present = await _data(gateway, "{ clinic { people(where: {givenName: {isNull: false}}) { personId } } }", LINKAGE)
    absent = await _data(gateway, "{ clinic { people(where: {givenName: {isNull: true}}) { personId } } }", LINKAGE)
    assert present == {"clinic": {"people": []}}
    assert len(absent["clinic"]["people"]) == len(PEOPLE)


@pytest.mark.parametrize("engine", ENGINES)
async def test_errors_do_not_depend_on_hidden_data(policy_gateways: dict[str, Gateway], engine: str) -> None:
    """A bad value fails before any department is asked: the same error, whoever asks and whatever exists."""
    gateway = policy_gateways[engine]
    answers = []
    for principal in (RECEPTION, AUDIT, LINKAGE):
        response = await run(
            gateway, "{ clinic { people(where: {personId: {eq: 1.5}}) { personId } } }", None, principal
        )
        answers.append((response.errors, response.data, response.statements))
    assert answers[0] == answers[1] == answers[2]
    errors, data, statements = answers[0]
    assert data is None
    assert statements == {}
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_hidden_column_cannot_be_filtered_sorted_or_selected(policy_gateways: dict[str, Gateway]) -> None:
    gateway = policy_gateways["sqlite"]
    for query in (
        "{ clinic { people { personId active } } }",
        "{ clinic { people(where: {active: {eq: true}}) { personId } } }",
        "{ clinic { people(orderBy: [{postcode: ASC}]) { personId } } }",
    ):
        response = await run(gateway, query, None, RECEPTION)
        assert response.data is None, query
        assert response.statements == {}
        assert response.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
