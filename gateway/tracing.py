"""OpenTelemetry traces: a span per GraphQL request, a child span per department statement.

Off by default (``telemetry.tracing.exporter: none``): then no span is made and the cost is one context
variable read per statement. On, the gateway has a tracer provider of its own (never the process-wide one),
sampling ``sample_ratio`` of the requests that do not arrive sampled already, and exporting in the
background (a batch span processor) to the console or an OpenTelemetry collector over OTLP/HTTP.

A request's span follows the caller's W3C ``traceparent`` when there is one. Its attributes are the route,
the method, the status, the request id, the outcome and the error code; a statement's are the department,
its adapter's kind, the rows returned and the error code. Spans never carry a query's text, a parameter's
value, a caller's identity or anything a department returned, so they hold no personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry_settings import TracingSettings

#: The tracer of the request being served (``None``: not traced); statements open their spans with it.
_TRACER: ContextVar[trace.Tracer | None] = ContextVar("fedgate_tracer", default=None)
_PROPAGATOR = TraceContextTextMapPropagator()


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=settings.service_name)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.endpoint)


class Tracing:
    """The gateway's tracer, or none (``provider`` ``None``: tracing off)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("fedgate") if provider is not None else None

    @classmethod
    def from_settings(cls, settings: TracingSettings) -> Tracing:
        if not settings.enabled:
            return cls()
        return cls.exporting(BatchSpanProcessor(_exporter(settings)), settings)

    @classmethod
    def exporting(cls, processor: SpanProcessor, settings: TracingSettings) -> Tracing:
        """Tracing whose spans go to ``processor`` (tests give a simple processor and an in-memory exporter)."""
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        provider.add_span_processor(processor)
        return cls(provider)

    @contextlib.contextmanager
    def request_span(self, name: str, headers: Mapping[str, str]) -> Iterator[trace.Span | None]:
        """A server span for one request, current while the block runs (``None`` when tracing is off)."""
        if self.tracer is None:
            yield None
            return
        parent = _PROPAGATOR.extract(carrier=headers)
        token = _TRACER.set(self.tracer)
        try:
            with self.tracer.start_as_current_span(
                name, context=parent, kind=trace.SpanKind.SERVER, record_exception=False, set_status_on_exception=False
            ) as span:
                yield span
        finally:
            _TRACER.reset(token)

    async def shutdown(self) -> None:
        """Export what is left and stop (in a thread: exporting may wait on the network)."""
        if self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)


NO_TRACING = Tracing()


@contextlib.contextmanager
def statement_span(department: str, adapter: str) -> Iterator[trace.Span | None]:
    """A child span of the request's for one statement to ``department`` (``None`` when not traced)."""
    tracer = _TRACER.get()
    if tracer is None:
        yield None
        return
    attributes = {"fedgate.department": department, "fedgate.adapter": adapter}
    with tracer.start_as_current_span(
        f"statement {department}",
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span
