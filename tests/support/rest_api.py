"""A configurable REST API for tests, served for real on loopback (tests/support/servers.py::serving).

It serves tables of canonical Python rows as JSON with any of the pagination styles fedgate supports,
applies the filter parameters it is told about (or ignores some, as a careless API would), and can be
made slow, failing, rate-limited, malformed, oversized, compressed or strict about credentials. Every request is
recorded (path, query parameters, headers) so tests can check what fedgate sent, and what it did not.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from schema.types import ColumnType

#: How the API applies a filter parameter. ``ieq`` is a case-insensitive (looser) equality.
FilterOp = str


def to_json(value: Any) -> Any:
    """A canonical value as this API writes it: decimals as numbers, datetimes ISO-8601 with ``Z``."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def parse_param(text: str, kind: ColumnType) -> Any:
    """A query-string value read back into the column's type (as the real API would)."""
    if kind is ColumnType.INTEGER:
        return int(text)
    if kind is ColumnType.FLOAT:
        return float(text)
    if kind is ColumnType.DECIMAL:
        return Decimal(text)
    if kind is ColumnType.BOOLEAN:
        return {"true": True, "false": False}[text]
    if kind is ColumnType.DATE:
        return dt.date.fromisoformat(text)
    if kind is ColumnType.DATETIME:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


@dataclass
class Filter:
    """A query parameter the API understands: ``column op value`` (``in``: repeated or comma-separated)."""

    column: str
    op: FilterOp = "eq"
    comma: bool = False
    #: Accepted but not applied, as a careless API would.
    ignored: bool = False


@dataclass
class Table:
    """One endpoint's rows and how it serves them."""

    rows: list[dict[str, Any]]
    types: dict[str, ColumnType]
    key: str
    pagination: str = "none"  # none, page, offset, cursor, link
    wrap: str | None = None  # the body's key holding the rows (None: the body is the list)
    filters: dict[str, Filter] = field(default_factory=dict)
    #: Row → JSON object (renames, nesting, extra fields); default: every column as is.
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def json_row(self, row: dict[str, Any]) -> dict[str, Any]:
        shaped = self.shape(row) if self.shape else dict(row)
        return {name: to_json(value) if not isinstance(value, dict) else value for name, value in shaped.items()}


@dataclass
class Recorded:
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass
class Behaviour:
    """What the API does wrong, if anything (reset between tests with :meth:`RestApi.reset`)."""

    delay: float = 0.0
    status: int | None = None
    raw_body: bytes | None = None
    ignored: set[str] = field(default_factory=set)
    #: Checks the Authorization header (and the path asked for); False → 401.
    authorize: Callable[[str | None, str], bool] | None = None
    #: Each row padded with this many bytes of junk (oversized bodies).
    padding: int = 0
    #: A next link to another origin (link pagination).
    foreign_next: bool = False
    #: Announce no Content-Length and stream the body in pieces (the cap must hold while streaming).
    chunked: bool = False
    #: The ``Content-Encoding`` of ``raw_body`` (which is then already compressed: a gzip bomb, say).
    content_encoding: str | None = None


class RestApi:
    """The API: ``tables`` by path (``/clinic/people``)."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables
        self.log: list[Recorded] = []
        self.behaviour = Behaviour()
        #: Requests being served right now, and the most at once.
        self.in_flight = 0
        self.most_in_flight = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET"])])

    def reset(self) -> None:
        self.log.clear()
        self.behaviour = Behaviour()
        self.most_in_flight = 0

    def requests_to(self, path: str) -> list[Recorded]:
        return [entry for entry in self.log if entry.path == path]

    async def _serve(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        params = list(request.query_params.multi_items())
        self.log.append(Recorded(request.method, path, params, dict(request.headers)))
        behaviour = self.behaviour
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.authorize is not None and not behaviour.authorize(request.headers.get("authorization"), path):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if behaviour.status is not None:
            return JSONResponse({"error": "failing"}, status_code=behaviour.status)
        if behaviour.raw_body is not None:
            coding = {"content-encoding": behaviour.content_encoding} if behaviour.content_encoding else None
            return Response(behaviour.raw_body, media_type="application/json", headers=coding)
        table = self.tables.get(path)
        if table is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        rows = [row for row in table.rows if self._matches(table, row, params)]
        body, headers = self._page(table, rows, request, params)
        if behaviour.padding:
            for item in body if isinstance(body, list) else body[table.wrap]:
                item["_padding"] = "x" * behaviour.padding
        content = json.dumps(body).encode()
        if behaviour.chunked:

            async def pieces() -> Any:
                for start in range(0, len(content), 1024):
                    yield content[start : start + 1024]

            return StreamingResponse(pieces(), media_type="application/json", headers=headers)
        return Response(content, media_type="application/json", headers=headers)

    def _matches(self, table: Table, row: dict[str, Any], params: list[tuple[str, str]]) -> bool:
        for name, declared in table.filters.items():
            if declared.ignored or name in self.behaviour.ignored:
                continue
            texts = [value for key, value in params if key == name]
            if not texts:
                continue
            if declared.comma:
                texts = [part for text in texts for part in text.split(",")]
            kind = table.types[declared.column]
            value = row[declared.column]
            if value is None:
                return False
            wanted = [parse_param(text, kind) for text in texts]
            op = declared.op
            if op == "in" and value not in wanted:
                return False
            if op == "eq" and value != wanted[0]:
                return False
            if op == "ieq" and str(value).casefold() != str(wanted[0]).casefold():
                return False
            checks = {
                "gt": value > wanted[0],
                "gte": value >= wanted[0],
                "lt": value < wanted[0],
                "lte": value <= wanted[0],
            }
            if op in checks and not checks[op]:
                return False
        return True

    def _page(
        self, table: Table, rows: list[dict[str, Any]], request: Request, params: list[tuple[str, str]]
    ) -> tuple[Any, dict[str, str]]:
        query = dict(params)
        headers: dict[str, str] = {}
        style = table.pagination
        if style == "page":
            size, number = int(query.get("page_size", "100")), int(query.get("page", "1"))
            chosen = rows[(number - 1) * size : number * size]
        elif style == "offset":
            size, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
            chosen = rows[offset : offset + size]
        elif style == "cursor":
            size = int(query.get("limit", "100"))
            start = int(base64.b64decode(query["cursor"]).decode()) if "cursor" in query else 0
            chosen = rows[start : start + size]
            following = start + size
            cursor = base64.b64encode(str(following).encode()).decode() if following < len(rows) else None
            items = [table.json_row(row) for row in chosen]
            return {"items": items, "next": cursor, "total": len(rows)}, headers
        elif style == "link":
            size, number = int(query.get("per_page", "100")), int(query.get("p", "1"))
            chosen = rows[(number - 1) * size : number * size]
            if number * size < len(rows):
                following = request.url.include_query_params(p=str(number + 1))
                if self.behaviour.foreign_next:
                    following = following.replace(hostname="localhost")
                    headers["link"] = f'<{following}>; rel="next"'
                else:
                    headers["link"] = f'<{following.path}?{following.query}>; rel="next", </docs>; rel="help"'
        else:
            chosen = rows
        items = [table.json_row(row) for row in chosen]
        return ({table.wrap: items, "count": len(items)} if table.wrap else items), headers
