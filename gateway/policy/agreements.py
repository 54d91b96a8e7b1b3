"""Information sharing agreements as code: one YAML file per agreement in a folder, validated at start-up.

An agreement says which **provider** departments share what (**data items**: ``department.table`` with the
columns it may share, the masks it requires and the rows it covers) with which **recipient**
organisations (the organisation code the principal carries), for which **purposes**, on which **lawful
basis**, for how long (``starts`` until ``expires``, to the second) and with what **retention** instruction.
Access is what the caller's scopes grant *and* an active agreement covers (:mod:`gateway.policy.coverage`).

    id: ISA-LCC-MASH
    title: Leeds multi-agency safeguarding hub
    version: 3
    status: active                      # draft | active | suspended | ended
    summary: Health, social care and schools share ... (plain English, for the public register)
    providers: [health, social_care]
    recipients: [E08000035]
    purposes: [safeguarding]
    lawful_basis:
      article_6: "6(1)(e) public task"
      article_9: "9(2)(b) social protection"
      statutory_gateway: ["Children Act 2004 s11", "Care Act 2014 s42"]
    data_items:
      health.patients:
        columns: [nhs_number, given_name, family_name, date_of_birth]
        masks: {date_of_birth: year_only}
        row_condition: date_of_death IS NULL
    retention: Keep for 6 years after the case closes, then destroy.
    starts: 2025-04-01T00:00:00Z
    review_by: 2026-03-31
    expires: 2027-03-31T23:59:59Z
    signatories:
      - {name: A. Person, role: Caldicott Guardian, organisation: Leeds Teaching Hospitals, signed: 2025-03-20}

Consent and opt-out rules (a later feature) attach to the agreement too: an agreement is the one place
that says on what terms data is shared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from gateway.errors import ConfigError, ConfigIssue
from gateway.policy.expressions import PolicyExpression, PolicyExpressionError, parse_condition
from gateway.policy.masks import Mask, parse_mask
from gateway.policy.purposes import PurposeName
from schema.catalog import Catalog, SqlName, TableRef
from schema.configfile import Loc, load_yaml, validate
from schema.models import FileRelative, StrictModel

AgreementId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Status = Literal["draft", "active", "suspended", "ended"]
TableKey = tuple[str, str]


class AgreementSettings(FileRelative):
    """Where the agreements are, and who may read the register and reload them (the ``agreements`` section)."""

    folder: str | None = Field(
        None, description="The folder of agreement files (*.yaml), relative to this file; under git in production."
    )
    required: bool = Field(
        True,
        description="With authentication on, access needs an agreement (false: scopes alone decide, e.g. inside one "
        "organisation).",
    )
    organisation_attribute: str = Field(
        "org_code",
        description="The principal attribute holding the caller's organisation code (agreements' recipients).",
    )
    register_scope: str | None = Field(
        None, description="A scope needed to read the register at /agreements (default: the register is public)."
    )
    admin_scope: str = Field("fedgate:admin", description="The scope that may reload policy and agreements.")
    watch: bool = Field(True, description="Reload policy and agreements when their files change.")

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.resolve_path(self.folder)


class LawfulBasis(StrictModel):
    """The law the sharing rests on (UK GDPR conditions and the statutory gateway)."""

    article_6: str = Field(min_length=1, description="UK GDPR Article 6 condition, e.g. '6(1)(e) public task'.")
    article_9: str | None = Field(None, description="Article 9 condition, where special-category data is shared.")
    article_10: str | None = Field(None, description="Article 10 authority, where criminal offence data is shared.")
    statutory_gateway: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1, description="The statutory gateway(s), e.g. 'Digital Economy Act 2017 s35'."
    )


class Signatory(StrictModel):
    """Someone who signed the agreement for a party."""

    name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    organisation: str = Field(min_length=1)
    signed: dt.date


class DataItems(StrictModel):
    """What of one table the agreement shares."""

    columns: list[SqlName] = Field(min_length=1, description="The columns shared (an allow-list).")
    masks: dict[SqlName, str] = Field(default_factory=dict, description="Masks the agreement requires, by column.")
    row_condition: str | None = Field(None, description="Only rows meeting this condition are shared.")


class AgreementDocument(StrictModel):
    """One agreement file."""

    id: AgreementId
    title: str = Field(min_length=1)
    version: int = Field(ge=1, description="Raised on every change; responses and the audit name it.")
    status: Status
    summary: str = Field(min_length=1, description="What is shared and why, in plain English, for the register.")
    providers: list[SqlName] = Field(min_length=1, description="The departments that share.")
    recipients: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, description="Organisation codes of the recipients (the principal's organisation attribute)."
    )
    purposes: list[PurposeName] = Field(min_length=1)
    lawful_basis: LawfulBasis
    data_items: dict[TableRef, DataItems] = Field(min_length=1)
    retention: str = Field(min_length=1, description="How long recipients may keep what they receive, and then what.")
    starts: AwareDatetime
    review_by: dt.date
    expires: AwareDatetime
    signatories: list[Signatory] = Field(min_length=1)

    @model_validator(mode="after")
    def _dates(self) -> AgreementDocument:
        if self.expires <= self.starts:
            raise ValueError("expires must be after starts")
        return self


@dataclass(frozen=True)
class AgreedTable:
    """What an agreement shares of one table."""

    columns: frozenset[str]
    masks: Mapping[str, Mask] = field(default_factory=dict)
    condition: PolicyExpression | None = None


@dataclass(frozen=True)
class Agreement:
    """A validated agreement."""

    document: AgreementDocument
    tables: Mapping[TableKey, AgreedTable]
    #: The file it was read from, and the SHA-256 of its bytes (prefix), for the register and the audit.
    file: str = ""
    digest: str = ""

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def version(self) -> int:
        return self.document.version

    def in_force(self, now: dt.datetime) -> bool:
        """Usable at ``now``: active, from ``starts`` until ``expires`` (exclusive), to the second."""
        document = self.document
        return document.status == "active" and document.starts <= now < document.expires

    def covers(self, organisation: object, purpose: str) -> bool:
        """Whether it shares with ``organisation`` for ``purpose`` (whatever its dates and status)."""
        return (
            isinstance(organisation, str)
            and organisation in self.document.recipients
            and (purpose in self.document.purposes)
        )


@dataclass(frozen=True)
class InForce:
    """The agreements in force between two instants at which any of them starts or expires."""

    agreements: tuple[Agreement, ...]
    #: Names the set (ids and versions), for cache keys: a new set means new plans and schemas.
    key: str
    since: dt.datetime
    until: dt.datetime


_DISTANT_PAST = dt.datetime.min.replace(tzinfo=dt.UTC)
_DISTANT_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


class Agreements:
    """Every agreement loaded from the folder, and which are in force at a given instant."""

    def __init__(self, agreements: Iterable[Agreement], folder: Path | None = None) -> None:
        self.all: tuple[Agreement, ...] = tuple(sorted(agreements, key=lambda agreement: agreement.id))
        self.folder = folder
        self.version = hashlib.sha256(
            "\n".join(f"{a.id}:{a.version}:{a.digest}" for a in self.all).encode()
        ).hexdigest()[:16]
        instants = {a.document.starts for a in self.all} | {a.document.expires for a in self.all}
        self._instants = sorted(instants)
        self._current: InForce | None = None

    def by_id(self, agreement_id: str) -> Agreement | None:
        return next((agreement for agreement in self.all if agreement.id == agreement_id), None)

    def in_force(self, now: dt.datetime) -> InForce:
        """The agreements in force at ``now``; worked out again only when an agreement starts or expires."""
        current = self._current
        if current is not None and current.since <= now < current.until:
            return current
        since = max((instant for instant in self._instants if instant <= now), default=_DISTANT_PAST)
        until = min((instant for instant in self._instants if instant > now), default=_DISTANT_FUTURE)
        agreements = tuple(agreement for agreement in self.all if agreement.in_force(now))
        key = ",".join(f"{agreement.id}@{agreement.version}" for agreement in agreements)
        self._current = current = InForce(agreements, f"{self.version}:{key}", since, until)
        return current


def load_agreements(
    folder: Path, catalog: Catalog, purposes: Iterable[str], attributes: Iterable[str] = ()
) -> Agreements:
    """Every ``*.yaml`` file of ``folder``, validated; :class:`~gateway.errors.ConfigError` lists every problem
    in every file (file, line, key path and reason)."""
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), "", "the agreements folder does not exist")])
    issues: list[ConfigIssue] = []
    agreements: list[Agreement] = []
    seen: dict[str, str] = {}
    known = frozenset(purposes)
    available = frozenset(attributes)
    for path in sorted(folder.glob("*.yaml")):
        try:
            document = load_yaml(path)
            model = validate(AgreementDocument, document)
        except ConfigError as error:
            issues.extend(error.issues)
            continue
        problems: list[tuple[Loc, str]] = []
        tables = _tables(model, catalog, known, available, problems)
        if model.id in seen:
            problems.append((("id",), f"agreement '{model.id}' is also defined in {seen[model.id]}"))
        seen.setdefault(model.id, path.name)
        issues.extend(document.issue(loc, reason) for loc, reason in problems)
        if not problems:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            agreements.append(Agreement(model, tables, file=path.name, digest=digest))
    if issues:
        raise ConfigError(issues)
    return Agreements(agreements, folder)


def _tables(
    model: AgreementDocument,
    catalog: Catalog,
    purposes: frozenset[str],
    attributes: frozenset[str],
    problems: list[tuple[Loc, str]],
) -> dict[TableKey, AgreedTable]:
    """The data items checked against the catalog; each problem appended with where it is."""
    for index, purpose in enumerate(model.purposes):
        if purpose not in purposes:
            problems.append(
                (("purposes", index), f"'{purpose}' is not in the purpose vocabulary (purposes.vocabulary)")
            )
    departments = {department.name for department in catalog.departments}
    for index, provider in enumerate(model.providers):
        if provider not in departments:
            problems.append((("providers", index), f"department '{provider}' is not in the catalog"))
    tables: dict[TableKey, AgreedTable] = {}
    for reference, items in model.data_items.items():
        loc: Loc = ("data_items", reference)
        try:
            department, table = catalog.table(reference)
        except KeyError:
            problems.append((loc, f"table '{reference}' is not in the catalog"))
            continue
        if department.name not in model.providers:
            problems.append((loc, f"{reference} belongs to {department.name}, which is not one of the providers"))
        for c_index, column in enumerate(items.columns):
            if column not in table.columns_by_name:
                problems.append(((*loc, "columns", c_index), f"column '{column}' does not exist in {reference}"))
        masks: dict[str, Mask] = {}
        for name, text in items.masks.items():
            if name not in items.columns:
                problems.append(((*loc, "masks", name), f"'{name}' is not one of the shared columns"))
                continue
            if name not in table.columns_by_name:
                continue
            try:
                masks[name] = parse_mask(text, table, table.column(name))
            except PolicyExpressionError as error:
                problems.append(((*loc, "masks", name), str(error)))
                continue
            expression = masks[name].expression
            if expression is not None and expression.columns - {name}:
                problems.append(((*loc, "masks", name), f"a mask may read only the column it masks ({name})"))
        condition = None
        if items.row_condition is not None:
            try:
                condition = parse_condition(items.row_condition, table)
            except PolicyExpressionError as error:
                problems.append(((*loc, "row_condition"), str(error)))
            else:
                for name in sorted(condition.attributes - attributes):
                    reason = f"':principal.{name}' is not an attribute any issuer maps"
                    problems.append(((*loc, "row_condition"), reason))
        tables[(department.name, table.name)] = AgreedTable(frozenset(items.columns), masks, condition)
    return tables
