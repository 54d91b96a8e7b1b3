"""Request ids: every HTTP request gets one, every log line of the request and its audit event carry it.

A caller (or the proxy in front) may send ``X-Request-Id``; a well-formed one (:data:`PATTERN`: 1 to
:data:`MAX_LENGTH` letters, digits and ``.``, ``_``, ``:``, ``-``, starting with a letter or digit) is kept,
so one id follows a request through every hop; anything else is ignored and a new id (32 hex digits,
:func:`~gateway.unique_ids.new_request_id`) is made. The id is answered in the response's
``X-Request-Id``, held in a context variable for the request (:func:`current`: the audit reads it) and
bound into structlog's context, so every line logged while the request runs names it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.unique_ids import new_request_id

HEADER = "x-request-id"
MAX_LENGTH = 128
PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_LENGTH - 1}}}")

_REQUEST_ID: ContextVar[str | None] = ContextVar("fedgate_request_id", default=None)
_HEADER_BYTES = HEADER.encode()


def current() -> str | None:
    """The id of the request being served, if any."""
    return _REQUEST_ID.get()


def accepted(value: bytes | None) -> str:
    """The incoming header's value if well-formed, else a new id."""
    if value is not None:
        text = value.decode("latin-1")
        if PATTERN.fullmatch(text):
            return text
    return new_request_id()


def _incoming(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == _HEADER_BYTES:
            return bytes(value)
    return None


class RequestIds:
    """ASGI middleware: an id for each HTTP request, in the context while it runs and in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted(_incoming(scope))
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", ()) if name != _HEADER_BYTES]
                message["headers"] = [*headers, (_HEADER_BYTES, encoded)]
            await send(message)

        token = _REQUEST_ID.set(request_id)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            _REQUEST_ID.reset(token)
