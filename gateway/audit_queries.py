"""The audit's GraphQL API, ``/audit/graphql``: who saw whose data, what and why, for privacy officers.

A schema of its own (``auditEvents(where:, limit:)``), not a field of the departments' schema: the audit
is not a department's data, nothing is federated or merged, and the policy that guards the departments
says nothing about it. Reading it needs the scope ``audit.scope`` (``fedgate:audit``) and the purpose
``audit`` with a justification; each read is itself recorded, against the people whose events it returned.
The same endpoint code serves it as ``/graphql`` (:class:`~gateway.endpoint.GraphQLEndpoint`), with the
same document limits, and GraphiQL for browsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, GraphQLResolveInfo, build_schema, execute

from gateway.audit.auditor import Auditor
from gateway.audit.chain import StoredEvent
from gateway.audit.store import Filter
from gateway.audit.writer import parse_time
from gateway.documents import DocumentCache, DocumentErrors
from gateway.error_format import coded_error, graphql_error
from gateway.errors import (
    GRAPHQL_VALIDATION_FAILED,
    BadUserInputError,
    DocumentError,
    FedgateError,
    InsufficientScopeError,
    PurposeRequiredError,
    QueryLimit,
    QueryLimitError,
)
from gateway.policy.purposes import resolve_purpose
from gateway.principal import Principal
from gateway.service import GraphQLRequest, GraphQLResponse, request_error
from gateway.settings import Settings

#: The purpose every read of the audit states.
AUDIT_PURPOSE = "audit"

SDL = '''
"""The audit of every disclosure. Reading it needs the audit scope and the purpose 'audit'."""
type Query {
  "Events matching every condition of `where`, newest first: at most `limit` (audit.max_query_events in all)."
  auditEvents(where: AuditEventFilter, limit: Int! = 50): [AuditEvent!]!
}

"Every condition given must hold."
input AuditEventFilter {
  "An identifier of a person the event disclosed (an NHS number, a National Insurance number...)."
  subject: String
  clientId: String
  organisation: String
  purpose: String
  "An agreement's id."
  agreement: String
  outcome: AuditOutcome
  "From this ISO 8601 date or time (UTC unless it says otherwise)."
  since: String
  "Before this ISO 8601 date or time."
  until: String
}

enum AuditOutcome { ok partial refused failed }

"One GraphQL operation: who asked, why, under which agreements, and what and whom it disclosed."
type AuditEvent {
  "Its position in the chain."
  seq: Int!
  eventId: String!
  time: String!
  requestId: String
  principal: AuditPrincipal!
  purpose: AuditPurpose
  agreements: [AuditAgreement!]!
  operation: AuditOperation!
  outcome: AuditOutcomeRecord!
  departments: [AuditDepartment!]!
  disclosed: [AuditDisclosure!]!
  "The people the returned rows are about (empty for a bulk answer: see `bulk`)."
  subjects: [AuditSubject!]!
  bulk: AuditBulk
}

type AuditPrincipal { subject: String clientId: String organisation: String role: String issuer: String }
type AuditPurpose { name: String! source: String! justification: String }
type AuditAgreement { id: String! version: Int! }
"The operation by name and by the SHA-256 of its document (variables' values are never recorded)."
type AuditOperation { name: String documentSha256: String }
type AuditOutcomeRecord { status: AuditOutcome! code: String }
type AuditDepartment { name: String! status: String! code: String statements: Int! }
"Rows of one table that reached the caller: each column with the mask applied to it, and what admitted them."
type AuditDisclosure {
  table: String!
  rows: Int!
  columns: [AuditColumn!]!
  grants: [String!]!
  agreements: [String!]!
}
type AuditColumn { name: String! mask: String }
type AuditSubject { kind: String! value: String! }
"Past audit.max_subjects people an event records how many, and the filter that chose them."
type AuditBulk { count: Int! cap: Int! filter: [String!]! }
'''
SCHEMA = build_schema(SDL)


@dataclass
class _Read:
    """One request's reads: the events returned so far, and what is left of its budget."""

    budget: int
    events: list[StoredEvent]


