"""Every HTTP connection fedgate serves has a deadline for each phase of a request, and there is a cap on them.

uvicorn (with httptools) closes a kept-alive connection that idles after a response, and nothing else: a
client that connects and sends nothing, or half its headers, or its headers and half its body, holds its
connection (and, once its headers are in, a request task) for ever; httptools buffers headers of any length;
and ``limit_concurrency`` answers 503 only once a request's headers are complete, so slow clients pile up and
then keep everyone else out. This protocol adds what Envoy and Apollo Router have, as settings (``server.*``,
in ``gateway/settings.py``; docs/deployment.md lists them):

* **headers**: from the connection (or, on a kept-alive connection, from a later request's first byte) to
  the end of the headers, ``header_timeout_seconds``; then the connection is closed (there is nothing to
  answer yet). Past ``max_header_bytes`` of request line and headers: ``431 REQUEST_HEADERS_TOO_LARGE``;
* **body**: from the end of the headers to the end of the body, ``body_timeout_seconds``; then fedgate
  answers ``408 REQUEST_TIMEOUT`` if no response has begun, and closes the connection. The application
  sees the client disconnect (its ``receive()`` says ``http.disconnect``), so its slot is freed at once;
* **idle**: between requests on a kept-alive connection, ``keep_alive_seconds`` (uvicorn's own timer);
* **connections**: at most ``max_connections`` open in one process. A new connection over the cap closes
  the one that has waited longest without a request in progress (new, or idle between requests), so slow
  clients cannot keep a normal one out; if every connection has a request in progress, the new one is closed.

Each timeout is a deadline for the phase, not for each read: a client sending a byte a second gains
nothing. After a 408 or 431 fedgate closes its side, drops what the client still sends for up to
``LINGER_SECONDS`` and then closes (closing with unread bytes would reset the connection and could lose the
answer). Closed connections are counted and logged at most every ``REPORT_SECONDS`` (a flood of slow
clients is one warning, not one line each).

uvicorn is given this protocol as its ``http`` class (a documented option) through :class:`ServerConfig`;
every worker of ``fedgate serve --workers N`` gets the same configuration and so the same protocol. Why
uvicorn and not another server: docs/performance.md (``bench.servers``).
"""

from __future__ import annotations

import asyncio
import atexit
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.endpoint import SECURITY_HEADERS, dumps, error_body
from gateway.errors import RequestHeadersTooLargeError, RequestTimeoutError
from gateway.settings import ServerSettings

log = structlog.get_logger("fedgate.connections")

#: At most one ``connections_closed`` warning per this many seconds and process.
REPORT_SECONDS = 10.0
#: After a 408 or 431, how long the client's further bytes are read and dropped before the connection closes
#: (closing with unread bytes would reset the connection, and the client could lose the answer).
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    """The deadlines and the cap every connection of one server gets (from ``server.*``)."""

    header_timeout: float
    body_timeout: float
    keep_alive: int
    max_connections: int
    max_header_bytes: int

    @classmethod
    def from_settings(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            server.header_timeout_seconds,
            server.body_timeout_seconds,
            server.keep_alive_seconds,
            server.max_connections,
            server.max_header_bytes,
        )


