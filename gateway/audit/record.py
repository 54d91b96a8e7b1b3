"""The audit event of one GraphQL operation: who asked, why, under which agreements, what and whom they saw.

Pure: the facts in, the event (a JSON-able dict) out. Never a value of a row other than the identifiers of
the people the rows are about, never a token, never a variable's value (the document is recorded by its
hash, the ``where`` arguments as written, with ``$variables`` by name).

    {"event_id", "time", "request_id",
     "principal": {"subject", "client_id", "organisation", "role", "issuer"},
     "purpose": {"name", "source", "justification"} | null,
     "agreements": [{"id", "version"}],
     "operation": {"name", "document_sha256"},
     "outcome": {"status": "ok" | "partial" | "refused" | "failed", "code"},
     "departments": {name: {"status": "ok" | "failed" | "not_reached", "code", "statements"}},
     "disclosed": [{"table", "rows", "columns": {column: mask | null}, "grants", "agreements"}],
     "subjects": {identifier kind: [values]},
     "bulk": null | {"count", "cap", "filter"}}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from graphql import DocumentNode, FieldNode, Visitor, print_ast, visit

from gateway.execution.disclosure import DisclosureSummary
from gateway.execution.outcome import DepartmentOutcome
from gateway.plan.plan import Plan
from gateway.policy.access import Access, TableAccess
from gateway.principal import Principal
from gateway.unique_ids import new_event_id


def principal_record(principal: Principal, organisation_attribute: str) -> dict[str, Any]:
    """Who asked: never their token."""
    organisation = principal.attribute(organisation_attribute)
    role = principal.attribute("role")
    return {
        "subject": principal.subject,
        "client_id": principal.client_id,
        "organisation": organisation if isinstance(organisation, str) else None,
        "role": role if isinstance(role, str) else None,
        "issuer": principal.issuer,
    }


def purpose_record(principal: Principal) -> dict[str, Any] | None:
    purpose = principal.purpose
    if purpose is None:
        return None
    return {"name": purpose.name, "source": purpose.source, "justification": purpose.justification}


def event(
    *,
    time: str,
    request_id: str | None,
    principal: Principal,
    organisation_attribute: str,
    query: str | None,
    operation_name: str | None,
    status: str,
    code: str | None,
    agreements: Iterable[tuple[str, int]] = (),
    departments: Mapping[str, Any] | None = None,
    disclosed: Sequence[Mapping[str, Any]] = (),
    subjects: Mapping[str, Sequence[str]] | None = None,
    bulk: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event (see the module's docstring for its shape)."""
    return {
        "event_id": new_event_id(),
        "time": time,
        "request_id": request_id,
        "principal": principal_record(principal, organisation_attribute),
        "purpose": purpose_record(principal),
        "agreements": [{"id": identifier, "version": version} for identifier, version in sorted(set(agreements))],
        "operation": {
            "name": operation_name,
            "document_sha256": hashlib.sha256(query.encode()).hexdigest() if query is not None else None,
        },
        "outcome": {"status": status, "code": code},
        "departments": dict(departments or {}),
        "disclosed": list(disclosed),
        "subjects": {kind: list(values) for kind, values in sorted((subjects or {}).items())},
        "bulk": dict(bulk) if bulk is not None else None,
    }


def departments_record(plan: Plan, outcomes: Mapping[str, DepartmentOutcome]) -> dict[str, Any]:
    """Each department the plan names: answered, failed (with the code), or never asked."""
    named = sorted({scan.department.name for scan in plan.scans})
    record: dict[str, Any] = {}
    for name in sorted(set(named) | set(outcomes)):
        outcome = outcomes.get(name)
        if outcome is None:
            record[name] = {"status": "not_reached", "code": None, "statements": 0}
        elif outcome.failed:
            record[name] = {"status": "failed", "code": outcome.errors[0].code, "statements": outcome.statements}
        else:
            record[name] = {"status": "ok", "code": None, "statements": outcome.statements}
    return record


#: What a table's rows showed a caller, by the caller's access to the table and the columns shown (the access
#: object with it, so a recycled ``id`` is never taken for another).
ShownMemo = MutableMapping[tuple[int, frozenset[str]], tuple[TableAccess, dict[str, Any]]]


def disclosed_record(access: Access, summary: DisclosureSummary, memo: ShownMemo) -> list[dict[str, Any]]:
    """Per table whose rows reached the caller: how many, which columns and the mask on each, and the
    grants and agreements that admitted them (all but the count remembered in ``memo``: a caller's access
    is the same object request after request)."""
    record = []
    for table, rows in sorted(summary.rows.items()):
        table_access = access.table(*table)
        columns = frozenset(summary.columns.get(table, ()))
        key = (id(table_access), columns)
        remembered = memo.get(key)
        if remembered is None or remembered[0] is not table_access:
            remembered = memo[key] = (table_access, _shown(table, table_access, columns))
        record.append({**remembered[1], "rows": rows})
    return record


def _shown(table: tuple[str, str], access: TableAccess, shown: frozenset[str]) -> dict[str, Any]:
    grants = access.grants
    columns: dict[str, str | None] = {}
    for name in sorted(shown):
        masks = sorted({g.masks[name].describe() if name in g.masks else "" for g in grants if name in g.columns})
        columns[name] = None if masks in ([], [""]) else " | ".join(mask or "none" for mask in masks)
    return {
        "table": f"{table[0]}.{table[1]}",
        "columns": columns,
        "grants": sorted({grant.scope for grant in grants}),
        "agreements": sorted({f"{g.agreement[0]}@{g.agreement[1]}" for g in grants if g.agreement is not None}),
    }


def filters(document: DocumentNode | None) -> list[str]:
    """The ``where`` arguments of the document, as written (``$variables`` by name, never their values)."""
    if document is None:
        return []
    found: list[str] = []

    class _Where(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            for argument in node.arguments or ():
                if argument.name.value == "where":
                    found.append(f"{node.name.value}(where: {print_ast(argument.value)})")

    visit(document, _Where())
    return found
