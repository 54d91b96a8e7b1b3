"""How a table of an HTTP department maps onto its API (``tables[].rest`` / ``tables[].graphql``).

A mapping says where the rows are, how to page through them, which of the table's columns each JSON
field fills, and which filters the API can apply itself (pushdown). A pushed filter is an
optimisation only: fedgate applies every filter again to the rows it receives, so an API that ignores a
parameter costs bandwidth, never correctness. An API's filter must therefore be *exact or looser* than
fedgate's (case-insensitive equality is fine; a stricter match is not).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schema.models import StrictModel

#: Operators a filter parameter can implement: equality, a set of values, and ranges (numbers and dates only).
Operator = Literal["eq", "in", "gt", "gte", "lt", "lte"]
JsonPath = Annotated[str, StringConstraints(pattern=r"^([A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*)?$")]
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\[\]-]+$")]
GraphQLPath = Annotated[str, StringConstraints(pattern=r"^[_A-Za-z][_0-9A-Za-z]*(\.[_A-Za-z][_0-9A-Za-z]*)*$")]
#: Rows asked for per request to the API.
PageSize = Annotated[int, Field(ge=1, le=10_000)]
GraphQLTypeRef = Annotated[str, StringConstraints(pattern=r"^\[?[_A-Za-z][_0-9A-Za-z]*!?\]?!?$")]


class NoPagination(StrictModel):
    """The endpoint returns every matching row in one response."""

    style: Literal["none"]


class PageNumberPagination(StrictModel):
    """``?page=1&page_size=100``, then page 2... until a page has fewer rows than asked for."""

    style: Literal["page"]
    page_param: ParamName = "page"
    size_param: ParamName = "page_size"
    size: PageSize = 100
    first_page: int = Field(1, ge=0)


class OffsetPagination(StrictModel):
    """``?offset=0&limit=100``, then offset 100... until a page has fewer rows than asked for."""

    style: Literal["offset"]
    offset_param: ParamName = "offset"
    limit_param: ParamName = "limit"
    size: PageSize = 100


class CursorPagination(StrictModel):
    """The response carries the next page's cursor (``next_cursor``); it is sent back as ``cursor_param``."""

    style: Literal["cursor"]
    cursor_param: ParamName = "cursor"
    next_cursor: JsonPath = Field("next_cursor", description="Where the response holds the next cursor.")
    size_param: ParamName | None = None
    size: PageSize = 100


class LinkPagination(StrictModel):
    """RFC 8288 ``Link: <...>; rel="next"`` headers, followed on the same origin only."""

    style: Literal["link"]
    size_param: ParamName | None = None
    size: PageSize = 100


RestPagination = Annotated[
    NoPagination | PageNumberPagination | OffsetPagination | CursorPagination | LinkPagination,
    Field(discriminator="style"),
]


class RestFilter(StrictModel):
    """A query parameter the API filters on: ``column operator value`` becomes ``param=value``."""

    column: str
    operator: Operator = "eq"
    param: ParamName
    list_style: Literal["repeat", "comma"] = Field(
        "repeat", description="For 'in': ?p=a&p=b (repeat) or ?p=a,b (comma)."
    )
    max_values: int = Field(100, ge=1, le=10_000, description="For 'in': values per request; more are chunked.")


class RestEndpoint(StrictModel):
    """A REST endpoint serving one table's rows as JSON."""

    path: str = Field(pattern=r"^/[^\s?#]*$", description="Path under the source's base_url.")
    rows: JsonPath = Field("", description="Where the row array is in the body; empty: the body is the array.")
    pagination: RestPagination = Field(default_factory=lambda: NoPagination(style="none"))
    filters: list[RestFilter] = Field(default_factory=list)
    fields: dict[str, JsonPath] = Field(
        default_factory=dict, description="Column → JSON field (dotted path) where they differ."
    )


class GraphQLArgument(StrictModel):
    """An argument of the remote field that filters: ``column operator value`` sets ``argument``
    (a dotted path into input objects, e.g. ``where.uprn.eq``) to a variable of GraphQL ``type``."""

    column: str
    operator: Operator = "eq"
    argument: GraphQLPath
    type: GraphQLTypeRef = Field(description="The GraphQL type of the variable, e.g. String! or [String!]!.")
    max_values: int = Field(100, ge=1, le=10_000, description="For 'in': values per request; more are chunked.")


class NoGraphQLPagination(StrictModel):
    """The field returns every matching row in one response."""

    style: Literal["none"]


class OffsetGraphQLPagination(StrictModel):
    """``field(limit: 100, offset: 0)`` and so on, until a page comes back short."""

    style: Literal["offset"]
    limit_argument: GraphQLPath = "limit"
    offset_argument: GraphQLPath = "offset"
    size: PageSize = 100


class RelayGraphQLPagination(StrictModel):
    """A Relay connection: ``field(first: 100, after: $cursor) { edges { node { ... } } pageInfo { ... } }``."""

    style: Literal["relay"]
    first_argument: GraphQLPath = "first"
    after_argument: GraphQLPath = "after"
    size: PageSize = 100


GraphQLPagination = Annotated[
    NoGraphQLPagination | OffsetGraphQLPagination | RelayGraphQLPagination, Field(discriminator="style")
]


class GraphQLEndpoint(StrictModel):
    """A root field of the remote schema returning one table's rows."""

    field: GraphQLPath = Field(description="Root query field (dotted for a field inside a namespace).")
    pagination: GraphQLPagination = Field(default_factory=lambda: NoGraphQLPagination(style="none"))
    arguments: list[GraphQLArgument] = Field(default_factory=list)
    fields: dict[str, GraphQLPath] = Field(
        default_factory=dict, description="Column → remote field (dotted path) where they differ."
    )
