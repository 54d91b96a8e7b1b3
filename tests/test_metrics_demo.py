"""The demo's housing API killed and started again: ``/metrics`` shows the department fail and recover.

The demo as ``fedgate demo`` runs it (its settings, catalog, policy, agreements and audit; the housing
REST API as its own process), served by ``fedgate serve --workers 2`` with the development issuer beside it,
and scraped from outside as Prometheus would. Nothing is shortened: the housing department's breaker and
health checks keep the demo's defaults.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import yaml

from demo.backends import write_catalog_variant
from demo.run import Ports, purpose_headers, write_settings
from demo.services import HousingService, start_housing_api
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.settings import load_settings
from tests.support.demo_support import TOKEN, demo_federation
from tests.support.governance import GovernedDeployment
from tests.support.metrics import Samples, delta, value
from tests.support.metrics import scrape as scrape_now
from tests.support.servers import free_port, running_fedgate, serving

CLIENT = "social-worker-app"
QUERY = '{ socialCare { clients(where: {laCode: {eq: "E08000035"}}, limit: 50) { clientId tenancies { tenancyId } } } }'


async def _scrape(url: str) -> Samples:
    return await asyncio.to_thread(scrape_now, url)


async def _until(url: str, condition: Any, what: str, seconds: float = 40) -> Samples:
    """Scrape every 0.2 s until ``condition`` holds (the demo's health checks run every 5 s)."""
    for _ in range(int(seconds / 0.2)):
        samples = await _scrape(url)
        if condition(samples):
            return samples
        await asyncio.sleep(0.2)
    housing = {key: found for key, found in samples.items() if ("department", "housing") in key[1]}
    raise AssertionError(f"/metrics never showed {what}: {housing}")


def _housing(samples: Samples, name: str, **labels: str) -> float:
    return value(samples, name, department="housing", **labels)


class HousingApi:
    """The demo's housing API as its own process on ``port``: stopped, and started again on the same port."""

    def __init__(self, port: int, data: Path) -> None:
        self.port = port
        self.data = data
        self.service: HousingService | None = None

    def start(self) -> None:
        self.service = start_housing_api(host="127.0.0.1", port=self.port, data=self.data, token=TOKEN, quiet=True)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


async def test_metrics_show_housing_fail_and_recover_as_it_happens(tmp_path: Path) -> None:
    async with demo_federation(tmp_path, people=600) as federation:
        housing_port, issuer_port = free_port(), free_port()
        variant = write_catalog_variant(
            federation.directory / "catalog.yaml",
            federation.data / "catalog.process.yaml",
            (),
            housing_url=f"http://127.0.0.1:{housing_port}",
        )
        config = write_settings(
            federation.directory / "fedgate.yaml", federation.data, Ports(free_port(), issuer_port), variant
        )
        document = yaml.safe_load(config.read_text())
        document["logging"] = {"level": "warning", "format": "json"}
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        settings = load_settings(config)
        assert settings.dev_issuer is not None
        housing = HousingApi(housing_port, federation.data / "housing.json")
        housing.start()
        try:
            async with serving(create_dev_issuer_app(settings.dev_issuer), issuer_port):
                token = await GovernedDeployment(settings, "").token(CLIENT)
                headers = {"authorization": f"Bearer {token}", **purpose_headers(CLIENT)}
                with running_fedgate(config, "--workers", "2", timeout=60) as (port, _):
                    await _fail_and_recover(f"http://127.0.0.1:{port}", headers, housing)
        finally:
            housing.stop()


async def _fail_and_recover(url: str, headers: dict[str, str], housing: HousingApi) -> None:
    async def ask() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{url}/graphql", json={"query": QUERY}, headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    up = await _until(
        url,
        lambda s: (
            value(s, "fedgate_workers") == 2
            and _housing(s, "fedgate_department_ready") == 1
            and _housing(s, "fedgate_breaker_state", state="closed") == 2
        ),
        "both workers ready",
    )
    answer = await ask()
    assert answer["extensions"]["sources"]["housing"]["status"] == "complete"
    assert any(client["tenancies"] for client in answer["data"]["socialCare"]["clients"])

    # The housing API goes away (``kill <pid>``, as the demo's banner says).
    await asyncio.to_thread(housing.stop)
    before = await _scrape(url)
    sent = refused = unavailable_statements = 0
    while refused == 0:  # until a worker's breaker has opened: five failures in a row on one worker
        assert sent < 40, "no breaker opened"
        outcome = (await ask())["extensions"]["sources"]["housing"]
        sent += 1
        assert outcome["status"] == "failed"
        if outcome["code"] == "SOURCE_CIRCUIT_OPEN":
            refused += 1
            assert outcome["statements"] == 0
        else:
            assert outcome["code"] == "SOURCE_UNAVAILABLE"
            unavailable_statements += outcome["statements"]
    # The health checks (every 5 s in each worker) notice too: two failures in a row make it not ready. Four
    # failed checks in all means every worker has seen the outage, so every worker will see the recovery.
    down = await _until(
        url,
        lambda s: (
            _housing(s, "fedgate_department_ready") == 0
            and _housing(s, "fedgate_breaker_state", state="open")
            + _housing(s, "fedgate_breaker_state", state="half_open")
            and _housing(s, "fedgate_health_checks_total", code="SOURCE_UNAVAILABLE") >= 4
        ),
        "housing not ready, its breaker open and its health checks failing",
    )
    errors = "fedgate_statement_errors_total"
    assert delta(before, down, errors, department="housing", code="SOURCE_UNAVAILABLE") == unavailable_statements
    assert delta(before, down, errors, department="housing", code="SOURCE_CIRCUIT_OPEN") == refused
    assert unavailable_statements + refused == sent  # one housing statement a query
    assert delta(up, down, "fedgate_breaker_transitions_total", department="housing", state="open") >= 1
    partial = [
        delta(before, down, "fedgate_requests_total", endpoint="graphql", outcome="partial", code=code)
        for code in ("SOURCE_UNAVAILABLE", "SOURCE_CIRCUIT_OPEN")
    ]
    assert sum(partial) == sent
    assert value(down, "fedgate_department_ready", department="social_care") == 1  # the others still answer

    # Started again on the same port: the health checks see it back and re-admit it in every worker.
    await asyncio.to_thread(housing.start)
    recovered = await _until(
        url,
        lambda s: (
            _housing(s, "fedgate_department_ready") == 1
            and _housing(s, "fedgate_breaker_state", state="closed") == 2
            and _housing(s, "fedgate_breaker_state", state="open") == 0
        ),
        "housing ready again with closed breakers",
    )
    assert delta(down, recovered, "fedgate_breaker_transitions_total", department="housing", state="closed") >= 1
    assert delta(down, recovered, "fedgate_health_checks_total", department="housing", code="none") >= 2
    answer = await ask()
    assert answer["extensions"]["sources"]["housing"]["status"] == "complete"
    after = await _scrape(url)
    assert delta(recovered, after, "fedgate_statement_duration_seconds_count", department="housing", outcome="ok") >= 1
