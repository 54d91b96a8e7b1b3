"""The metrics endpoint (``telemetry.metrics.path``, ``/metrics`` by default): Prometheus' text format, or
OpenMetrics for a scraper that asks for it.

In one process the answer is the process's registry (fedgate's metrics, and prometheus-client's process
and garbage-collector ones). Under ``fedgate serve --workers N`` (:data:`MULTIPROCESS_ENV` names the
workers' directory) it is the whole server's, read from every worker's files, whichever worker answers.
The endpoint asks for no credentials: the metrics carry no personal data (:mod:`gateway.metrics`); where
even counts must stay inside, turn it off or keep the path from the outside at the proxy
(``docs/observability.md``).
"""

from __future__ import annotations

import asyncio
import os

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.metrics_sampler import MetricsSampler
from gateway.telemetry_settings import MetricsSettings

#: prometheus-client's variable naming the directory every worker writes its metrics to.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """Every metric, encoded as ``accept`` prefers: ``(body, content type)``."""
    encoder, content_type = choose_encoder(accept or "")
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return encoder(REGISTRY), content_type
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return encoder(registry), content_type


def metrics_route(settings: MetricsSettings, sampler: MetricsSampler) -> Route:
    """The route serving the metrics at ``settings.path``."""

    async def metrics(request: Request) -> Response:
        sampler.sample()  # this worker's state as it is now
        body, content_type = await asyncio.to_thread(exposition, request.headers.get("accept"))
        return Response(body, media_type=content_type, headers={"cache-control": "no-store"})

    return Route(settings.path, metrics, methods=["GET"])
