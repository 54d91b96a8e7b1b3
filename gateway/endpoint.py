"""GraphQL over HTTP (the GraphQL-over-HTTP specification) at ``/graphql``.

* ``POST`` with ``Content-Type: application/json`` and a body ``{"query", "operationName", "variables",
  "extensions"}``, or a JSON array of such objects (a batch, up to ``graphql.max_batch_size``).
* ``GET`` with ``query``, ``operationName`` and ``variables`` (JSON) in the query string; a browser
  asking for HTML with no query gets GraphiQL. A mutation sent with GET is HTTP 405 with ``Allow: POST``
  whatever the media type (fedgate is read-only: over POST a mutation fails validation).
* Responses are ``application/graphql-response+json`` when the client accepts it (then a request that
  fails before execution gets HTTP 400, and a ``@strict`` operation whose departments failed gets 502,
  503 or 504 with ``"data": null``), otherwise ``application/json`` with HTTP 200 for any well-formed
  GraphQL request. Errors carry ``extensions.code``; nothing internal is ever echoed.
* Responses are never cached (``Cache-Control: no-store``): they hold personal data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import orjson
import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from gateway import graphiql
from gateway.error_format import graphql_error
from gateway.errors import (
    AuthError,
    AuthUnavailableError,
    BadRequestError,
    FedgateError,
    QueryLimit,
    QueryLimitError,
    RequestTooLargeError,
)
from gateway.metrics import Outcome
from gateway.principal import Principal
from gateway.request_telemetry import RequestTelemetry, Verdict, error_verdict, responses_verdict
from gateway.service import GraphQLRequest, GraphQLResponse
from gateway.settings import Settings
from gateway.tracing import NO_TRACING, Tracing

log = structlog.get_logger("fedgate.http")

#: Refusals of a request over a limit: answered only after ``graphql.limit_refusal_delay_ms``.
_SLOWED = frozenset({QueryLimitError.code, RequestTooLargeError.code})

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
SECURITY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}

Authenticate = Callable[[Request], Awaitable[Principal]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(body: Any) -> bytes:
    """JSON for responses: dates and datetimes in ISO 8601, decimals as strings."""
    return orjson.dumps(body, default=_default)


def error_body(error: FedgateError) -> dict[str, Any]:
    return {"errors": [graphql_error(error)]}


def json_response(body: Any, status: int, media_type: str = JSON) -> Response:
    """A JSON response with fedgate's security headers (never cached: it may hold personal data)."""
    return Response(dumps(body), status_code=status, media_type=media_type, headers=SECURITY_HEADERS)


def auth_refusal(error: AuthError, realm: str, media_type: str = JSON) -> Response:
    """The response refusing a request's credentials: the error, and its challenge or ``Retry-After``."""
    response = json_response(error_body(error), error.http_status, media_type)
    if isinstance(error, AuthUnavailableError):
        response.headers["retry-after"] = str(error.retry_after_seconds)
    else:
        response.headers["www-authenticate"] = error.challenge(realm)
    log.info("auth_refused", code=error.code, status=error.http_status)
    return response


class GraphQLService(Protocol):
    """What an endpoint answers with: the departments' :class:`~gateway.service.Gateway` at ``/graphql``, the
    audit's :class:`~gateway.audit_queries.AuditQueries` at ``/audit/graphql``."""

    def with_purpose(self, principal: Principal, headers: Mapping[str, str]) -> Principal:
        """``principal`` with the request's purpose, checked (a :class:`~gateway.errors.PurposeError` if not)."""
        ...

    def require_access(self, principal: Principal) -> object:
        """Raise an :class:`~gateway.errors.AuthError` unless ``principal`` may ask anything at all."""
        ...

    async def refused(self, principal: Principal, error: FedgateError, request: GraphQLRequest | None = None) -> None:
        """Record (for the audit) that an authenticated caller was refused."""
        ...

    async def execute(self, request: GraphQLRequest, principal: Principal) -> GraphQLResponse:
        """The answer to one GraphQL request."""
        ...


