"""Departments that offer a REST API (``kind: rest``).

Each table maps to an endpoint under ``base_url`` (``tables[].rest``: path, where the rows are in the
body, pagination, filter parameters, field paths). A fetch is ``GET <base_url><path>?<pushed filters>``
followed page by page:

* ``page`` / ``offset``: the next page until one comes back with fewer rows than asked for;
* ``cursor``: the cursor found at ``next_cursor`` in the body, sent back as ``cursor_param``, until absent;
* ``link``: RFC 8288 ``Link: <…>; rel="next"``, followed only on the origin of ``base_url`` (a link
  elsewhere fails the fetch rather than send fedgate's credential to another server).

Filter values are written with :func:`adapters.http_values.query_value`; an ``in`` filter repeats the
parameter (``?id=a&id=b``) or joins the values with commas (a value holding a comma is then not pushed).
A REST API cannot describe its tables: :meth:`RestAdapter.introspect` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.base import FetchContext, Row, TableDescription
from adapters.errors import SourceQueryError
from adapters.http_source import FetchBudget, HttpAdapter, HttpQuery
from adapters.http_transport import JsonResponse
from adapters.http_values import at_path, is_missing, query_value
from adapters.negotiation import Negotiated, Offer, Pushed, describe_pushed
from schema.catalog import Department, Table
from schema.endpoints import (
    CursorPagination,
    LinkPagination,
    OffsetPagination,
    PageNumberPagination,
    RestEndpoint,
    RestFilter,
)
from schema.http_sources import RestSource

Params = list[tuple[str, str]]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class RestAdapter(HttpAdapter[RestEndpoint]):
    """A department's REST API."""

    kind = "rest"

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(self.source, RestSource)
        self.base_url = self.source.base_url.rstrip("/")
        self._origin = _origin(httpx.URL(self.source.base_url))

    def endpoint(self, table: Table) -> RestEndpoint:
        if table.rest is None:
            raise SourceQueryError(self.name, f"table '{table.name}' has no REST endpoint")
        return table.rest

    def offers(self, endpoint: RestEndpoint) -> list[Offer]:
        return [Offer(f.column, f.operator, f.param, f.max_values, f) for f in endpoint.filters]

    def fields(self, endpoint: RestEndpoint) -> Mapping[str, str]:
        return endpoint.fields

    def accepts(self, offer: Offer, values: Sequence[Any]) -> bool:
        declared: RestFilter = offer.declaration
        if offer.operator == "in" and declared.list_style == "comma":
            return all("," not in query_value(value) for value in values)
        return True

    def describe(self, endpoint: RestEndpoint, negotiated: Sequence[Negotiated]) -> str:
        shown = [f"{offer.key}={value}" for offer, value in describe_pushed(negotiated)]
        shown += [f"{name}={value}" for name, value in self._page_params(endpoint, "{page}")]
        query = "?" + "&".join(shown) if shown else ""
        paged = "" if endpoint.pagination.style == "none" else f" (pages: {endpoint.pagination.style})"
        return f"GET {endpoint.path}{query}{paged}"

    @staticmethod
    def _page_params(endpoint: RestEndpoint, position: str, size: int | None = None) -> Params:
        """The pagination parameters of the first request (``position`` stands for the page or offset)."""
        pagination = endpoint.pagination
        if isinstance(pagination, PageNumberPagination):
            return [(pagination.page_param, position), (pagination.size_param, str(size or pagination.size))]
        if isinstance(pagination, OffsetPagination):
            return [(pagination.offset_param, position), (pagination.limit_param, str(size or pagination.size))]
        if isinstance(pagination, CursorPagination | LinkPagination) and pagination.size_param:
            return [(pagination.size_param, str(size or pagination.size))]
        return []

    @staticmethod
    def _filter_params(pushed: Sequence[Pushed]) -> Params:
        params: Params = []
        for item in pushed:
            declared: RestFilter = item.offer.declaration
            texts = [query_value(value) for value in item.values]
            if declared.operator == "in" and declared.list_style == "comma":
                params.append((declared.param, ",".join(texts)))
            else:
                params.extend((declared.param, text) for text in texts)
        return params

    async def fetch_rows(
        self, prepared: HttpQuery[RestEndpoint], pushed: Sequence[Pushed], context: FetchContext, budget: FetchBudget
    ) -> list[Row]:
        endpoint = prepared.endpoint
        pagination = endpoint.pagination
        url = self.base_url + endpoint.path
        params = self._filter_params(pushed)
        rows: list[Row] = []

        async def page(target: str | httpx.URL, query: Params | None) -> tuple[JsonResponse, int]:
            response = await self.call(
                "GET", str(target), context=context, budget=budget, endpoint=endpoint.path, params=query
            )
            items = at_path(response.body, endpoint.rows)
            if not isinstance(items, list):
                raise self.transport.bad_response(f"no list of rows for {prepared.table.name}")
            budget.add_rows(len(items))
            rows.extend(prepared.parser.parse(items, department=self.name))
            return response, len(items)

        if isinstance(pagination, PageNumberPagination | OffsetPagination):
            is_page = isinstance(pagination, PageNumberPagination)
            position = pagination.first_page if isinstance(pagination, PageNumberPagination) else 0
            while True:
                _, count = await page(url, params + self._page_params(endpoint, str(position)))
                if count < pagination.size:
                    return rows
                position += 1 if is_page else pagination.size
        seen: set[str] = set()  # a cursor or link seen before would page forever
        if isinstance(pagination, CursorPagination):
            cursor: str | None = None
            while True:
                query = params + self._page_params(endpoint, "")
                if cursor is not None:
                    query.append((pagination.cursor_param, cursor))
                response, _ = await page(url, query)
                cursor = self._next_cursor(response, pagination)
                if cursor is None:
                    return rows
                if cursor in seen:
                    raise self.transport.bad_response("a next-page cursor that goes round in circles")
                seen.add(cursor)
        if isinstance(pagination, LinkPagination):
            target: str | httpx.URL = url
            query_or_none: Params | None = params + self._page_params(endpoint, "")
            while True:
                response, _ = await page(target, query_or_none)
                following = response.links.get("next")
                if not following:
                    return rows
                target = response.url.join(following)
                if _origin(target) != self._origin:
                    raise self.transport.bad_response("a next page on another server")
                if str(target) in seen:
                    raise self.transport.bad_response("next-page links that go round in circles")
                seen.add(str(target))
                query_or_none = None
        await page(url, params)
        return rows

    def _next_cursor(self, response: JsonResponse, pagination: CursorPagination) -> str | None:
        value = at_path(response.body, pagination.next_cursor)
        if is_missing(value) or value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.transport.bad_response("a next-page cursor that is not text")
        return str(value)

    async def health(self) -> None:
        table = self.department.tables[0]
        endpoint = self.endpoint(table)
        position = str(endpoint.pagination.first_page) if isinstance(endpoint.pagination, PageNumberPagination) else "0"
        await self.check(
            "GET",
            self.base_url + endpoint.path,
            endpoint=endpoint.path,
            params=self._page_params(endpoint, position, 1),
        )

    async def introspect(self) -> Sequence[TableDescription]:
        raise SourceQueryError(
            self.name,
            f"department '{self.name}' is a REST API, which cannot describe its tables: "
            "write each table's columns and its 'rest' mapping in the catalog by hand",
        )
