"""OpenTelemetry traces: a server span per GraphQL request, a child span per department statement.

A real gateway on loopback over two departments, the clinic in SQLite and the council behind a REST API
that can be made slow or failing; spans collected by opentelemetry-sdk's in-memory exporter, or sent over
OTLP/HTTP to a collector on loopback that decodes them with the OTLP protobuf definitions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.telemetry_settings import TelemetrySettings, TracingSettings
from gateway.tracing import Tracing
from schema.catalog import Catalog, load_catalog
from tests.conftest import make_settings
from tests.fixtures.clinic_data import ROWS
from tests.support.http_clinic import clinic_rest_api, http_catalog_data, write_http_catalog
from tests.support.rest_api import RestApi
from tests.support.servers import serving

BOTH = "{ clinic { people(limit: 2) { personId givenName } } council { cases(limit: 2) { caseId status } } }"
SLOW = 0.4


def _mixed_catalog(directory: Path, sqlite_clinic: Catalog, council_url: str) -> Catalog:
    """The clinic in SQLite, the council behind the REST API at ``council_url``."""
    data = http_catalog_data("rest", {"clinic": "unused", "council": council_url})
    clinic = next(d for d in data["departments"] if d["name"] == "clinic")
    clinic["source"] = sqlite_clinic.departments[0].source.model_dump(mode="json", by_alias=True, exclude_none=True)
    for table in clinic["tables"]:
        table.pop("rest")
    return load_catalog(write_http_catalog(directory, data))


@contextlib.asynccontextmanager
async def _traced(
    directory: Path, sqlite_clinic: Catalog, tracing: Tracing | None = None, telemetry: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, RestApi]]:
    api = clinic_rest_api()
    async with serving(api.app) as api_url:
        catalog = _mixed_catalog(directory, sqlite_clinic, f"{api_url}/council")
        settings = make_settings().model_copy(update={"telemetry": TelemetrySettings.model_validate(telemetry or {})})
        app = create_app(settings, catalog, None, tracing=tracing)
        async with serving(app) as url:
            yield url, api


def _in_memory(ratio: float = 1.0) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = TracingSettings(service_name="fedgate-test", sample_ratio=ratio)
    return Tracing.exporting(SimpleSpanProcessor(exporter), settings), exporter


def _attribute_values(spans: tuple[ReadableSpan, ...]) -> list[str]:
    return [str(value) for span in spans for value in (span.attributes or {}).values()]


async def test_a_slow_department_shows_in_its_statements_span(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    tracing, exporter = _in_memory()
    async with _traced(tmp_path, sqlite_clinic, tracing) as (url, api), httpx.AsyncClient() as http:
        api.behaviour.delay = SLOW
        answer = await http.post(f"{url}/graphql", json={"query": BOTH}, headers={"x-request-id": "trace-me-1"})
        assert answer.status_code == 200 and "errors" not in answer.json()
        await http.get(f"{url}/healthz")  # not a GraphQL request: no span
    spans = exporter.get_finished_spans()
    (request,) = [span for span in spans if span.kind is SpanKind.SERVER]
    statements = {span.name: span for span in spans if span.kind is SpanKind.CLIENT}
    assert set(statements) == {"statement clinic", "statement council"}
    assert len(spans) == 3
    assert request.name == "POST /graphql"
    assert request.resource.attributes["service.name"] == "fedgate-test"
    assert dict(request.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/graphql",
        "http.response.status_code": 200,
        "fedgate.request_id": "trace-me-1",
        "fedgate.outcome": "ok",
        "fedgate.error_code": "none",
    }
    for department, adapter in (("clinic", "sqlite"), ("council", "rest")):
        span = statements[f"statement {department}"]
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert span.context.trace_id == request.context.trace_id
        assert dict(span.attributes or {}) == {"fedgate.department": department, "fedgate.adapter": adapter,
                                               "fedgate.rows": 2}  # fmt: skip
    duration = {name: (span.end_time or 0) - (span.start_time or 0) for name, span in statements.items()}
    assert duration["statement council"] >= SLOW * 1e9
    assert duration["statement clinic"] < SLOW * 1e9 / 2
    assert (request.end_time or 0) - (request.start_time or 0) >= duration["statement council"]
    # Nothing a caller asked for or a department answered is on a span.
    people = {str(value) for row in ROWS["clinic.people"] for value in row.values() if value is not None}
    cases = {str(value) for row in ROWS["council.cases"] for value in row.values() if value is not None}
    assert not (set(_attribute_values(spans)) & (people | cases) - {"2"})
    assert not any("personId" in value or "limit" in value for value in _attribute_values(spans))


async def test_a_failing_department_and_the_callers_trace(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    tracing, exporter = _in_memory()
    parent_trace, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with _traced(tmp_path, sqlite_clinic, tracing) as (url, api), httpx.AsyncClient() as http:
        api.behaviour.status = 503
        answer = await http.post(
            f"{url}/graphql",
            json={"query": BOTH},
            headers={"traceparent": f"00-{parent_trace}-{parent_span}-01"},
        )
    body = answer.json()
    code = body["extensions"]["sources"]["council"]["code"]
    spans = exporter.get_finished_spans()
    (request,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert format(request.context.trace_id, "032x") == parent_trace  # the caller's trace, continued
    assert request.parent is not None and format(request.parent.span_id, "016x") == parent_span
    assert (request.attributes or {})["fedgate.outcome"] == "partial"
    assert (request.attributes or {})["fedgate.error_code"] == code
    council = next(span for span in spans if span.name == "statement council")
    assert council.status.status_code is StatusCode.ERROR and council.status.description == code
    assert (council.attributes or {})["fedgate.error_code"] == code
    assert "fedgate.rows" not in (council.attributes or {})
    clinic = next(span for span in spans if span.name == "statement clinic")
    assert clinic.status.status_code is StatusCode.UNSET and (clinic.attributes or {})["fedgate.rows"] == 2


async def test_sampling_and_tracing_off(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    tracing, exporter = _in_memory(ratio=0.0)
    async with _traced(tmp_path, sqlite_clinic, tracing) as (url, _), httpx.AsyncClient() as http:
        for _ in range(3):
            assert (await http.post(f"{url}/graphql", json={"query": BOTH})).status_code == 200
        assert exporter.get_finished_spans() == ()  # none sampled
        sampled = f"00-{'ab' * 16}-{'cd' * 8}-01"
        await http.post(f"{url}/graphql", json={"query": BOTH}, headers={"traceparent": sampled})
        assert len(exporter.get_finished_spans()) == 3  # a caller's sampled trace is followed
    off = Tracing.from_settings(TracingSettings())
    assert off.tracer is None and off.provider is None


async def test_spans_reach_an_otlp_collector(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    collector = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serving(collector) as collector_url:
        otlp = {"exporter": "otlp", "endpoint": f"{collector_url}/v1/traces", "service_name": "fedgate-otlp"}
        async with (
            _traced(tmp_path, sqlite_clinic, telemetry={"tracing": otlp}) as (url, _),
            httpx.AsyncClient() as http,
        ):
            assert (await http.post(f"{url}/graphql", json={"query": BOTH})).status_code == 200
        # The gateway stopped: its spans were flushed to the collector on the way out.
    spans = [
        (resource.resource, span)
        for export in received
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(span.name for _, span in spans) == ["POST /graphql", "statement clinic", "statement council"]
    services = {attribute.value.string_value for resource, _ in spans for attribute in resource.attributes
                if attribute.key == "service.name"}  # fmt: skip
    assert services == {"fedgate-otlp"}
    server = next(span for _, span in spans if span.name == "POST /graphql")
    assert all(span.parent_span_id == server.span_id for _, span in spans if span.name.startswith("statement"))


@pytest.mark.parametrize(
    ("tracing", "reason"),
    [
        ({"exporter": "otlp"}, "exporter otlp needs endpoint"),
        ({"exporter": "console", "endpoint": "http://127.0.0.1:4318/v1/traces"}, "only used with exporter otlp"),
        ({"sample_ratio": 1.5}, "less than or equal to 1"),
        ({"exporter": "jaeger"}, "'none', 'console' or 'otlp'"),
    ],
)
def test_tracing_settings_are_checked(tracing: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        TracingSettings.model_validate(tracing)
