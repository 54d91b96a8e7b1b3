"""Departments that offer a GraphQL API of their own (``kind: graphql``).

Each table maps to a root list field (``tables[].graphql``; dotted for a field inside a namespace object
such as ``council.cases``). A fetch POSTs one query document per page::

    query FedgateFetch($v0: [String!]!, $pageSize: Int!, $pageOffset: Int!) {
      council { cases(where: {nhsNumber: {in: $v0}}, limit: $pageSize, offset: $pageOffset) {
        caseId nhsNumber opened } }
    }

Values travel only as **variables**, declared with the types the catalog gives; the document holds
names. Pagination is ``offset`` (``limit``/``offset`` arguments until a short page) or ``relay``
(``first``/``after`` with ``edges { node }`` and ``pageInfo``). A response carrying ``errors`` fails the
fetch (``SOURCE_AUTH_FAILED`` when an error's ``extensions.code`` is ``UNAUTHENTICATED`` or
``FORBIDDEN``, else ``SOURCE_QUERY_FAILED``): a partial answer is never used. The errors' messages are
not logged (they can quote values); their count and codes are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from adapters.base import NO_CONTEXT, ColumnDescription, FetchContext, Row, TableDescription
from adapters.errors import SourceAuthError, SourceQueryError
from adapters.http_source import FetchBudget, HttpAdapter, HttpQuery
from adapters.http_values import at_path, graphql_value
from adapters.negotiation import Negotiated, Offer, Pushed, describe_pushed
from schema.catalog import Department, Table
from schema.endpoints import GraphQLArgument, GraphQLEndpoint, OffsetGraphQLPagination, RelayGraphQLPagination
from schema.http_sources import GraphQLSource
from schema.types import ColumnType

log = structlog.get_logger("fedgate.adapters.http")

_AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "UNAUTHORIZED"})
_SCALARS = {
    "String": ColumnType.STRING,
    "ID": ColumnType.STRING,
    "Int": ColumnType.INTEGER,
    "Float": ColumnType.FLOAT,
    "Boolean": ColumnType.BOOLEAN,
}
_TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
INTROSPECTION = f"{{ __schema {{ queryType {{ fields {{ name description type {{ {_TYPE_REF} }} }} }} }} }}"
_OBJECT_FIELDS = f"query($name: String!) {{ __type(name: $name) {{ fields {{ name type {{ {_TYPE_REF} }} }} }} }}"

Tree = dict[str, Any]


def named_type(reference: str) -> str:
    """``[String!]!`` → ``String``."""
    return reference.strip("[]!")


def _insert(tree: Tree, path: str, leaf: Any) -> None:
    *parents, last = path.split(".")
    node = tree
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = leaf


def _arguments(tree: Tree) -> str:
    """``{a: {b: "$v0"}}`` → ``a: {b: $v0}`` (leaves are variable references)."""
    return ", ".join(f"{name}: {_arguments_value(value)}" for name, value in tree.items())


def _arguments_value(value: Any) -> str:
    return "{" + _arguments(value) + "}" if isinstance(value, dict) else str(value)


def _selection(tree: Tree) -> str:
    return " ".join(f"{name} {{ {_selection(inner)} }}" if inner else name for name, inner in tree.items())


class GraphQLAdapter(HttpAdapter[GraphQLEndpoint]):
    """Another organisation's GraphQL endpoint."""

    kind = "graphql"

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(self.source, GraphQLSource)
        self.url = self.source.url

    def endpoint(self, table: Table) -> GraphQLEndpoint:
        if table.graphql is None:
            raise SourceQueryError(self.name, f"table '{table.name}' has no GraphQL field")
        return table.graphql

    def offers(self, endpoint: GraphQLEndpoint) -> list[Offer]:
        return [Offer(a.column, a.operator, a.argument, a.max_values, a) for a in endpoint.arguments]

    def fields(self, endpoint: GraphQLEndpoint) -> Mapping[str, str]:
        return endpoint.fields

    def document(self, prepared: HttpQuery[GraphQLEndpoint], pushed: Sequence[Pushed]) -> str:
        """The query document for these pushed filters: variables ``$v0…`` and the page's, no values."""
        endpoint = prepared.endpoint
        declarations: list[str] = []
        arguments: Tree = {}
        for index, item in enumerate(pushed):
            declared: GraphQLArgument = item.offer.declaration
            declarations.append(f"$v{index}: {declared.type}")
            _insert(arguments, declared.argument, f"$v{index}")
        pagination = endpoint.pagination
        selection: Tree = {}
        for column in prepared.residual.columns:
            _insert(selection, endpoint.fields.get(column.name, column.name), {})
        if isinstance(pagination, OffsetGraphQLPagination):
            declarations += ["$pageSize: Int!", "$pageOffset: Int!"]
            _insert(arguments, pagination.limit_argument, "$pageSize")
            _insert(arguments, pagination.offset_argument, "$pageOffset")
        elif isinstance(pagination, RelayGraphQLPagination):
            declarations += ["$pageSize: Int!", "$pageAfter: String"]
            _insert(arguments, pagination.first_argument, "$pageSize")
            _insert(arguments, pagination.after_argument, "$pageAfter")
            selection = {"edges": {"node": selection}, "pageInfo": {"hasNextPage": {}, "endCursor": {}}}
        *namespaces, field = endpoint.field.split(".")
        body = f"{field}({_arguments(arguments)})" if arguments else field
        body = f"{body} {{ {_selection(selection)} }}"
        for namespace in reversed(namespaces):
            body = f"{namespace} {{ {body} }}"
        header = f"({', '.join(declarations)})" if declarations else ""
        return f"query FedgateFetch{header} {{ {body} }}"

    def describe(self, endpoint: GraphQLEndpoint, negotiated: Sequence[Negotiated]) -> str:
        shown = ", ".join(f"{offer.key}: {value}" for offer, value in describe_pushed(negotiated))
        paged = "" if endpoint.pagination.style == "none" else f" (pages: {endpoint.pagination.style})"
        return f"POST {self.url} {{ {endpoint.field}({shown}) }}{paged}"

    @staticmethod
    def _variables(pushed: Sequence[Pushed]) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        for index, item in enumerate(pushed):
            declared: GraphQLArgument = item.offer.declaration
            name = named_type(declared.type)
            encoded = [graphql_value(value, name) for value in item.values]
            variables[f"v{index}"] = encoded if declared.type.startswith("[") else encoded[0]
        return variables

    async def _post(
        self, document: str, variables: Mapping[str, Any], context: FetchContext, budget: FetchBudget
    ) -> Any:
        response = await self.call(
            "POST",
            self.url,
            context=context,
            budget=budget,
            endpoint="graphql",
            json={"query": document, "variables": dict(variables)},
        )
        try:
            return self._data(response.body)
        except SourceAuthError:
            self.source_credential.invalidate(context)
            raise

    def _data(self, body: Any) -> Any:
        if not isinstance(body, dict):
            raise self.transport.bad_response("a GraphQL response that is not an object")
        errors = body.get("errors")
        if errors:
            codes = sorted(
                {
                    str(error.get("extensions", {}).get("code"))
                    for error in (errors if isinstance(errors, list) else [])
                    if isinstance(error, dict) and isinstance(error.get("extensions"), dict)
                }
            )
            log.warning("graphql_source_errors", department=self.name, count=len(errors), codes=codes)
            if _AUTH_CODES.intersection(codes):
                raise SourceAuthError(self.name, f"department '{self.name}' refused fedgate's credential")
            raise SourceQueryError(self.name, f"department '{self.name}' rejected the query")
        data = body.get("data")
        if not isinstance(data, dict):
            raise self.transport.bad_response("a GraphQL response without data")
        return data

    async def fetch_rows(
        self, prepared: HttpQuery[GraphQLEndpoint], pushed: Sequence[Pushed], context: FetchContext, budget: FetchBudget
    ) -> list[Row]:
        endpoint = prepared.endpoint
        pagination = endpoint.pagination
        document = self.document(prepared, pushed)
        variables = self._variables(pushed)
        rows: list[Row] = []

        def take(items: Any) -> int:
            if not isinstance(items, list):
                raise self.transport.bad_response(f"no list of rows for {prepared.table.name}")
            budget.add_rows(len(items))
            rows.extend(prepared.parser.parse(items, department=self.name))
            return len(items)

        if isinstance(pagination, OffsetGraphQLPagination):
            offset = 0
            while True:
                data = await self._post(
                    document, {**variables, "pageSize": pagination.size, "pageOffset": offset}, context, budget
                )
                if take(at_path(data, endpoint.field)) < pagination.size:
                    return rows
                offset += pagination.size
        if isinstance(pagination, RelayGraphQLPagination):
            after: str | None = None
            while True:
                data = await self._post(
                    document, {**variables, "pageSize": pagination.size, "pageAfter": after}, context, budget
                )
                connection = at_path(data, endpoint.field)
                edges = at_path(connection, "edges")
                if not isinstance(edges, list) or not all(isinstance(edge, dict) for edge in edges):
                    raise self.transport.bad_response(f"no connection of {prepared.table.name}")
                take([edge.get("node") for edge in edges])
                info = at_path(connection, "pageInfo")
                cursor = at_path(info, "endCursor")
                if at_path(info, "hasNextPage") is not True or not isinstance(cursor, str) or not cursor:
                    return rows
                after = cursor
        take(at_path(await self._post(document, variables, context, budget), endpoint.field))
        return rows

    async def health(self) -> None:
        response = await self.check("POST", self.url, endpoint="graphql", json={"query": "{ __typename }"})
        if response is not None:
            self._data(response.body)  # a GraphQL error (say, UNAUTHENTICATED) is not healthy

    async def introspect(self) -> Sequence[TableDescription]:
        """The remote schema's root fields that return lists of objects, as tables of their scalar fields.

        Needs a credential that works without a caller (not token exchange). Primary keys are guessed
        (a field named ``id``) and every mapping should be reviewed.
        """
        timeout = self.source.timeout_seconds
        budget = FetchBudget(self.name, self.source, timeout)
        schema = await self._post(INTROSPECTION, {}, NO_CONTEXT, budget)
        try:
            tables = []
            for field in at_path(schema, "__schema.queryType.fields"):
                target = _list_of_object(field["type"])
                if target is None:
                    continue
                described = await self._post(_OBJECT_FIELDS, {"name": target}, NO_CONTEXT, budget)
                columns = []
                for column in at_path(described, "__type.fields"):
                    scalar, nullable = _scalar(column["type"])
                    if scalar is not None:
                        columns.append(ColumnDescription(column["name"], scalar, _SCALARS.get(scalar), nullable))
                if columns:
                    keys = tuple(c.name for c in columns if c.name == "id")
                    tables.append(
                        TableDescription(field["name"], tuple(columns), keys, (), field.get("description") or "")
                    )
        except (KeyError, TypeError, AttributeError) as exc:
            raise self.transport.bad_response("an introspection result fedgate cannot read") from exc
        return tables


def _unwrap(reference: Any) -> tuple[list[str], str | None]:
    """The kinds wrapping a type reference (``NON_NULL``, ``LIST``) and the named type inside."""
    kinds: list[str] = []
    while isinstance(reference, dict):
        if reference.get("name"):
            kinds.append(str(reference.get("kind")))
            return kinds, str(reference["name"])
        kinds.append(str(reference.get("kind")))
        reference = reference.get("ofType")
    return kinds, None


def _list_of_object(reference: Any) -> str | None:
    kinds, name = _unwrap(reference)
    return name if "LIST" in kinds and kinds[-1] == "OBJECT" else None


def _scalar(reference: Any) -> tuple[str | None, bool]:
    kinds, name = _unwrap(reference)
    if kinds[-1:] != ["SCALAR"] or "LIST" in kinds:
        return None, True
    return name, kinds[0] != "NON_NULL"