class AuditQueries:
    """The service behind ``/audit/graphql`` (the endpoint's :class:`~gateway.endpoint.GraphQLService`)."""

    def __init__(self, auditor: Auditor, settings: Settings, documents: DocumentCache) -> None:
        self.auditor = auditor
        self.settings = settings
        self.documents = documents

    def with_purpose(self, principal: Principal, headers: Mapping[str, str]) -> Principal:
        purpose = resolve_purpose(self.settings.purposes, principal.bound_purpose, headers, frozenset({AUDIT_PURPOSE}))
        if purpose is None:
            raise PurposeRequiredError(f"reading the audit needs the purpose '{AUDIT_PURPOSE}' and a justification")
        return principal.for_purpose(purpose)

    def require_access(self, principal: Principal) -> None:
        scope = self.settings.audit.scope
        if not principal.has_scope(scope):
            raise InsufficientScopeError(f"reading the audit needs the scope {scope}", [scope])

    async def refused(self, principal: Principal, error: FedgateError, request: GraphQLRequest | None = None) -> None:
        query, name = (request.query, request.operation_name) if request is not None else (None, None)
        await self.auditor.refused(principal, query, name, error)

    async def execute(self, request: GraphQLRequest, principal: Principal) -> GraphQLResponse:
        parsed = self.documents.get("audit", SCHEMA, request.query)
        if isinstance(parsed, DocumentErrors):
            await self.auditor.refused(principal, request.query, request.operation_name, DocumentError(parsed.errors))
            return GraphQLResponse(None, [dict(error) for error in parsed.errors])
        read = _Read(self.settings.audit.max_query_events, [])
        result = execute(
            SCHEMA, parsed.document, root_value=self, context_value=read,
            variable_values=dict(request.variables or {}), operation_name=request.operation_name,
        )  # fmt: skip
        outcome = result if isinstance(result, ExecutionResult) else await result  # not awaitable: bad variables
        errors = [_error(error) for error in outcome.errors or ()]
        if outcome.data is None:
            await self.auditor.refused(principal, request.query, request.operation_name, DocumentError(errors))
            return GraphQLResponse(None, errors)
        try:
            await self.auditor.read(principal, request.query, request.operation_name, read.events,
                                    status="partial" if errors else "ok")  # fmt: skip
        except FedgateError as error:
            return request_error(error)
        return GraphQLResponse(outcome.data, errors)

    async def auditEvents(
        self, info: GraphQLResolveInfo, limit: int, where: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        read: _Read = info.context
        if limit < 1 or limit > read.budget:
            raise QueryLimitError(f"auditEvents: limit must be from 1 to {read.budget} (audit.max_query_events, "
                                  "all fields of a request together)", limit=QueryLimit.PAGE_SIZE)  # fmt: skip
        read.budget -= limit
        found = await self.auditor.writer.store.query(_filter(where or {}), limit)
        read.events.extend(found)
        return [shaped(stored) for stored in found]


def _filter(where: Mapping[str, Any]) -> Filter:
    times = {}
    for name in ("since", "until"):
        value = where.get(name)
        if value is not None:
            try:
                times[name] = parse_time(value)
            except ValueError:
                raise BadUserInputError(f"where.{name}: '{value}' is not an ISO 8601 date or time") from None
    return Filter(where.get("subject"), where.get("clientId"), where.get("organisation"), where.get("purpose"),
                  where.get("agreement"), where.get("outcome"), times.get("since"), times.get("until"))  # fmt: skip


def shaped(stored: StoredEvent) -> dict[str, Any]:
    """An event as the schema shows it (camelCase, lists for maps)."""
    event = orjson.loads(stored.body)
    principal = event["principal"]
    return {
        "seq": stored.seq,
        "eventId": event["event_id"],
        "time": event["time"],
        "requestId": event["request_id"],
        "principal": {**principal, "clientId": principal["client_id"]},
        "purpose": event["purpose"],
        "agreements": event["agreements"],
        "operation": {"name": event["operation"]["name"], "documentSha256": event["operation"]["document_sha256"]},
        "outcome": event["outcome"],
        "departments": [{"name": name, **value} for name, value in event["departments"].items()],
        "disclosed": [
            {**item, "columns": [{"name": name, "mask": mask} for name, mask in item["columns"].items()]}
            for item in event["disclosed"]
        ],
        "subjects": [{"kind": kind, "value": value} for kind, values in event["subjects"].items() for value in values],
        "bulk": event["bulk"],
    }


def _error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, FedgateError):
        return graphql_error(original, path=tuple(error.path or ()))
    return coded_error(error.message, GRAPHQL_VALIDATION_FAILED, path=error.path, locations=error.locations)
