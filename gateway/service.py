"""The gateway's core, independent of HTTP: a GraphQL request and a principal in, a response out.

    document (cached parse + validate) → operation → variables
      → bound plan (cached: build → passes → bind, :mod:`gateway.pipeline`) → execute → response

Everything before execution raises a :class:`~gateway.errors.FedgateError` when the request cannot run;
:meth:`Gateway.execute` turns it into the response (:func:`request_error`).

Every executed response that queried departments carries ``extensions.sources`` (each department asked,
``complete`` or ``failed``: :mod:`gateway.execution.outcome`). An operation marked ``@strict``
(:mod:`schema.directives`) is all or nothing: any department failing gives ``data: null`` and one error
per failed department. The HTTP endpoint, the CLI's ``explain`` and the tests all go through
:class:`Gateway`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import LRUCache
from graphql import DocumentNode, OperationDefinitionNode, OperationType, get_location
from graphql.execution.values import get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule

from adapters.base import FetchContext
from gateway.audit.auditor import Auditor
from gateway.document_scan import DocumentLimits
from gateway.documents import DocumentCache, DocumentErrors, without_suggestions
from gateway.error_format import coded_error, graphql_errors
from gateway.errors import (
    GRAPHQL_VALIDATION_FAILED,
    AuditUnavailableError,
    BadUserInputError,
    DocumentError,
    FedgateError,
    InsufficientScopeError,
    InternalError,
    MethodNotAllowedError,
    NoAgreementError,
    OperationNameRequiredError,
    OperationNotFoundError,
    PurposeRequiredError,
)
from gateway.execution.executor import Executor, PlanResult
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.outcome import sources_summary, strict_status
from gateway.execution.statistics import gather_statistics
from gateway.explain import explain
from gateway.metrics import CacheCounter
from gateway.pipeline import PASSES, Pass, Target, compile_plan
from gateway.pipeline.bind import bind
from gateway.plan.plan import BoundPlan
from gateway.planning.context import PlannerLimits, PlanPolicy
from gateway.planning.estimates import Statistics
from gateway.policy.access import Access, full_access
from gateway.policy.purposes import resolve_purpose
from gateway.policy.store import Policy, utc_now
from gateway.principal import Principal
from gateway.settings import Settings
from gateway.validation_rules import limit_rules
from schema.catalog import Catalog
from schema.directives import is_strict
from schema.graphql_types import GatewaySchema, PageSizes, Visibility, build_schema

log = structlog.get_logger("fedgate.gateway")

_PLAN_CACHE = CacheCounter("plan")
_SCHEMA_CACHE = CacheCounter("schema")


@dataclass(frozen=True)
class GraphQLRequest:
    """One GraphQL request, as parsed from the transport."""

    query: str
    operation_name: str | None = None
    variables: Mapping[str, Any] | None = None
    #: Sent with a method that must not change anything (HTTP GET): a mutation is refused with 405.
    safe_method: bool = False


@dataclass
class GraphQLResponse:
    """The answer. ``data`` is ``None`` when the request failed before execution (a request error), or
    when a ``@strict`` operation failed (``strict_failure``: then the body says ``"data": null``)."""

    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    extensions: dict[str, Any] = field(default_factory=dict)
    #: Statements run per department (not sent to the caller; for logs and tests).
    statements: dict[str, int] = field(default_factory=dict)
    #: HTTP status of a request error (400 for the caller's mistakes, 500 for fedgate's own) or, with
    #: ``application/graphql-response+json``, of a strict failure (502, 503 or 504).
    http_status: int = 400
    #: A ``@strict`` operation executed and a department failed: ``data`` is null, ``errors`` name them.
    strict_failure: bool = False

    @property
    def is_request_error(self) -> bool:
        return self.data is None and not self.strict_failure

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.errors:
            body["errors"] = self.errors
        if self.data is not None or self.strict_failure:
            body["data"] = self.data
        if self.extensions:
            body["extensions"] = self.extensions
        return body


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to execute: what the caller may see, the document, its variables and the plan."""

    schema: GatewaySchema
    access: Access
    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    #: The plan with each statement prepared by its department's adapter (``bound.plan`` is the plan).
    bound: BoundPlan
    #: The operation carries ``@strict``: any department failing fails the whole request.
    strict: bool = False


def request_error(error: FedgateError) -> GraphQLResponse:
    """A response for an error that stopped the request before (or instead of) execution."""
    return GraphQLResponse(None, graphql_errors(error), http_status=error.http_status)


