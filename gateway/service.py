"""The gateway's core, independent of HTTP: a GraphQL request and a principal in, a response out.

    document (cached parse + validate) → operation → variables → plan (cached) → execute → response

Every executed response that queried departments carries ``extensions.sources`` (each department asked,
``complete`` or ``failed``: :mod:`gateway.execution.outcome`). An operation marked ``@strict``
(:mod:`schema.directives`) is all or nothing: any department failing gives ``data: null`` and one error
per failed department. The HTTP endpoint, the CLI's ``explain`` and the tests all go through
:class:`Gateway`.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import LRUCache
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    get_location,
)
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule

from adapters.base import FetchContext
from gateway.document_scan import DocumentLimits
from gateway.documents import DocumentCache, DocumentErrors, without_suggestions
from gateway.error_format import coded_error, graphql_error
from gateway.errors import (
    GRAPHQL_VALIDATION_FAILED,
    OPERATION_NAME_REQUIRED,
    OPERATION_NOT_FOUND,
    BadUserInputError,
    FedgateError,
    InternalError,
    MethodNotAllowedError,
)
from gateway.execution.binding import BoundPlan, bind
from gateway.execution.executor import Executor, PlanResult
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.outcome import sources_summary, strict_status
from gateway.execution.statistics import gather_statistics
from gateway.explain import explain
from gateway.planning.estimates import Statistics
from gateway.planning.plan import Introspection
from gateway.planning.planner import Planner, PlannerLimits, PlanPolicy
from gateway.policy.store import Access, Policy, full_access
from gateway.principal import Principal
from gateway.settings import Settings
from gateway.validation_rules import limit_rules
from schema.catalog import Catalog
from schema.directives import is_strict
from schema.graphql_types import GatewaySchema, PageSizes, Visibility, build_schema

log = structlog.get_logger("fedgate.gateway")


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
    return GraphQLResponse(None, [graphql_error(error)], http_status=error.http_status)


class Gateway:
    """Schema, caches, planner and executor for one catalog and its departments' sources.

    ``policy`` is ``None`` only when authentication is switched off (development): then every caller
    sees everything.
    """

    def __init__(
        self, catalog: Catalog, settings: Settings, sources: GuardedAdapters, policy: Policy | None = None
    ) -> None:
        self.catalog = catalog
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
        await self.sources.open_all()
        self.statistics = await gather_statistics(self.sources.adapters)

    async def stop(self) -> None:
        await self.sources.close_all()

    def access_for(self, principal: Principal) -> Access:
        """What ``principal`` may read: the union of its scopes' grants (everything without a policy)."""
        return self.full_access if self.policy is None else self.policy.access(principal)

    def schema_for(self, access: Access) -> GatewaySchema:
        """The schema a caller with ``access`` sees: only what it may query, unless visibility is 'full'."""
        if self.policy is None or self.settings.policy.schema_visibility == "full":
            return self.schema
        schema = self._schemas.get(access.visibility_key)
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
        try:
            return await self._execute(request, principal)
        except FedgateError as error:
            return request_error(error)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal_error", incident=incident)
            return request_error(InternalError(incident))

    async def _execute(self, request: GraphQLRequest, principal: Principal) -> GraphQLResponse:
        prepared = self.prepare(request, principal)
        if isinstance(prepared, GraphQLResponse):
            return prepared
        context = FetchContext(subject_token=principal.token, subject=principal.subject)
        result = await self.executor.execute(prepared.bound, prepared.variables, context)
        extensions: dict[str, Any] = {}
        if result.departments:
            extensions["sources"] = sources_summary(result.departments)
        if self.policy is not None and principal.has_scope(self.settings.policy.explain_scope):
            extensions["plan"] = explain(prepared.bound, result.keys_moved)
        if prepared.strict and result.failed_departments:
            return _strict_failure(result, extensions)
        errors = list(result.errors)
        if prepared.bound.plan.has_introspection:
            errors.extend(_introspect(prepared, request, result.data))
        return GraphQLResponse(result.data, errors, extensions, statements=result.statements)

    def prepare(self, request: GraphQLRequest, principal: Principal) -> PreparedRequest | GraphQLResponse:
        """Everything up to execution: the caller's schema, the validated document, variables and plan.

        Returns the request-error response instead when the request cannot run. Raises a
        :class:`~gateway.errors.FedgateError` for a limit or access problem found while planning.
        """
        access = self.access_for(principal)
        schema = self.schema_for(access)
        parsed = self.documents.get(schema.key, schema.graphql, request.query)
        if isinstance(parsed, DocumentErrors):
            return GraphQLResponse(None, list(parsed.errors))
        operation = _select_operation(parsed.operations, request.operation_name)
        if isinstance(operation, GraphQLResponse):
            return operation
        if operation.operation is not OperationType.QUERY:
            return _not_a_query(operation, request)
        coerced = get_variable_values(
            schema.graphql, operation.variable_definitions or (), dict(request.variables or {}), max_errors=20
        )
        if isinstance(coerced, list):
            shown = (lambda text: text) if self.settings.graphql.suggestions else without_suggestions
            return GraphQLResponse(None, [coded_error(shown(e.message), BadUserInputError.code) for e in coerced])
        bound = self.plan(schema, access, parsed.document, operation, request, coerced)
        return PreparedRequest(schema, access, parsed.document, operation, coerced, bound, strict=is_strict(operation))

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
        if cached is not None:
            return cached
        planner = Planner(
            schema,
            self.sources.capabilities(),
            self.limits,
            policy=self._plan_policy(access),
            statistics=self.statistics,
        )
        bound = bind(planner.plan(document, operation, variables), self.sources)
        names = names | bound.plan.structural_variables
        self._structural[base] = names
        self._plans[(base, _frozen({name: variables.get(name) for name in sorted(names)}))] = bound
        return bound


