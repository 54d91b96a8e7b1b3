"""Purpose of use: why a request is made. Every request carries one, and access depends on it.

The vocabulary is configuration (``purposes.vocabulary``), with a default drawn from UK practice. Each
purpose says whether the caller must add a free-text justification, and whether it counts as direct care
(opt-outs apply only outside direct care).

Where a request's purpose comes from, in order of trust:

1. a claim of the access token, mapped per issuer (``auth.issuers[].claims.purpose``): a plain string
   claim, or the IHE IUA ``extensions.ihe_iua.purpose_of_use`` Coding, mapped through ``codes``;
2. otherwise, where the deployment allows it (``purposes.header: true``), the request header
   ``Fedgate-Purpose`` (and ``Fedgate-Justification``), which may only name a purpose one of the token's
   scopes permits. A purpose bound by the token is never replaced by the header.

A request without one, with one the vocabulary does not know, with one no scope of the caller permits,
or without a justification its purpose requires is refused before any source is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from gateway.errors import (
    BadRequestError,
    JustificationRequiredError,
    PurposeNotPermittedError,
    PurposeRequiredError,
    PurposeUnknownError,
)
from schema.models import StrictModel

#: A purpose's name: lower case, digits and underscores.
PurposeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

PURPOSE_HEADER = "fedgate-purpose"
JUSTIFICATION_HEADER = "fedgate-justification"
#: The longest header value read at all (a longer one is a malformed request, not a long justification).
MAX_HEADER_CHARS = 4096


class PurposeDefinition(StrictModel):
    """One purpose of the vocabulary."""

    name: PurposeName
    description: str = Field(min_length=1, description="What the purpose covers, in plain English.")
    justification_required: bool = Field(False, description="Requests for this purpose must say why.")
    direct_care: bool = Field(False, description="Counts as direct care (opt-outs do not apply).")


DEFAULT_PURPOSES: tuple[PurposeDefinition, ...] = (
    PurposeDefinition(
        name="direct_care",
        description="The care of an individual by the professionals treating or supporting them.",
        direct_care=True,
    ),
    PurposeDefinition(
        name="safeguarding",
        description="Protecting a child or adult at risk of abuse or neglect.",
        justification_required=True,
        direct_care=True,
    ),
    PurposeDefinition(name="planning", description="Planning and commissioning services for a population."),
    PurposeDefinition(name="research", description="Research approved by an ethics committee."),
    PurposeDefinition(
        name="fraud",
        description="Preventing, detecting or investigating fraud against the public sector.",
        justification_required=True,
    ),
    PurposeDefinition(name="debt", description="Managing debt owed to the public sector."),
    PurposeDefinition(
        name="dea_multiple_disadvantages",
        description="Digital Economy Act 2017 s35: supporting people facing multiple disadvantages.",
    ),
    PurposeDefinition(name="dea_fuel_poverty", description="Digital Economy Act 2017 s35: reducing fuel poverty."),
    PurposeDefinition(name="statistics", description="Producing official statistics."),
    PurposeDefinition(
        name="law_enforcement",
        description="Preventing, investigating or prosecuting crime (DPA 2018 Part 3).",
        justification_required=True,
    ),
    PurposeDefinition(
        name="audit",
        description="Checking who saw what and why: information governance and security reviews, and answering a "
        "citizen's request to know who accessed their record.",
        justification_required=True,
    ),
)


class PurposeSettings(StrictModel):
    """The purposes requests may be made for, and how a request states one (the ``purposes`` section)."""

    required: bool = Field(
        True, description="Refuse a request that states no purpose (false: scopes alone decide, as before purposes)."
    )
    vocabulary: list[PurposeDefinition] = Field(
        default_factory=lambda: list(DEFAULT_PURPOSES), min_length=1, description="The purposes known."
    )
    header: bool = Field(
        False,
        description="Accept the Fedgate-Purpose and Fedgate-Justification request headers when the token binds "
        "no purpose (they may name only a purpose the token's scopes permit).",
    )
    max_justification_chars: int = Field(
        500, ge=1, le=4000, description="Longest justification accepted; justifications are never logged."
    )

    @model_validator(mode="after")
    def _unique(self) -> PurposeSettings:
        names = [purpose.name for purpose in self.vocabulary]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"purposes defined more than once: {', '.join(duplicates)}")
        return self

    def definition(self, name: str) -> PurposeDefinition | None:
        return next((purpose for purpose in self.vocabulary if purpose.name == name), None)


#: HL7 PurposeOfUse codes (as IHE IUA tokens carry them) and the default purpose each maps to.
IUA_CODES: Mapping[str, str] = {"TREAT": "direct_care", "ETREAT": "direct_care", "HRESCH": "research",
                                "HOPERAT": "planning"}  # fmt: skip


class PurposeClaim(StrictModel):
    """Where an issuer's tokens bind a purpose (``auth.issuers[].claims.purpose``)."""

    shape: Literal["string", "ihe_iua"] = Field(
        "string",
        description="string: a claim holding the purpose; ihe_iua: the IHE IUA Coding at "
        "extensions.ihe_iua.purpose_of_use (its code mapped through 'codes').",
    )
    claim: str = Field("purpose_of_use", min_length=1, description="The claim holding the purpose (shape string).")
    justification_claim: str | None = Field(None, description="A claim holding the justification, if any.")
    codes: dict[str, PurposeName] = Field(
        default_factory=dict,
        description="Claim value or IUA code → purpose name (default for ihe_iua: TREAT and ETREAT → direct_care, "
        "HRESCH → research, HOPERAT → planning; for string: the value is the purpose's name).",
    )

    def read(self, claims: Mapping[str, Any]) -> tuple[str, str | None] | None:
        """The purpose the claims bind and their justification, ``None`` when they bind no purpose. A purpose
        claim of the wrong shape, or an IUA code with no mapping, reads as ``""``, which no vocabulary knows."""
        if self.shape == "string":
            value = claims.get(self.claim)
            if value is None:
                return None
            purpose = self.codes.get(value, value) if isinstance(value, str) else ""
        else:
            extensions = claims.get("extensions")
            iua = extensions.get("ihe_iua") if isinstance(extensions, Mapping) else None
            coding = iua.get("purpose_of_use") if isinstance(iua, Mapping) else None
            if coding is None:
                return None
            if isinstance(coding, list) and len(coding) == 1:
                coding = coding[0]
            code = coding.get("code") if isinstance(coding, Mapping) else None
            purpose = (self.codes or IUA_CODES).get(code, "") if isinstance(code, str) else ""
        justification = claims.get(self.justification_claim) if self.justification_claim else None
        return purpose, justification if isinstance(justification, str) else None