class Gateway:
    """Schema, caches, planner and executor for one catalog and its departments' sources.

    ``policy`` is ``None`` only when authentication is switched off (development): then every caller
    sees everything.
    """

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        sources: GuardedAdapters,
        policy: Policy | None = None,
        *,
        passes: tuple[Pass, ...] = PASSES,
        auditor: Auditor | None = None,
    ) -> None:
        self.catalog = catalog
        #: Records every operation (``None``: no audit, as with authentication off).
        self.auditor = auditor
        #: The passes every plan goes through between build and bind (tests leave one out to show its effect).
        self.passes = passes
        self.settings = settings
        self.sources = sources
        self.policy = policy
        self.row_key_secret = policy.secrets.row_key() if policy is not None else b""
        graphql = settings.graphql
        self.page_sizes = PageSizes(graphql.default_page_size, graphql.max_page_size, graphql.max_offset)
        self.schema = build_schema(catalog, self.page_sizes)
        self.full_access = full_access(catalog)
        rules = limit_rules(
            max_depth=graphql.max_depth,
            max_aliases=graphql.max_aliases,
            max_root_fields=graphql.max_root_fields,
            max_field_comparisons=graphql.max_field_comparisons,
        )
        if not graphql.introspection:
            rules = (*rules, NoSchemaIntrospectionCustomRule)
        self.documents = DocumentCache(
            size=graphql.document_cache_size,
            limits=DocumentLimits(
                max_chars=graphql.max_document_chars,
                max_tokens=graphql.max_tokens,
                max_fields=graphql.max_fields,
                max_repeated_fields=graphql.max_repeated_fields,
                max_fragments=graphql.max_fragments,
                max_variables=graphql.max_variables,
                max_directives=graphql.max_directives,
                max_selections=graphql.max_selections,
            ),
            extra_rules=rules,
            suggestions=graphql.suggestions,
        )
        self._schemas: LRUCache[str, GatewaySchema] = LRUCache(maxsize=256)
        self._plans: LRUCache[Hashable, BoundPlan] = LRUCache(maxsize=max(graphql.plan_cache_size, 1))
        self._structural: LRUCache[Hashable, frozenset[str]] = LRUCache(maxsize=max(graphql.plan_cache_size, 1))
        self.limits = PlannerLimits(max_in_list=graphql.max_in_list)
        self.statistics: Statistics = {}
        self.executor = Executor(sources, settings.execution.request_timeout_seconds, max_cost=graphql.max_cost)

    async def start(self) -> None:
        if self.auditor is not None:
            await self.auditor.start()  # first: nothing is served that could not be recorded
        await self.sources.open_all()
        self.statistics = await gather_statistics(self.sources.adapters)

    async def stop(self) -> None:
        await self.sources.close_all()
        if self.auditor is not None:
            await self.auditor.stop()

    def clock(self) -> dt.datetime:
        """Now, as the agreements in force and the register see it (the policy's clock)."""
        return self.policy.clock() if self.policy is not None else utc_now()

    def use_policy(self, policy: Policy) -> None:
        """Put a newly loaded policy (and its agreements) in force for the next request; what was made under
        the old one is dropped (it would not be used again: every cache key names the versions)."""
        self.policy = policy
        self.row_key_secret = policy.secrets.row_key()
        self._schemas.clear()
        self._plans.clear()
        self._structural.clear()

    def with_purpose(
        self, principal: Principal, headers: Mapping[str, str], *, header: bool | None = None
    ) -> Principal:
        """``principal`` with the request's purpose of use, checked (:mod:`gateway.policy.purposes`): bound by
        the token, else stated in the request ``headers`` where the deployment allows it (``header``: whether
        it does, here; default ``purposes.header``). Raises a :class:`~gateway.errors.PurposeError` (or
        ``BadRequestError`` for a malformed header)."""
        if self.policy is None:
            return principal
        settings = self.settings.purposes
        if header is not None:
            settings = settings.model_copy(update={"header": header})
        permitted = self.policy.permitted_purposes(principal.scopes)
        purpose = resolve_purpose(settings, principal.bound_purpose, headers, permitted)
        return principal.for_purpose(purpose)

    def access_for(self, principal: Principal) -> Access:
        """What ``principal`` may read for its purpose: its scopes' grants as the agreements in force cover
        them (everything without a policy). A principal with no purpose where every request needs one is
        refused here too, whoever the caller."""
        if self.policy is None:
            return self.full_access
        if principal.purpose is None and self.settings.purposes.required:
            raise PurposeRequiredError("state why this request is made: every request needs a purpose of use")
        return self.policy.access(principal)

    def require_access(self, principal: Principal) -> Access:
        """``access_for(principal)``, refusing a caller who may read nothing at all: ``NO_AGREEMENT`` when its
        scopes grant tables but no agreement in force covers them for its purpose, else ``INSUFFICIENT_SCOPE``
        naming the scopes that would grant something."""
        access = self.access_for(principal)
        if access.is_empty and self.policy is not None:
            if access.uncovered:
                raise _no_agreement(access, access.uncovered)
            useful = sorted(scope.name for scope in self.policy.document.scopes if scope.grants)
            raise InsufficientScopeError("the token's scopes grant no access to any department", useful)
        return access

    def schema_for(self, access: Access) -> GatewaySchema:
        """The schema a caller with ``access`` sees: only what it may query, unless visibility is 'full'."""
        if self.policy is None or self.settings.policy.schema_visibility == "full":
            return self.schema
        schema = self._schemas.get(access.visibility_key)
        _SCHEMA_CACHE.lookup(schema is not None)
        if schema is None:
            visibility = Visibility(access.columns(), access.via_only(), access.plain())
            schema = build_schema(self.catalog, self.page_sizes, visibility, key=f"scoped:{access.visibility_key}")
            self._schemas[access.visibility_key] = schema
        return schema

    def _plan_policy(self, access: Access) -> PlanPolicy | None:
        """What the planner enforces: filters and masks, and field checks when the schema shows everything."""
        if self.policy is None:
            return None
        settings = self.settings.policy
        return PlanPolicy(
            access=access,
            row_key_secret=self.row_key_secret,
            check_fields=settings.schema_visibility == "full",
            forbidden_fields=settings.forbidden_fields,
        )

    async def execute(self, request: GraphQLRequest, principal: Principal) -> GraphQLResponse:
        """Answer ``request``. With the audit on, every operation is recorded, and an answer leaves only once
        its record is durable (else ``AUDIT_UNAVAILABLE``, and nothing is disclosed)."""
        try:
            prepared = self.prepare(request, principal)
            return await self._answer(request, principal, prepared)
        except AuditUnavailableError as error:
            return request_error(error)
        except FedgateError as error:
            await self.refused(principal, error, request)
            return request_error(error)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal_error", incident=incident)
            fault = InternalError(incident)
            await self.refused(principal, fault, request)
            return request_error(fault)

    async def refused(self, principal: Principal, error: FedgateError, request: GraphQLRequest | None = None) -> None:
        """Record, when auditing, a request that ended in ``error`` and disclosed nothing (best effort)."""
        if self.auditor is not None:
            query, name = (request.query, request.operation_name) if request is not None else (None, None)
            await self.auditor.refused(principal, query, name, error)

    async def _answer(
        self, request: GraphQLRequest, principal: Principal, prepared: PreparedRequest
    ) -> GraphQLResponse:
        context = FetchContext(subject_token=principal.token, subject=principal.subject)
        audited = self.auditor is not None
        result = await self.executor.execute(prepared.bound, prepared.variables, context, audited=audited)
        extensions: dict[str, Any] = {}
        if result.departments:
            extensions["sources"] = sources_summary(result.departments)
        if principal.purpose is not None:
            extensions["purpose"] = {"name": principal.purpose.name, "source": principal.purpose.source}
        agreements = []
        if self.policy is not None and self.policy.agreements is not None:
            tables = {(scan.department.name, scan.table.name) for scan in prepared.bound.plan.scans}
            agreements = self.policy.agreements_used(prepared.access, tables)
            extensions["agreements"] = [
                {"id": agreement.id, "version": agreement.version, "retention": agreement.document.retention}
                for agreement in agreements
            ]
        if self.policy is not None and principal.has_scope(self.settings.policy.explain_scope):
            extensions["plan"] = explain(prepared.bound, result.keys_moved)
        if prepared.strict and result.failed_departments:
            response = _strict_failure(result, extensions)
        else:
            response = GraphQLResponse(result.data, result.errors, extensions, statements=result.statements)
        if self.auditor is not None:
            codes = [error.get("extensions", {}).get("code") for error in response.errors]
            status = "failed" if response.strict_failure else ("partial" if codes else "ok")
            await self.auditor.answered(
                principal, request.query, request.operation_name, prepared.document, prepared.bound, prepared.access,
                result, agreements, status=status, code=codes[0] if codes else None,
            )  # fmt: skip
        return response

    def prepare(self, request: GraphQLRequest, principal: Principal) -> PreparedRequest:
        """Everything up to execution: the caller's schema, the validated document, variables and plan.

        Raises a :class:`~gateway.errors.FedgateError` when the request cannot run: the document does not
        parse or validate (:class:`~gateway.errors.DocumentError`), no operation to run, variables that do
        not coerce, or a limit or access problem found while planning.
        """
        access = self.access_for(principal)
        schema = self.schema_for(access)
        parsed = self.documents.get(schema.key, schema.graphql, request.query)
        if isinstance(parsed, DocumentErrors):
            raise self._uncovered(principal, access, request.query) or DocumentError(parsed.errors)
        operation = _select_operation(parsed.operations, request.operation_name)
        if operation.operation is not OperationType.QUERY:
            raise _not_a_query(operation, request)
        coerced = get_variable_values(
            schema.graphql, operation.variable_definitions or (), dict(request.variables or {}), max_errors=20
        )
        if isinstance(coerced, list):
            shown = (lambda text: text) if self.settings.graphql.suggestions else without_suggestions
            raise DocumentError([coded_error(shown(error.message), BadUserInputError.code) for error in coerced])
        bound = self.plan(schema, access, parsed.document, operation, request, coerced)
        return PreparedRequest(schema, access, parsed.document, operation, coerced, bound, strict=is_strict(operation))

    def _uncovered(self, principal: Principal, access: Access, query: str) -> NoAgreementError | None:
        """``NO_AGREEMENT`` for a document that does not validate in the caller's schema only because it asks
        for tables the caller's scopes grant but no agreement in force covers for its purpose."""
        if self.policy is None or not access.uncovered:
            return None
        granted = self.schema_for(self.policy.access(principal, covered=False))
        parsed = self.documents.get(granted.key, granted.graphql, query)
        if isinstance(parsed, DocumentErrors):
            return None
        asked = granted.tables_asked(parsed.document) & access.uncovered
        return _no_agreement(access, asked) if asked else None

    def plan(
        self,
        schema: GatewaySchema,
        access: Access,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        request: GraphQLRequest,
        variables: Mapping[str, Any],
    ) -> BoundPlan:
        """The cached bound plan for this caller's rights, document, operation and structural variable values.

        Everything that shapes the result is in the key, so callers with different rights never share a plan.
        """
        base: Hashable = (schema.key, access.key, request.query, request.operation_name)
        names = self._structural.get(base, frozenset())
        key = (base, _frozen({name: variables.get(name) for name in sorted(names)}))
        cached = self._plans.get(key)
        _PLAN_CACHE.lookup(cached is not None)
        if cached is not None:
            return cached
        target = Target(
            self.sources.capabilities(), self._plan_policy(access), self.limits, self.statistics,
            capture_subjects=self.auditor is not None,
        )  # fmt: skip
        bound = bind(compile_plan(schema, document, operation, variables, target, self.passes), self.sources.adapters)
        names = names | bound.plan.structural_variables
        self._structural[base] = names
        self._plans[(base, _frozen({name: variables.get(name) for name in sorted(names)}))] = bound
        return bound