def _strict_failure(result: PlanResult, extensions: dict[str, Any]) -> GraphQLResponse:
    """A ``@strict`` operation with failed departments: no data, one error per failed department."""
    failed = result.failed_departments
    errors = [outcome.strict_error() for outcome in failed]
    return GraphQLResponse(
        None, errors, extensions, statements=result.statements, http_status=strict_status(failed), strict_failure=True
    )


def _bad(code: str, message: str, **extensions: Any) -> GraphQLResponse:
    return GraphQLResponse(None, [coded_error(message, code, extensions=extensions)])


def _select_operation(
    operations: Mapping[str | None, OperationDefinitionNode], name: str | None
) -> OperationDefinitionNode | GraphQLResponse:
    if name is not None:
        operation = operations.get(name)
        if operation is None:
            return _bad(OPERATION_NOT_FOUND, f"the document has no operation named '{name}'")
        return operation
    if len(operations) != 1:
        return _bad(OPERATION_NAME_REQUIRED, "the document has several operations: name the one to run")
    return next(iter(operations.values()))


def _not_a_query(operation: OperationDefinitionNode, request: GraphQLRequest) -> GraphQLResponse:
    """fedgate's schema has only a query type: a mutation or subscription fails validation (the GraphQL
    specification's operation type existence), and a mutation sent with GET is HTTP 405 (GraphQL over HTTP)."""
    kind = operation.operation.value
    if request.safe_method and operation.operation is OperationType.MUTATION:
        return request_error(MethodNotAllowedError("a mutation cannot be sent with GET"))
    message = f"the schema has no {kind} type: fedgate is read-only"
    where = [get_location(operation.loc.source, operation.loc.start)] if operation.loc is not None else None
    return GraphQLResponse(None, [coded_error(message, GRAPHQL_VALIDATION_FAILED, locations=where)])


def _frozen(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple((key, _frozen(item)) for key, item in sorted(value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value  # type: ignore[no-any-return]


def _introspect(prepared: PreparedRequest, request: GraphQLRequest, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Answer ``__schema`` / ``__type`` root fields with graphql-core, from the caller's own schema."""
    schema, document, operation, plan = prepared.schema, prepared.document, prepared.operation, prepared.bound.plan
    query_type = schema.graphql.query_type
    assert query_type is not None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    wanted = {root.response_key for root in plan.roots if isinstance(root, Introspection)}
    fields = collect_fields(schema.graphql, fragments, dict(prepared.variables), query_type, operation.selection_set)
    selections = tuple(node for key, nodes in fields.items() if key in wanted for node in nodes)
    subset = DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=operation.operation,
                name=operation.name,
                variable_definitions=operation.variable_definitions,
                directives=(),
                selection_set=SelectionSetNode(selections=selections),
            ),
            *fragments.values(),
        )
    )
    result = execute(schema.graphql, subset, variable_values=dict(request.variables or {}))
    assert isinstance(result, ExecutionResult)
    for key in wanted:
        data[key] = (result.data or {}).get(key)
    return [dict(error.formatted) for error in result.errors or ()]
