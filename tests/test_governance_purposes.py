"""Purpose of use: where it comes from, how it is checked, and what a caller is told, over HTTP with real tokens.

The vocabulary is the default (safeguarding needs a justification); the policy (tests/support/governance.py)
lets the care team state direct_care or safeguarding, analysts planning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import (
    BadRequestError,
    FedgateError,
    JustificationRequiredError,
    PurposeNotPermittedError,
    PurposeRequiredError,
    PurposeUnknownError,
)
from gateway.policy.purposes import Purpose, PurposeClaim, PurposeSettings, resolve_purpose
from schema.catalog import Catalog
from tests.support.governance import GovernedDeployment, governed_deployment

PERMITTED = frozenset({"direct_care", "safeguarding"})
WITH_HEADER = PurposeSettings(header=True)

RESOLVED: list[tuple[str, PurposeSettings, tuple[str, str | None] | None, dict[str, str], Purpose]] = [
    ("from the header", WITH_HEADER, None, {"fedgate-purpose": "direct_care"}, Purpose("direct_care", "header")),
    ("with its justification", WITH_HEADER, None,
     {"fedgate-purpose": "safeguarding", "fedgate-justification": " Referral 12 "},
     Purpose("safeguarding", "header", "Referral 12")),
    ("from the token", WITH_HEADER, ("direct_care", None), {}, Purpose("direct_care", "token")),
    ("the header's purpose ignored when the token binds one", WITH_HEADER, ("direct_care", None),
     {"fedgate-purpose": "safeguarding", "fedgate-justification": "x"}, Purpose("direct_care", "token", "x")),
    ("the token's, justified by the header", WITH_HEADER, ("safeguarding", None),
     {"fedgate-justification": "Referral 3"}, Purpose("safeguarding", "token", "Referral 3")),
    ("the token's own justification", PurposeSettings(), ("safeguarding", "Referral 4"), {},
     Purpose("safeguarding", "token", "Referral 4")),
    # Header values as the server hands them over: each byte as the Latin-1 character of that number.
    ("a justification sent in UTF-8", WITH_HEADER, None,
     {"fedgate-purpose": "safeguarding",
      "fedgate-justification": "Referral for Siân 🙂".encode().decode("latin-1")},
     Purpose("safeguarding", "header", "Referral for Siân 🙂")),
    ("a justification sent in Latin-1 (its â one byte, 0xE2, not UTF-8)", WITH_HEADER, None,
     {"fedgate-purpose": "safeguarding", "fedgate-justification": "Referral for Siân"},
     Purpose("safeguarding", "header", "Referral for Siân")),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "bound", "headers", "expected"), [r[1:] for r in RESOLVED],
                         ids=[r[0] for r in RESOLVED])  # fmt: skip
def test_where_the_purpose_comes_from(
    settings: PurposeSettings, bound: tuple[str, str | None] | None, headers: dict[str, str], expected: Purpose
) -> None:
    resolved = resolve_purpose(settings, bound, headers, PERMITTED)
    assert resolved == expected
    assert resolved is not None and resolved.justification == expected.justification


REFUSED: list[tuple[str, PurposeSettings, tuple[str, str | None] | None, dict[str, str], type[FedgateError], str]] = [
    ("none stated", WITH_HEADER, None, {}, PurposeRequiredError, "your scopes permit direct_care, safeguarding"),
    ("headers not accepted here", PurposeSettings(), None, {"fedgate-purpose": "direct_care"}, PurposeRequiredError,
     "a purpose in the token"),
    ("unknown", WITH_HEADER, None, {"fedgate-purpose": "marketing"}, PurposeUnknownError, "purposes are: audit,"),
    ("unknown in the token", WITH_HEADER, ("marketing", None), {}, PurposeUnknownError, "purposes are:"),
    ("not permitted", WITH_HEADER, None, {"fedgate-purpose": "research"}, PurposeNotPermittedError,
     "they permit: direct_care, safeguarding"),
    ("no justification", WITH_HEADER, None, {"fedgate-purpose": "safeguarding"}, JustificationRequiredError,
     "needs a justification"),
    ("a blank justification", WITH_HEADER, None, {"fedgate-purpose": "safeguarding", "fedgate-justification": "  "},
     JustificationRequiredError, "needs a justification"),
    ("two purposes", WITH_HEADER, None, {"fedgate-purpose": "direct_care, safeguarding"}, BadRequestError,
     "exactly one purpose"),
    ("a justification alone", WITH_HEADER, None, {"fedgate-justification": "why"}, BadRequestError,
     "needs fedgate-purpose beside it"),
    ("a justification too long", WITH_HEADER, None,
     {"fedgate-purpose": "safeguarding", "fedgate-justification": "x" * 501}, BadRequestError, "at most 500"),
    ("a header far too long", WITH_HEADER, None, {"fedgate-purpose": "x" * 5000}, BadRequestError, "longer than"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "bound", "headers", "error", "phrase"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])  # fmt: skip
def test_refusals_name_what_would_work(
    settings: PurposeSettings,
    bound: tuple[str, str | None] | None,
    headers: dict[str, str],
    error: type[FedgateError],
    phrase: str,
) -> None:
    with pytest.raises(error) as refused:
        resolve_purpose(settings, bound, headers, PERMITTED)
    assert type(refused.value) is error
    assert phrase in refused.value.message
    assert "x" * 100 not in refused.value.message  # a justification is never echoed


def test_no_purpose_where_none_is_required_is_no_purpose() -> None:
    assert resolve_purpose(PurposeSettings(required=False), None, {}, PERMITTED) is None


CLAIMS: list[tuple[str, PurposeClaim, dict[str, Any], tuple[str, str | None] | None]] = [
    ("a string claim", PurposeClaim(), {"purpose_of_use": "research"}, ("research", None)),
    ("mapped codes", PurposeClaim(codes={"CARE": "direct_care"}), {"purpose_of_use": "CARE"}, ("direct_care", None)),
    ("no claim", PurposeClaim(), {"sub": "x"}, None),
    ("a claim of the wrong type", PurposeClaim(), {"purpose_of_use": ["research"]}, ("", None)),
    ("with a justification", PurposeClaim(justification_claim="why"), {"purpose_of_use": "fraud", "why": "FR-1"},
     ("fraud", "FR-1")),
    ("IHE IUA", PurposeClaim(shape="ihe_iua"),
     {"extensions": {"ihe_iua": {"purpose_of_use": {"system": "2.16.840.1.113883.5.8", "code": "TREAT"}}}},
     ("direct_care", None)),
    ("IHE IUA as a list of one", PurposeClaim(shape="ihe_iua"),
     {"extensions": {"ihe_iua": {"purpose_of_use": [{"code": "HRESCH"}]}}}, ("research", None)),
    ("IHE IUA, an unmapped code", PurposeClaim(shape="ihe_iua"),
     {"extensions": {"ihe_iua": {"purpose_of_use": {"code": "MARKETING"}}}}, ("", None)),
    ("IHE IUA, codes of its own", PurposeClaim(shape="ihe_iua", codes={"PUBHLTH": "planning"}),
     {"extensions": {"ihe_iua": {"purpose_of_use": {"code": "PUBHLTH"}}}}, ("planning", None)),
    ("IHE IUA, none", PurposeClaim(shape="ihe_iua"), {"extensions": {"ihe_iua": {}}}, None),
]  # fmt: skip


@pytest.mark.parametrize(("claim", "claims", "expected"), [c[1:] for c in CLAIMS], ids=[c[0] for c in CLAIMS])
def test_a_purpose_bound_by_the_token(
    claim: PurposeClaim, claims: dict[str, Any], expected: tuple[str, str | None] | None
) -> None:
    assert claim.read(claims) == expected


# --- over HTTP, with tokens from the dev issuer ------------------------------------------------------------


@pytest.fixture
async def deployment(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[GovernedDeployment]:
    async with governed_deployment(tmp_path, sqlite_clinic) as deployed:
        yield deployed


QUERY = '{ clinic { person(personId: "p01") { personId givenName } } }'

OVER_HTTP: list[tuple[str, str, dict[str, str], int, str]] = [
    ("no purpose", "council-care", {}, 403, "PURPOSE_REQUIRED"),
    ("unknown", "council-care", {"fedgate_purpose": "marketing"}, 403, "PURPOSE_UNKNOWN"),
    ("not permitted", "council-care", {"fedgate_purpose": "planning"}, 403, "PURPOSE_NOT_PERMITTED"),
    ("no justification", "council-care", {"fedgate_purpose": "safeguarding"}, 403, "JUSTIFICATION_REQUIRED"),
    ("malformed", "council-care", {"fedgate_purpose": "direct_care planning"}, 400, "BAD_REQUEST"),
    ("no agreement for the organisation", "clinic-analyst", {"fedgate_purpose": "planning"}, 403, "NO_AGREEMENT"),
]


@pytest.mark.parametrize(("client", "headers", "status", "code"), [c[1:] for c in OVER_HTTP],
                         ids=[c[0] for c in OVER_HTTP])  # fmt: skip
async def test_refused_before_any_source_is_asked(
    deployment: GovernedDeployment, client: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = await deployment.query(QUERY, client, **headers)
    assert response.status_code == status
    body = response.json()
    assert [error["extensions"]["code"] for error in body["errors"]] == [code]
    assert "data" not in body


async def test_a_purpose_from_the_header_and_one_bound_by_the_token(deployment: GovernedDeployment) -> None:
    stated = await deployment.query(QUERY, "council-care", fedgate_purpose="direct_care")
    bound = await deployment.query(QUERY, "council-bound", fedgate_purpose="safeguarding")  # ignored: bound
    for response, source in ((stated, "header"), (bound, "token")):
        assert response.status_code == 200
        body = response.json()
        assert body["data"] == {"clinic": {"person": {"personId": "p01", "givenName": "alice"}}}
        assert body["extensions"]["purpose"] == {"name": "direct_care", "source": source}
        assert body["extensions"]["agreements"] == [
            {"id": "ISA-CARE", "version": 3, "retention": "Keep in the care record for 8 years."}
        ]


async def test_the_schema_a_caller_sees_is_shaped_by_the_purpose(deployment: GovernedDeployment) -> None:
    """GraphiQL's docs show what this request may read: the council's cases only for safeguarding."""
    query = '{ __type(name: "CouncilQuery") { fields { name } } }'
    care = await deployment.query(query, "council-care", fedgate_purpose="direct_care")
    safeguarding = await deployment.query(
        query, "council-care", fedgate_purpose="safeguarding", fedgate_justification="Referral 9"
    )
    assert care.json()["data"] == {"__type": None}
    assert safeguarding.json()["data"] == {"__type": {"fields": [{"name": "cases"}, {"name": "case"}]}}
