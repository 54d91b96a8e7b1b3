"""The metrics endpoint in one process: where it is, turned off, OpenMetrics on request, and its settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from pydantic import ValidationError

from gateway.app import create_app
from gateway.telemetry_settings import MetricsSettings, TelemetrySettings
from schema.catalog import Catalog
from tests.conftest import make_settings
from tests.support.metrics import ascrape, delta, value
from tests.support.servers import serving

QUERY = "{ clinic { people(limit: 1) { personId } } }"


@contextlib.asynccontextmanager
async def _gateway(catalog: Catalog, **metrics: Any) -> AsyncIterator[str]:
    settings = make_settings().model_copy(update={"telemetry": TelemetrySettings.model_validate({"metrics": metrics})})
    async with serving(create_app(settings, catalog, None)) as url:
        yield url


async def test_one_process_serves_its_metrics_at_the_default_path(sqlite_clinic: Catalog) -> None:
    async with _gateway(sqlite_clinic) as url, httpx.AsyncClient() as http:
        before = await ascrape(url)
        for _ in range(3):
            assert (await http.post(f"{url}/graphql", json={"query": QUERY})).status_code == 200
        after = await ascrape(url)
        response = await http.get(f"{url}/metrics")
    assert delta(before, after, "fedgate_requests_total", endpoint="graphql", outcome="ok", code="none") == 3
    assert value(after, "fedgate_department_ready", department="clinic") == 1
    assert value(after, "fedgate_breaker_state", department="clinic", state="closed") == 1
    assert value(after, "fedgate_pool_max_connections", department="clinic") == 4
    assert value(after, "fedgate_workers") >= 1
    assert response.headers["cache-control"] == "no-store"
    assert "# HELP fedgate_statement_duration_seconds Time a department's source took" in response.text


async def test_openmetrics_for_a_scraper_that_asks(sqlite_clinic: Catalog) -> None:
    async with _gateway(sqlite_clinic) as url, httpx.AsyncClient() as http:
        response = await http.get(f"{url}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(response.text)}
    assert families["fedgate_requests"].type == "counter"
    assert families["fedgate_department_ready"].type == "gauge"


async def test_another_path_or_none(sqlite_clinic: Catalog) -> None:
    async with _gateway(sqlite_clinic, path="/internal/prometheus") as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404
        assert "fedgate_requests_total" in (await http.get(f"{url}/internal/prometheus")).text
    async with _gateway(sqlite_clinic, enabled=False) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404
        assert (await http.post(f"{url}/graphql", json={"query": QUERY})).status_code == 200


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ({"path": "/graphql"}, "one the gateway serves already"),
        ({"path": "/graphiql-assets/x"}, "one the gateway serves already"),
        ({"path": "metrics"}, "should match pattern"),
        ({"path": "/metrics?x=1"}, "should match pattern"),
        ({"sample_interval_seconds": 0}, "greater than 0"),
        ({"port": 9100}, "Extra inputs are not permitted"),
    ],
)
def test_metrics_settings_are_checked(metrics: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        MetricsSettings.model_validate(metrics)