def _no_agreement(access: Access, tables: Iterable[tuple[str, str]]) -> NoAgreementError:
    """The refusal naming the purpose and the tables no agreement in force covers (never other agreements)."""
    names = [f"{department}.{table}" for department, table in sorted(tables)]
    purpose = f"purpose '{access.purpose}'" if access.purpose else "a request that states no purpose"
    return NoAgreementError(
        f"no information sharing agreement in force covers {', '.join(names)} for {purpose} and your organisation",
        purpose=access.purpose,
        tables=names,
    )


def _strict_failure(result: PlanResult, extensions: dict[str, Any]) -> GraphQLResponse:
    """A ``@strict`` operation with failed departments: no data, one error per failed department."""
    failed = result.failed_departments
    errors = [outcome.strict_error() for outcome in failed]
    return GraphQLResponse(
        None, errors, extensions, statements=result.statements, http_status=strict_status(failed), strict_failure=True
    )


def _select_operation(
    operations: Mapping[str | None, OperationDefinitionNode], name: str | None
) -> OperationDefinitionNode:
    if name is not None:
        operation = operations.get(name)
        if operation is None:
            raise OperationNotFoundError(f"the document has no operation named '{name}'")
        return operation
    if len(operations) != 1:
        raise OperationNameRequiredError("the document has several operations: name the one to run")
    return next(iter(operations.values()))


def _not_a_query(operation: OperationDefinitionNode, request: GraphQLRequest) -> FedgateError:
    """fedgate's schema has only a query type: a mutation or subscription fails validation (the GraphQL
    specification's operation type existence), and a mutation sent with GET is HTTP 405 (GraphQL over HTTP)."""
    if request.safe_method and operation.operation is OperationType.MUTATION:
        return MethodNotAllowedError("a mutation cannot be sent with GET")
    message = f"the schema has no {operation.operation.value} type: fedgate is read-only"
    where = [get_location(operation.loc.source, operation.loc.start)] if operation.loc is not None else None
    return DocumentError([coded_error(message, GRAPHQL_VALIDATION_FAILED, locations=where)])


def _frozen(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple((key, _frozen(item)) for key, item in sorted(value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value  # type: ignore[no-any-return]
