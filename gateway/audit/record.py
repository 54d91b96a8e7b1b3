"""The audit event of one GraphQL operation: who asked, why, under which agreements, what and whom they saw.

Pure: the facts in, the event's entry out (its canonical JSON body and the columns derived from it). Never a
value of a row other than the identifiers of the people the rows are about, never a token, never a variable's
value (the document is recorded by its hash, the ``where`` arguments as written, with ``$variables`` by name).

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

The body is written as RFC 8785 canonical JSON straight from canonical fragments, in the order of its keys
(:func:`entry`): canonical JSON of an object is its members' canonical JSON in key order, so the parts that
stay the same request after request (who asked and why, what a table's rows show) are written once and
kept, and only what changes (ids, time, counts, people) is written per request.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from graphql import DocumentNode, FieldNode, Visitor, print_ast, visit

from gateway.audit.chain import canonical
from gateway.audit.store import Entry
from gateway.execution.disclosure import DisclosureSummary
from gateway.execution.outcome import DepartmentOutcome
from gateway.plan.plan import Plan
from gateway.policy.access import Access, TableAccess
from gateway.principal import Principal
from gateway.unique_ids import new_event_id

#: How many fragments of callers, and of tables shown, are kept (each a few hundred bytes).
FRAGMENTS_KEPT = 4096


def entry(
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
    disclosed: Sequence[bytes] = (),
    subjects: dict[str, list[str]] | None = None,
    bulk: Mapping[str, Any] | None = None,
) -> Entry:
    """The entry of the event (see the module's docstring for its shape); ``disclosed``: the canonical JSON
    of each table's part (:func:`disclosed_record`, :func:`disclosed_part`)."""
    event_id = new_event_id()
    organisation = principal.attribute(organisation_attribute)
    organisation = organisation if isinstance(organisation, str) else None
    role = principal.attribute("role")
    purpose = principal.purpose
    body = b"".join((
        b'{"agreements":', _agreements(tuple(sorted(set(agreements)))),
        b',"bulk":', canonical(bulk) if bulk is not None else b"null",
        b',"departments":', canonical(departments) if departments else b"{}",
        b',"disclosed":[', b",".join(disclosed),
        b'],"event_id":', orjson.dumps(event_id),
        b',"operation":', _operation(query, operation_name),
        b',"outcome":', canonical({"status": status, "code": code}),
        b',"principal":', _caller(
            principal.subject, principal.client_id, organisation, role if isinstance(role, str) else None,
            principal.issuer,
            *((purpose.name, purpose.source, purpose.justification) if purpose is not None else (None, None, None)),
        ),
        b',"request_id":', orjson.dumps(request_id),
        b',"subjects":', canonical(subjects) if subjects else b"{}",
        b',"time":', orjson.dumps(time), b"}",
    ))  # fmt: skip
    return Entry(body, (event_id, time, principal.client_id, organisation, purpose.name if purpose else None, status))


@functools.lru_cache(maxsize=FRAGMENTS_KEPT)
def _caller(
    subject: str | None,
    client_id: str | None,
    organisation: str | None,
    role: str | None,
    issuer: str | None,
    purpose: str | None,
    source: str | None,
    justification: str | None,
) -> bytes:
    """Who asked (never their token) and why: the ``principal`` member's value, and the ``purpose`` member."""
    principal = {"subject": subject, "client_id": client_id, "organisation": organisation,
                 "role": role, "issuer": issuer}  # fmt: skip
    why = {"name": purpose, "source": source, "justification": justification} if purpose is not None else None
    return canonical(principal) + b',"purpose":' + (canonical(why) if why is not None else b"null")


@functools.lru_cache(maxsize=256)
def _agreements(agreements: tuple[tuple[str, int], ...]) -> bytes:
    return canonical([{"id": identifier, "version": version} for identifier, version in agreements])


def _operation(query: str | None, name: str | None) -> bytes:
    """The operation's name and the SHA-256 of the document (never its variables)."""
    digest = hashlib.sha256(query.encode()).hexdigest() if query is not None else None
    return canonical({"name": name, "document_sha256": digest})


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
#: object with it, so a recycled ``id`` is never taken for another): the table's part of the event before its
#: row count, and after it (:func:`disclosed_part`).
ShownMemo = dict[tuple[int, frozenset[str]], tuple[TableAccess, bytes, bytes]]


def disclosed_record(access: Access, summary: DisclosureSummary, memo: ShownMemo) -> list[bytes]:
    """Per table whose rows reached the caller: how many, which columns and the mask on each, and the
    grants and agreements that admitted them (all but the count remembered in ``memo``, up to
    :data:`FRAGMENTS_KEPT` tables: a caller's access is the same object request after request)."""
    record = []
    for table, rows in sorted(summary.rows.items()):
        table_access = access.table(*table)
        columns = frozenset(summary.columns.get(table, ()))
        key = (id(table_access), columns)
        remembered = memo.get(key)
        if remembered is None or remembered[0] is not table_access:
            if len(memo) >= FRAGMENTS_KEPT:
                memo.clear()
            remembered = memo[key] = (table_access, *_around_rows(*_shown(table, table_access, columns)))
        record.append(b"%s%d%s" % (remembered[1], rows, remembered[2]))
    return record


def disclosed_part(
    table: str, columns: Mapping[str, str | None], grants: Sequence[str], agreements: Sequence[str], rows: int
) -> bytes:
    """A table's part of ``disclosed``: ``rows`` rows of ``table`` showed ``columns`` (each with its mask, if
    any), admitted by ``grants`` (scopes) and ``agreements`` (``id@version``)."""
    before, after = _around_rows(table, columns, grants, agreements)
    return b"%s%d%s" % (before, rows, after)


def _around_rows(
    table: str, columns: Mapping[str, str | None], grants: Sequence[str], agreements: Sequence[str]
) -> tuple[bytes, bytes]:
    """A table's part of ``disclosed`` before its row count, and after it (its members in key order)."""
    before = b'{"agreements":%s,"columns":%s,"grants":%s,"rows":' % (
        canonical(list(agreements)),
        canonical(dict(columns)),
        canonical(list(grants)),
    )
    return before, b',"table":%s}' % canonical(table)


def _shown(
    table: tuple[str, str], access: TableAccess, shown: frozenset[str]
) -> tuple[str, dict[str, str | None], list[str], list[str]]:
    grants = access.grants
    columns: dict[str, str | None] = {}
    for name in sorted(shown):
        masks = sorted({g.masks[name].describe() if name in g.masks else "" for g in grants if name in g.columns})
        columns[name] = None if masks in ([], [""]) else " | ".join(mask or "none" for mask in masks)
    return (
        f"{table[0]}.{table[1]}",
        columns,
        sorted({grant.scope for grant in grants}),
        sorted({f"{g.agreement[0]}@{g.agreement[1]}" for g in grants if g.agreement is not None}),
    )


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
