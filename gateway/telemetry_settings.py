"""The ``telemetry`` section of ``fedgate.yaml``: the Prometheus metrics endpoint and OpenTelemetry tracing.

Metrics are on by default, at ``/metrics`` on the gateway's own port and without authentication: they hold
counts, durations and states labelled only by department names, outcomes and error codes, never a value a
caller sent or a department returned (``docs/observability.md``). Tracing is off by default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schema.models import StrictModel

#: Paths the gateway serves itself: the metrics endpoint may not take one.
RESERVED_PATHS = frozenset(
    {"/graphql", "/audit/graphql", "/healthz", "/readyz", "/agreements", "/admin/reload", "/graphiql-assets"}
)


class MetricsSettings(StrictModel):
    """The Prometheus metrics endpoint (``docs/observability.md`` lists every metric)."""

    enabled: bool = Field(True, description="Serve the metrics endpoint (no authentication: restrict it upstream).")
    path: str = Field(
        "/metrics",
        pattern=r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$",
        description="Where the metrics are served, on the gateway's port.",
    )
    sample_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each worker records the state it holds (breakers, readiness, pools) for the "
        "metrics; a scrape also records the answering worker's at once.",
    )

    @model_validator(mode="after")
    def _own_path(self) -> MetricsSettings:
        if self.path in RESERVED_PATHS or any(self.path.startswith(f"{taken}/") for taken in RESERVED_PATHS):
            raise ValueError(f"path {self.path} is one the gateway serves already: choose another")
        return self


class TracingSettings(StrictModel):
    """OpenTelemetry traces: a span per GraphQL request and a child span per department statement."""

    exporter: Literal["none", "console", "otlp"] = Field(
        "none",
        description="none: no tracing. console: spans as JSON on standard output. otlp: spans sent to an "
        "OpenTelemetry collector over OTLP/HTTP (endpoint).",
    )
    endpoint: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="With exporter otlp: the collector's OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces.",
    )
    service_name: str = Field(
        "fedgate", min_length=1, max_length=100, description="The service.name the spans are reported under."
    )
    sample_ratio: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of requests traced (a caller's sampled traceparent is followed whatever the ratio).",
    )

    @model_validator(mode="after")
    def _endpoint_for_otlp(self) -> TracingSettings:
        if self.exporter == "otlp" and self.endpoint is None:
            raise ValueError("exporter otlp needs endpoint: the collector's OTLP/HTTP traces URL")
        if self.exporter != "otlp" and self.endpoint is not None:
            raise ValueError("endpoint is only used with exporter otlp")
        return self

    @property
    def enabled(self) -> bool:
        return self.exporter != "none"


class TelemetrySettings(StrictModel):
    """What fedgate tells an operator besides its logs."""

    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
