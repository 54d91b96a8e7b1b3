"""Access under agreements against a plain-Python reference, column by column, on random scopes, agreements
and purposes (hypothesis, derandomized; FEDGATE_PROPERTY_EXAMPLES and FEDGATE_PROPERTY_SEED as for the policy
property test).

The reference states the rule of docs/governance.md directly: a column is readable when some grant of the
caller's scopes and some agreement in force for the caller's organisation and purpose both list it; each such
pair shows it under the stricter of their masks (none, the same, the smaller argument, the coarser date,
null or redact over anything, and null when the two reveal different things); the caller sees the stored
value only when some pair leaves it unmasked. Tables no pair covers are reported uncovered when a grant
names them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.access import CompiledGrant
from gateway.policy.agreements import AgreedTable, Agreement, AgreementDocument, Agreements
from gateway.policy.masks import Mask
from gateway.policy.model import PolicyDocument
from gateway.policy.purposes import Purpose
from gateway.policy.store import Policy
from gateway.principal import Principal
from schema.catalog import Catalog, load_catalog
from tests.conftest import CLINIC_CATALOG
from tests.support.governance import agreement
from tests.test_policy_property import EXAMPLES, HYPOTHESIS, seeded

CATALOG: Catalog = load_catalog(CLINIC_CATALOG)
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
TABLES = [(department.name, table) for department in CATALOG.departments for table in department.tables]
ORGANISATIONS = ["ORG-A", "ORG-B"]
PURPOSES = ["direct_care", "planning"]
MASKS = {  # masks that apply to each column type, as written in a policy
    "string": [None, "show_last(2)", "show_last(4)", "show_first(3)", "hash", "redact", "null"],
    "date": [None, "year_only", "month_only", "null"],
    "datetime": [None, "year_only", "month_only", "null"],
    "integer": [None, "round(0)", "round(-1)", "null"],
    "float": [None, "round(1)", "round(0)", "null"],
    "decimal": [None, "round(2)", "round(0)", "null"],
    "boolean": [None, "null"],
}


def _mask(text: str | None) -> Mask | None:
    if text is None:
        return None
    kind, _, argument = text.partition("(")
    return Mask(kind, number=int(argument.rstrip(")")) if argument else None)


@st.composite
def table_share(draw: st.DrawFn, table_index: int) -> tuple[int, frozenset[str], dict[str, str]]:
    """Some columns of a table, some of them masked."""
    _, table = TABLES[table_index]
    names = [column.name for column in table.columns]
    columns = frozenset(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
    masks = {}
    for column in sorted(columns):
        mask = draw(st.sampled_from(MASKS[table.column(column).type.value]))
        if mask is not None:
            masks[column] = mask
    return table_index, columns, masks


@st.composite
def shares(draw: st.DrawFn) -> list[tuple[int, frozenset[str], dict[str, str]]]:
    indices = draw(st.lists(st.integers(0, len(TABLES) - 1), min_size=1, max_size=len(TABLES), unique=True))
    return [draw(table_share(index)) for index in indices]


@st.composite
def agreement_documents(draw: st.DrawFn, number: int) -> dict[str, Any]:
    starts = draw(st.sampled_from(["2025-01-01T00:00:00Z", "2026-06-01T12:00:00Z", "2026-06-01T12:00:01Z"]))
    expires = draw(st.sampled_from(["2026-06-01T12:00:00Z", "2026-06-01T12:00:01Z", "2030-01-01T00:00:00Z"]))
    if expires <= starts:
        expires = "2030-01-01T00:00:00Z"
    return {
        "id": f"ISA-{number}",
        "status": draw(st.sampled_from(["active", "active", "active", "suspended", "draft"])),
        "recipients": draw(st.lists(st.sampled_from(ORGANISATIONS), min_size=1, unique=True)),
        "purposes": draw(st.lists(st.sampled_from(PURPOSES), min_size=1, unique=True)),
        "starts": starts,
        "expires": expires,
        "shares": draw(shares()),
    }


def _policy(scopes: dict[str, list[Any]], documents: list[dict[str, Any]]) -> Policy:
    grants = {
        scope: tuple(
            CompiledGrant(scope, TABLES[index][0], TABLES[index][1], columns,
                          masks={name: m for name, text in masks.items() if (m := _mask(text)) is not None})
            for index, columns, masks in table_shares
        )
        for scope, table_shares in scopes.items()
    }  # fmt: skip
    document = PolicyDocument.model_validate(
        {"scopes": [{"name": scope, "description": scope, "purposes": PURPOSES} for scope in scopes]}
    )
    agreements = []
    for spec in documents:
        departments = sorted({TABLES[index][0] for index, _, _ in spec["shares"]})
        model = AgreementDocument.model_validate(
            agreement(
                spec["id"], status=spec["status"], recipients=spec["recipients"], purposes=spec["purposes"],
                starts=spec["starts"], expires=spec["expires"], providers=departments,
                data_items={f"{TABLES[i][0]}.{TABLES[i][1].name}": {"columns": sorted(c)}
                            for i, c, _ in spec["shares"]},
            )
        )  # fmt: skip
        tables = {
            (TABLES[index][0], TABLES[index][1].name): AgreedTable(
                columns, {name: m for name, text in masks.items() if (m := _mask(text)) is not None}
            )
            for index, columns, masks in spec["shares"]
        }
        agreements.append(Agreement(model, tables))
    return Policy(document, CATALOG, grants, version="v", agreements=Agreements(agreements), clock=lambda: NOW)


def _stricter(first: str | None, second: str | None) -> str | None:
    """The reference rule for two masks of one column, as plain as it can be said."""
    if first is None or second is None:
        return first if second is None else second
    if first == second:
        return first
    if "null" in (first, second):
        return "null"
    if "redact" in (first, second):
        return "redact"
    kind_1, _, argument_1 = first.partition("(")
    kind_2, _, argument_2 = second.partition("(")
    if kind_1 == kind_2 and kind_1 in ("show_last", "show_first", "round"):
        return first if int(argument_1.rstrip(")")) <= int(argument_2.rstrip(")")) else second
    if {first, second} == {"year_only", "month_only"}:
        return "year_only"
    return "null"


def _reference(
    scopes: dict[str, list[Any]], held: set[str], documents: list[dict[str, Any]], organisation: str, purpose: str
) -> tuple[dict[tuple[str, str], dict[str, set[str | None]]], set[tuple[str, str]]]:
    """Per table, per readable column, the masks the pairs show it under; and the uncovered tables."""
    in_force = [
        d for d in documents
        if d["status"] == "active"
        and dt.datetime.fromisoformat(d["starts"]) <= NOW < dt.datetime.fromisoformat(d["expires"])
        and organisation in d["recipients"] and purpose in d["purposes"]
    ]  # fmt: skip
    seen: dict[tuple[str, str], dict[str, set[str | None]]] = {}
    granted: set[tuple[str, str]] = set()
    for scope in sorted(held):
        for index, grant_columns, grant_masks in scopes[scope]:
            key = (TABLES[index][0], TABLES[index][1].name)
            granted.add(key)
            for document in in_force:
                for shared_index, shared_columns, shared_masks in document["shares"]:
                    if shared_index != index:
                        continue
                    for column in grant_columns & shared_columns:
                        masked = _stricter(grant_masks.get(column), shared_masks.get(column))
                        seen.setdefault(key, {}).setdefault(column, set()).add(masked)
    return seen, granted - set(seen)


@seeded
@settings(max_examples=EXAMPLES, **HYPOTHESIS)  # type: ignore[arg-type]
@given(data=st.data())
def test_access_matches_the_reference_column_by_column(data: st.DataObject) -> None:
    scopes = {f"scope.{n}": data.draw(shares()) for n in range(data.draw(st.integers(1, 3)))}
    documents = [data.draw(agreement_documents(n)) for n in range(data.draw(st.integers(0, 4)))]
    held = set(data.draw(st.lists(st.sampled_from(sorted(scopes)), min_size=1, unique=True)))
    organisation = data.draw(st.sampled_from(ORGANISATIONS))
    purpose = data.draw(st.sampled_from(PURPOSES))
    principal = Principal(
        subject="p", scopes=frozenset(held), attributes={"org_code": organisation},
        purpose=Purpose(purpose, "header"),
    )  # fmt: skip
    access = _policy(scopes, documents).access(principal)
    expected, uncovered = _reference(scopes, held, documents, organisation, purpose)
    assert access.columns() == {key: frozenset(columns) for key, columns in expected.items()}
    for key, columns in expected.items():
        table = access.table(*key)
        shown = {
            column: {g.masks[column].describe() if column in g.masks else None
                     for g in table.grants if column in g.columns}
            for column in columns
        }  # fmt: skip
        assert shown == columns, key
        assert table.plain == frozenset(column for column, masks in columns.items() if None in masks), key
    assert access.uncovered == frozenset(uncovered)
    assert access.purpose == purpose