@dataclass
class ClosedConnections:
    """Connections this process closed because of a limit: the first at once, then what followed as one
    warning per ``REPORT_SECONDS`` (a flood of slow clients is a few lines, not one each)."""

    counts: dict[str, int] = field(default_factory=dict)
    reported_at: float = float("-inf")
    report_due: bool = False
    reported_at_exit: bool = False

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.report_due:
            return
        wait = self.reported_at + REPORT_SECONDS - time.monotonic()
        if wait <= 0:
            self.report()
        else:
            self.report_due = True
            asyncio.get_running_loop().call_later(wait, self.report)
            if not self.reported_at_exit:  # what is still due when the process stops is reported as it exits
                self.reported_at_exit = True
                atexit.register(self.report)

    def report(self) -> None:
        self.report_due = False
        if not self.counts:
            return
        log.warning("connections_closed", reasons=self.counts, detail="slow or surplus clients were cut off")
        self.counts = {}
        self.reported_at = time.monotonic()


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration, carrying the limits to :class:`GuardedProtocol` (which is given the config)."""

    def __init__(self, app: ASGIApp | str, limits: ConnectionLimits, **options: Any) -> None:
        super().__init__(app, http=GuardedProtocol, timeout_keep_alive=limits.keep_alive, **options)
        self.limits = limits
        self.closed = ClosedConnections()
        #: Open connections with no request in progress (new, or idle between requests), oldest first.
        self.waiting: dict[GuardedProtocol, None] = {}
        body = error_body(
            RequestTimeoutError(f"the request body did not arrive within {limits.body_timeout:g} seconds")
        )
        self.request_timeout_response = _response(408, "Request Timeout", dumps(body))
        too_large = RequestHeadersTooLargeError(f"the request line and headers exceed {limits.max_header_bytes} bytes")
        self.headers_too_large_response = _response(
            431, "Request Header Fields Too Large", dumps(error_body(too_large))
        )

    def make_room(self) -> bool:
        """Close the connection that has waited longest without a request in progress; ``False`` if none has."""
        if not self.waiting:
            return False
        oldest = next(iter(self.waiting))
        del self.waiting[oldest]
        oldest.close_waiting()
        return True


def _response(status: int, reason: str, body: bytes) -> bytes:
    headers = {**SECURITY_HEADERS, "content-type": "application/json", "content-length": str(len(body))}
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join([*lines, "connection: close", "", ""])).encode("ascii") + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each phase of a request and a cap on connections.

    A phase's deadline is a number (the loop's time); one timer per connection checks it and, if the phase
    has moved on, sleeps until the current deadline. So a kept-alive connection's requests set no timer each:
    the checks cost a timer every ``header_timeout`` seconds, not two per request.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = cast(ServerConfig, config)
        self.late: Callable[[], None] | None = None  # what to do when the current phase's deadline passes
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.in_headers = True  # the next bytes belong to a request line or headers
        self.header_bytes = 0
        self.lingering = False  # answered and closing: further bytes are dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.guard.limits.max_connections and not self.guard.make_room():
            self.guard.closed.count("over_max_connections")
            self.transport.close()
            return
        self.start_phase(self.guard.limits.header_timeout, self.headers_late)
        self.guard.waiting[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.late = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.guard.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        counting = self.in_headers  # a read that begins in the headers counts whole (at most one read too many)
        if counting:
            self.header_bytes += len(data)
        super().data_received(data)
        if counting and self.in_headers and self.header_bytes > self.guard.limits.max_header_bytes:
            self.headers_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.late is None:  # a later request on a kept-alive connection: its headers' time starts now
            self.start_phase(self.guard.limits.header_timeout, self.headers_late)

    def on_headers_complete(self) -> None:
        self.in_headers = False
        self.header_bytes = 0
        self.guard.waiting.pop(self, None)
        self.start_phase(self.guard.limits.body_timeout, self.body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.late = None
        self.in_headers = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle, waiting for the next request (none was pipelined)
            self.guard.waiting[self] = None

    def start_phase(self, seconds: float, late: Callable[[], None]) -> None:
        """The phase that has begun must end within ``seconds``, or ``late`` is called."""
        self.late = late
        self.deadline = self.loop.time() + seconds
        if self.timer is not None and self.timer_at > self.deadline:  # the check is due too late for this phase
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self.check_deadline)

    def check_deadline(self) -> None:
        self.timer = None
        if self.late is None:  # between phases: the next one sets a timer if it needs one
            return
        if self.loop.time() >= self.deadline:
            late, self.late = self.late, None
            late()
            return
        self.timer_at = self.deadline
        self.timer = self.loop.call_at(self.deadline, self.check_deadline)

    def close_waiting(self) -> None:
        """Closed to make room for a new connection: this one was the longest without a request in progress."""
        self.guard.closed.count("made_room")
        self.transport.close()

    def headers_too_large(self) -> None:
        """The request line and headers exceed ``max_header_bytes`` (httptools itself has no limit): 431, close."""
        self.guard.closed.count("headers_too_large")
        self.answer_and_close(self.guard.headers_too_large_response)

    def headers_late(self) -> None:
        """The headers did not arrive in time: close (there is no request to answer)."""
        self.guard.closed.count("header_timeout")
        self.transport.close()

    def body_late(self) -> None:
        """The body did not arrive in time: 408 unless a response has begun, close, and tell the application."""
        self.guard.closed.count("body_timeout")
        cycle = self.cycle
        answer = None
        if cycle is not None and not cycle.disconnected:
            if not cycle.response_started:
                answer = self.guard.request_timeout_response
            # What connection_lost would do, now: receive() says http.disconnect and send() writes nothing.
            cycle.disconnected = True
            cycle.message_event.set()
        self.answer_and_close(answer)

    def answer_and_close(self, answer: bytes | None) -> None:
        """Send ``answer`` (if any) and close: after an answer, our side first, then the rest once the client
        closes or ``LINGER_SECONDS`` pass, dropping what it still sends (a lingering close)."""
        self.late = None
        if answer is None or not self.transport.can_write_eof():
            if answer is not None:
                self.transport.write(answer)
            self.transport.close()
            return
        self.lingering = True
        self.transport.write(answer)
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