@dataclass(frozen=True)
class Purpose:
    """The purpose a request is made for, where it came from, and the caller's justification."""

    name: str
    #: ``token`` (bound by the access token's claims) or ``header`` (``Fedgate-Purpose``).
    source: Literal["token", "header"]
    #: Never logged, never in a cache key.
    justification: str | None = field(default=None, repr=False, compare=False)


def resolve_purpose(
    settings: PurposeSettings,
    bound: tuple[str, str | None] | None,
    headers: Mapping[str, str],
    permitted: frozenset[str],
) -> Purpose | None:
    """The purpose of a request, checked: the one the token binds (``bound``), else, where the deployment
    allows it, the one the request headers state. A token's purpose is never replaced by a header; only a
    justification the token does not carry may come from the headers."""
    if bound is not None:
        name, justification = bound
        if justification is None and settings.header:
            justification = _header(headers, JUSTIFICATION_HEADER)
        return check_purpose(settings, (name, justification), "token", permitted)
    stated = header_purpose(headers) if settings.header else None
    return check_purpose(settings, stated, "header", permitted)


def header_purpose(headers: Mapping[str, str]) -> tuple[str, str | None] | None:
    """The purpose and justification the request headers state, ``None`` when they state none; a
    malformed header is a :class:`~gateway.errors.BadRequestError` (HTTP 400)."""
    name = _header(headers, PURPOSE_HEADER)
    justification = _header(headers, JUSTIFICATION_HEADER)
    if name is None:
        if justification is not None:
            raise BadRequestError(f"{JUSTIFICATION_HEADER} needs {PURPOSE_HEADER} beside it")
        return None
    if not name or any(character in name for character in " ,;"):
        raise BadRequestError(f"{PURPOSE_HEADER} must name exactly one purpose")
    return name, justification


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    if len(value) > MAX_HEADER_CHARS:
        raise BadRequestError(f"the {name} header is longer than {MAX_HEADER_CHARS} characters")
    return _meant(value).strip()


def _meant(value: str) -> str:
    """A header's value as the text its sender meant. HTTP carries bytes, which the server hands over as
    Latin-1: bytes that are UTF-8 (what curl and client libraries send for "Siân" or an emoji) are read as
    UTF-8, any others as Latin-1 (what a browser's ``fetch`` sends for the characters it allows)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not Latin-1 (a value made in this process), or not UTF-8
        return value


def check_purpose(
    settings: PurposeSettings,
    stated: tuple[str, str | None] | None,
    source: Literal["token", "header"],
    permitted: frozenset[str],
) -> Purpose | None:
    """The purpose of a request, checked: known, permitted by one of the caller's scopes (``permitted``), with
    its justification if it needs one; ``None`` when none is stated and none is required."""
    if stated is None:
        if settings.required:
            known = ", ".join(sorted(permitted)) or "none: ask for a scope that permits one"
            how = (
                f"a purpose in the {PURPOSE_HEADER} header or in the token"
                if settings.header
                else ("a purpose in the token")
            )
            raise PurposeRequiredError(f"state why this request is made: {how}; your scopes permit {known}")
        return None
    name, justification = stated
    definition = settings.definition(name)
    if definition is None:
        known = ", ".join(sorted(purpose.name for purpose in settings.vocabulary))
        raise PurposeUnknownError(f"that purpose is not one fedgate knows; purposes are: {known}")
    if name not in permitted:
        allowed = ", ".join(sorted(permitted)) or "none"
        raise PurposeNotPermittedError(f"your scopes do not permit the purpose '{name}'; they permit: {allowed}")
    if justification is not None and len(justification) > settings.max_justification_chars:
        raise BadRequestError(f"a justification may be at most {settings.max_justification_chars} characters")
    if definition.justification_required and not justification:
        raise JustificationRequiredError(
            f"the purpose '{name}' needs a justification (the {JUSTIFICATION_HEADER} header, at most "
            f"{settings.max_justification_chars} characters): say why this request is made"
        )
    return Purpose(name, source, justification or None)
