"""What each GraphQL request tells the operator: its outcome and error code, counted and timed, and its span.

A request's :class:`Verdict` is its :class:`~gateway.metrics.Outcome` and the code of its first error (of the
first operation with the worst outcome, in a batch). :class:`RequestTelemetry` opens the request's span
(:mod:`gateway.tracing`) around the endpoint's work and, once the answer is known, counts it in
``fedgate_requests_total``, times it in ``fedgate_request_duration_seconds`` and writes the same on the span.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from prometheus_client import Counter
from starlette.requests import Request

from gateway import request_ids
from gateway.errors import FedgateError, InternalError
from gateway.metrics import REQUEST_DURATION, REQUESTS, Outcome, code_label
from gateway.service import GraphQLResponse
from gateway.tracing import Tracing

_SEVERITY = (Outcome.OK, Outcome.PARTIAL, Outcome.REFUSED, Outcome.FAILED)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a request ended, and the code of its first error (``None``: no error)."""

    outcome: Outcome
    code: str | None = None


def error_verdict(error: FedgateError) -> Verdict:
    """A request stopped by ``error`` before any operation ran."""
    return Verdict(Outcome.FAILED if error.http_status >= 500 else Outcome.REFUSED, error.code)


def _verdict(response: GraphQLResponse) -> Verdict:
    code = response.errors[0].get("extensions", {}).get("code") if response.errors else None
    code = code if isinstance(code, str) else None
    if response.strict_failure or (response.is_request_error and response.http_status >= 500):
        return Verdict(Outcome.FAILED, code)
    if response.is_request_error:
        return Verdict(Outcome.REFUSED, code)
    return Verdict(Outcome.PARTIAL if response.errors else Outcome.OK, code)


def responses_verdict(responses: Sequence[GraphQLResponse]) -> Verdict:
    """The operations' answers (one, or a batch's): the worst outcome, with its first code."""
    verdicts = [_verdict(response) for response in responses]
    return max(verdicts, key=lambda verdict: _SEVERITY.index(verdict.outcome))


class Observed:
    """One request being observed: the endpoint says how it ended (:meth:`answered`)."""

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span
        self.status: int | None = None
        self.verdict: Verdict | None = None

    def answered(self, status: int, verdict: Verdict) -> None:
        self.status = status
        self.verdict = verdict


class RequestTelemetry:
    """Counts, times and traces the requests of one GraphQL endpoint (``endpoint``: graphql or audit)."""

    def __init__(self, endpoint: str, route: str, tracing: Tracing) -> None:
        self.endpoint = endpoint
        self.route = route
        self.tracing = tracing
        self._durations = {outcome: REQUEST_DURATION.labels(endpoint, outcome.value) for outcome in Outcome}

    @contextlib.contextmanager
    def observe(self, request: Request) -> Iterator[Observed]:
        """Observe the request the block answers; a block that raises counts as fedgate's failure."""
        started = time.perf_counter()
        with self.tracing.request_span(f"{request.method} {self.route}", request.headers) as span:
            observed = Observed(span)
            try:
                yield observed
            finally:
                verdict = observed.verdict or Verdict(Outcome.FAILED, InternalError.code)
                code = code_label(verdict.code)
                _requests(self.endpoint, verdict.outcome.value, code).inc()
                self._durations[verdict.outcome].observe(time.perf_counter() - started)
                if span is not None:
                    _describe(span, request.method, self.route, observed.status or 500, verdict, code)


@functools.cache
def _requests(endpoint: str, outcome: str, code: str) -> Counter:
    """The request counter's child for an endpoint, outcome and code label, resolved once (all three sets are
    closed: endpoints, outcomes and the codes ``code_label`` lets through)."""
    return REQUESTS.labels(endpoint, outcome, code)


def _describe(span: trace.Span, method: str, route: str, status: int, verdict: Verdict, code: str) -> None:
    span.set_attributes(
        {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status,
            "fedgate.request_id": request_ids.current() or "",
            "fedgate.outcome": verdict.outcome.value,
            "fedgate.error_code": code,
        }
    )
    if verdict.outcome is Outcome.FAILED:
        span.set_status(trace.StatusCode.ERROR, code)
