"""What each department statement tells the operator: its span, its latency and its error.

:meth:`~gateway.execution.guarded_adapters.GuardedAdapters.fetch` runs every statement inside
:func:`observed_statement`. The span (when the request is traced) covers the whole statement: the breaker,
the wait for a bulkhead slot and the source, so a trace shows which department held a request up. The
latency histogram times the source alone, from the moment the adapter is called (:meth:`Observation.sent`):
a statement the breaker refused, or that never got a slot, was never sent. Every failure is counted with its
code, those refusals included.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator

from opentelemetry import trace
from prometheus_client import Histogram

from gateway.errors import InternalError, SourceError
from gateway.metrics import STATEMENT_DURATION, STATEMENT_ERRORS, code_label
from gateway.tracing import statement_span


class Observation:
    """One statement being observed."""

    def __init__(self, department: str, span: trace.Span | None) -> None:
        self.department = department
        self.span = span
        self._sent_at: float | None = None

    def sent(self) -> None:
        """The adapter is being called now."""
        self._sent_at = time.perf_counter()

    def answered(self, rows: int) -> None:
        if self._sent_at is not None:
            _latency(self.department, "ok").observe(time.perf_counter() - self._sent_at)
        if self.span is not None:
            self.span.set_attribute("fedgate.rows", rows)

    def failed(self, code: str) -> None:
        if self._sent_at is not None:
            _latency(self.department, "error").observe(time.perf_counter() - self._sent_at)
        STATEMENT_ERRORS.labels(self.department, code_label(code)).inc()
        if self.span is not None:
            self.span.set_attribute("fedgate.error_code", code)
            self.span.set_status(trace.StatusCode.ERROR, code)


@functools.cache
def _latency(department: str, outcome: str) -> Histogram:
    """The latency histogram's child for a department and outcome, resolved once (departments are few)."""
    return STATEMENT_DURATION.labels(department, outcome)


@contextlib.contextmanager
def observed_statement(department: str, adapter: str) -> Iterator[Observation]:
    """Observe the statement the block runs; it calls :meth:`Observation.sent` and :meth:`Observation.answered`,
    failures are seen as they leave the block. A cancelled statement is neither an answer nor an error."""
    with statement_span(department, adapter) as span:
        observation = Observation(department, span)
        try:
            yield observation
        except SourceError as error:
            observation.failed(error.code)
            raise
        except Exception:
            observation.failed(InternalError.code)
            raise