class GraphQLEndpoint:
    """A GraphQL route (``/graphql``, ``/audit/graphql``): HTTP in, the service's answer out."""

    def __init__(
        self,
        gateway: GraphQLService,
        settings: Settings,
        authenticate: Authenticate,
        *,
        name: str = "graphql",
        route: str = "/graphql",
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """``name`` is the endpoint's label in the metrics, ``route`` its path in its spans."""
        self.gateway = gateway
        self.settings = settings
        self.authenticate = authenticate
        self.telemetry = RequestTelemetry(name, route, tracing)
        self._refusal_delay = settings.graphql.limit_refusal_delay_ms / 1000

    async def handle(self, request: Request) -> Response:
        if request.method == "GET" and self._wants_graphiql(request):
            page = graphiql.render(self.settings.graphiql.assets_base)
            headers = {**SECURITY_HEADERS, "content-security-policy": page.content_security_policy}
            return HTMLResponse(page.html, headers=headers)
        with self.telemetry.observe(request) as observed:
            response, verdict = await self._answer(request)
            observed.answered(response.status_code, verdict)
            if verdict.code in _SLOWED and self._refusal_delay:
                # Refusing costs far less than answering, but a request's HTTP work is still a third of a small
                # query's: a client looping on documents over the limits gets one answer per connection
                # per delay, and the wait costs no CPU (the connection cap bounds the connections it holds).
                await asyncio.sleep(self._refusal_delay)
            return response

    async def _answer(self, request: Request) -> tuple[Response, Verdict]:
        """The response to a GraphQL request, and how it ended."""
        started = time.perf_counter()
        media_type = _response_media_type(request.headers.get("accept", ""))
        try:
            principal = await self.authenticate(request)
        except AuthError as error:
            return self._refuse(error, media_type or JSON), error_verdict(error)
        except FedgateError as error:
            return self._respond(error_body(error), error.http_status, media_type or JSON), error_verdict(error)
        try:
            principal = self.gateway.with_purpose(principal, request.headers)
            self.gateway.require_access(principal)
            payload = await self._payload(request)
            if not isinstance(payload, list):  # a malformed single request is an HTTP 400
                payload = _graphql_request(payload, safe_method=request.method == "GET")
        except AuthError as error:
            await self.gateway.refused(principal, error)  # an authenticated caller refused: on the record
            return self._refuse(error, media_type or JSON), error_verdict(error)
        except FedgateError as error:
            await self.gateway.refused(principal, error)
            return self._respond(error_body(error), error.http_status, media_type or JSON), error_verdict(error)
        if media_type is None:
            refusal = BadRequestError(f"cannot answer in the accepted media types; accept {GRAPHQL_RESPONSE} or {JSON}")
            return self._respond(error_body(refusal), 406, JSON), Verdict(Outcome.REFUSED, refusal.code)
        if isinstance(payload, list):
            responses = [await self._execute_one(item, principal) for item in payload]
            body: Any = [response.to_dict() for response in responses]
            status = 200
        else:
            response = await self._execute_one(payload, principal)
            responses = [response]
            body = response.to_dict()
            status = _status(response, media_type)
        self._log(request, principal, responses, status, started)
        answer = self._respond(body, status, media_type)
        if status == 405:
            answer.headers["allow"] = "POST"
        if status == 503 and not isinstance(payload, list):
            retry_after = _retry_after(responses[0])
            if retry_after is not None:
                answer.headers["retry-after"] = str(retry_after)
        return answer, responses_verdict(responses)

    def _refuse(self, error: AuthError, media_type: str) -> Response:
        return auth_refusal(error, self.settings.auth.realm, media_type)

    def _wants_graphiql(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return self.settings.graphiql.enabled and "text/html" in accept and "query" not in request.query_params

    async def _payload(self, request: Request) -> Any:
        if request.method == "GET":
            params = request.query_params
            payload: dict[str, Any] = {"query": params.get("query"), "operationName": params.get("operationName")}
            if "variables" in params:
                payload["variables"] = _json(params["variables"].encode(), "the 'variables' parameter")
            return payload
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise BadRequestError(f"POST requests must have Content-Type: {JSON}")
        body = _json(await self._body(request), "the request body")
        if isinstance(body, list):
            limit = self.settings.graphql.max_batch_size
            if not body:
                raise BadRequestError("a batch must hold at least one request")
            if len(body) > limit:
                raise QueryLimitError(f"a batch may hold at most {limit} requests", limit=QueryLimit.BATCH_SIZE)
            return body
        return body

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.server.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLargeError(f"the request body exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLargeError(f"the request body exceeds {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:  # gone, or cut off by server.body_timeout_seconds: the answer goes nowhere
            raise BadRequestError("the connection closed before the request body was complete") from None
        return b"".join(chunks)

    async def _execute_one(self, payload: Any, principal: Principal) -> GraphQLResponse:
        if isinstance(payload, GraphQLRequest):
            return await self.gateway.execute(payload, principal)
        try:
            request = _graphql_request(payload)
        except BadRequestError as error:
            return GraphQLResponse(None, error_body(error)["errors"])
        return await self.gateway.execute(request, principal)

    @staticmethod
    def _respond(body: Any, status: int, media_type: str) -> Response:
        return json_response(body, status, media_type)

    @staticmethod
    def _log(
        request: Request, principal: Principal, responses: list[GraphQLResponse], status: int, started: float
    ) -> None:
        if not log.is_enabled_for(logging.INFO):  # the line is not written: don't build it
            return
        statements: dict[str, int] = {}
        for response in responses:
            for department, count in response.statements.items():
                statements[department] = statements.get(department, 0) + count
        log.info(
            "graphql_request",
            method=request.method,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            subject=principal.subject,
            client=principal.client_id,
            statements=statements,
            errors=[error.get("extensions", {}).get("code") for r in responses for error in r.errors],
        )


def _status(response: GraphQLResponse, media_type: str) -> int:
    """HTTP status: with application/json a well-formed request gets 200 unless fedgate itself failed.

    A ``@strict`` failure (``"data": null``) gets the departments' 502/503/504 with
    application/graphql-response+json, which the GraphQL-over-HTTP specification allows for a null
    ``data``; with application/json it is 200, as that media type cannot tell a gateway's 5xx from a proxy's.
    A mutation sent with GET is 405 with either media type, as the specification requires.
    """
    if response.strict_failure:
        return response.http_status if media_type == GRAPHQL_RESPONSE else 200
    if not response.is_request_error:
        return 200
    if media_type == GRAPHQL_RESPONSE or response.http_status >= 500 or response.http_status == 405:
        return response.http_status
    return 200


def _retry_after(response: GraphQLResponse) -> int | None:
    """``Retry-After`` seconds for a 503: the longest ``retryAfter`` among its errors (open breakers)."""
    hints = [error.get("extensions", {}).get("retryAfter") for error in response.errors]
    seconds = [hint for hint in hints if isinstance(hint, int)]
    return max(seconds) if seconds else None


def _json(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON") from exc


def _graphql_request(payload: Any, *, safe_method: bool = False) -> GraphQLRequest:
    if not isinstance(payload, dict):
        raise BadRequestError("a GraphQL request must be a JSON object")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequestError("the request must have a 'query' string")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequestError("'operationName' must be a string or null")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequestError("'variables' must be an object or null")
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequestError("'extensions' must be an object or null")
    return GraphQLRequest(query, operation_name or None, variables, safe_method=safe_method)


def _response_media_type(accept: str) -> str | None:
    """The response media type for an ``Accept`` header (``None``: nothing acceptable)."""
    if not accept.strip():
        return JSON
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if GRAPHQL_RESPONSE in ranges:
        return GRAPHQL_RESPONSE
    if JSON in ranges or "application/*" in ranges or "*/*" in ranges:
        return JSON
    return None
