"""The gateway's side of the audit: an event for every GraphQL operation of an authenticated caller.

An operation that ran records what it disclosed and waits until that record is durable
(:meth:`Auditor.answered`): if it cannot be, the caller gets ``AUDIT_UNAVAILABLE`` (HTTP 503) instead of
the data. A refusal (no purpose, no agreement, a document that does not validate, a limit) discloses
nothing: it is recorded as well, but a refusal whose record fails still goes out (:meth:`Auditor.refused`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
from graphql import DocumentNode

from gateway import request_ids
from gateway.audit.chain import StoredEvent
from gateway.audit.record import ShownMemo, departments_record, disclosed_part, disclosed_record, entry, filters
from gateway.audit.settings import AuditSettings
from gateway.audit.writer import AuditWriter, now_text
from gateway.error_format import graphql_errors
from gateway.errors import AuditUnavailableError, FedgateError
from gateway.execution.executor import PlanResult
from gateway.plan.plan import BoundPlan
from gateway.policy.access import Access
from gateway.policy.agreements import Agreement
from gateway.principal import Principal

log = structlog.get_logger("fedgate.audit")

#: How a read of the audit itself names what it disclosed.
AUDIT_TABLE = "fedgate.audit_events"


class Auditor:
    """Builds each operation's event and hands it to the writer."""

    def __init__(self, writer: AuditWriter, settings: AuditSettings, organisation_attribute: str) -> None:
        self.writer = writer
        self.settings = settings
        self.organisation_attribute = organisation_attribute
        self._shown: ShownMemo = {}

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    async def answered(
        self,
        principal: Principal,
        query: str,
        operation_name: str | None,
        document: DocumentNode,
        bound: BoundPlan,
        access: Access,
        result: PlanResult,
        agreements: Sequence[Agreement],
        *,
        status: str,
        code: str | None,
    ) -> StoredEvent:
        """Record an operation that ran; raises :class:`AuditUnavailableError` unless the record is durable."""
        summary = result.disclosed
        assert summary is not None, "the run was not audited"
        return await self._disclosed(
            principal, query, operation_name, status=status, code=code,
            agreements=[(agreement.id, agreement.version) for agreement in agreements],
            departments=departments_record(bound.plan, result.departments),
            disclosed=disclosed_record(access, summary, self._shown),
            subjects=summary.subjects,
            document=document,
        )  # fmt: skip

    async def read(
        self,
        principal: Principal,
        query: str,
        operation_name: str | None,
        events: Sequence[StoredEvent],
        *,
        status: str,
    ) -> StoredEvent:
        """Record a read of the audit itself (personal data too): how many events, and the people they are
        about; raises :class:`AuditUnavailableError` unless the record is durable."""
        subjects: dict[str, set[str]] = {}
        for stored in events:
            for kind, values in orjson.loads(stored.body)["subjects"].items():
                subjects.setdefault(kind, set()).update(values)
        disclosed = [disclosed_part(AUDIT_TABLE, {}, [self.settings.scope], [], len(events))] if events else []
        return await self._disclosed(principal, query, operation_name, status=status, code=None, disclosed=disclosed,
                                     subjects=subjects)  # fmt: skip

    async def _disclosed(
        self,
        principal: Principal,
        query: str,
        operation_name: str | None,
        *,
        status: str,
        code: str | None,
        disclosed: Sequence[bytes],
        subjects: Mapping[str, set[str]],
        agreements: Sequence[tuple[str, int]] = (),
        departments: Mapping[str, Any] | None = None,
        document: DocumentNode | None = None,
    ) -> StoredEvent:
        """Record a disclosure, its people by name up to ``audit.max_subjects``, else counted (bulk)."""
        count = sum(len(values) for values in subjects.values())
        bulk = None
        named: dict[str, list[str]] = {kind: sorted(values) for kind, values in subjects.items()}
        if count > self.settings.max_subjects:
            bulk = {"count": count, "cap": self.settings.max_subjects, "filter": filters(document)}
            named = {}
        return await self.writer.record(entry(
            time=now_text(), request_id=request_ids.current(), principal=principal,
            organisation_attribute=self.organisation_attribute, query=query, operation_name=operation_name,
            status=status, code=code, agreements=agreements, departments=departments, disclosed=disclosed,
            subjects=named, bulk=bulk,
        ))  # fmt: skip

    async def refused(
        self, principal: Principal, query: str | None, operation_name: str | None, error: FedgateError
    ) -> None:
        """Record a request that disclosed nothing; a failure to record it is logged, not raised."""
        status = "failed" if error.http_status >= 500 and not isinstance(error, AuditUnavailableError) else "refused"
        refusal = entry(
            time=now_text(),
            request_id=request_ids.current(),
            principal=principal,
            organisation_attribute=self.organisation_attribute,
            query=query,
            operation_name=operation_name,
            status=status,
            code=graphql_errors(error)[0]["extensions"]["code"],  # a document's first problem's own code
        )
        try:
            await self.writer.record(refusal)
        except AuditUnavailableError as failure:
            log.error("audit_refusal_not_recorded", code=error.code, reason=failure.message)

    @staticmethod
    def decoded(stored: StoredEvent) -> dict[str, object]:
        return dict(orjson.loads(stored.body))
