"""The policy file: which scopes exist and what each one grants.

Security teams write it; fedgate validates it at start-up against the catalog (unknown tables or
columns, duplicates) and reports every problem with file, line, path and reason. Deny by default: a
table or column no grant names is invisible and unreadable.

    version: 1
    scopes:
      - name: social_care.casework
        description: A council social worker's case view.
        purposes: [direct_care, safeguarding]
        grants:
          - table: social_care.clients
            columns: [client_id, nhs_number, given_name, family_name, date_of_birth]
            row_filter: la_code = :principal.org_code
            masks: {nhs_number: show_last(4)}
          - table: health.hospital_spells
            columns: [spell_id, admitted_at, discharged_at, discharge_destination]
            via: [social_care.clients.hospital_spells]
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from gateway.policy.purposes import PurposeName
from schema.catalog import SqlName, TableRef
from schema.models import StrictModel

RelationshipRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){2}$")]

#: RFC 6749 §3.3 scope-token: printable ASCII except space, double quote and backslash.
ScopeToken = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5B\x5D-\x7E]+$", max_length=200)]


class Grant(StrictModel):
    """What holders of a scope may read of one table.

    Later policy features (row filters, column masks, purposes of use, sharing agreements, consent)
    attach here, so that everything a grant allows is stated in one place.
    """

    table: TableRef = Field(description="department.table")
    columns: list[SqlName] | Literal["*"] = Field(description="Columns that may be read, or '*' for all.")
    row_filter: str | None = Field(
        None, description="SQL condition over the table's columns and :principal.<attribute>: rows it admits."
    )
    masks: dict[SqlName, str] = Field(default_factory=dict, description="Column → mask, e.g. nhs_number: pseudonym.")
    via: list[RelationshipRef] = Field(
        default_factory=list,
        description="If set, rows are reachable only through these relationships (department.table.relationship), "
        "from rows the caller can see: never queried at the root.",
    )
    description: str = ""


class ScopeDefinition(StrictModel):
    """An OAuth scope and the grants it carries."""

    name: ScopeToken
    description: str = Field(min_length=1, description="What the scope is for, for people reading the policy.")
    purposes: list[PurposeName] = Field(
        default_factory=list, description="The purposes of use its holders may state (from purposes.vocabulary)."
    )
    grants: list[Grant] = Field(default_factory=list)


class PolicyDocument(StrictModel):
    """The whole policy file."""

    version: Literal[1] = 1
    scopes: list[ScopeDefinition] = Field(default_factory=list)
