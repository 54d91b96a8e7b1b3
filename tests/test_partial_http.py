"""Partial results over real HTTP: ``extensions.sources``, the ``@strict`` directive, status codes, /readyz."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.app import create_app
from gateway.execution.guarded_adapters import GuardedAdapters
from schema.catalog import load_catalog
from tests.conftest import make_settings
from tests.support.fake_clock import FakeClock
from tests.support.servers import black_hole, serving

GRAPHQL_RESPONSE = "application/graphql-response+json"
SLOW_VIEW = (
    "CREATE VIEW numbers AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 500000000) "
    "SELECT n FROM c WHERE n % 400000000 = 0"
)
NUMBERS = [{"name": "numbers", "primary_key": ["n"], "columns": [{"name": "n", "type": "integer", "nullable": False}]}]


class Deployment:
    """The gateway app on loopback over three departments: ``steady`` answers, ``down`` has no database
    file (its breaker opens after two failures), ``slow`` never answers within its 0.3 s."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        self.url = url
        self.clock = clock

    async def post(self, query: str, accept: str = GRAPHQL_RESPONSE) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(f"{self.url}/graphql", json={"query": query}, headers={"accept": accept})

    async def ready(self) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.get(f"{self.url}/readyz")


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    connection = sqlite3.connect(tmp_path / "steady.db")
    with connection:
        connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO numbers VALUES (1), (2)")
    connection.close()
    connection = sqlite3.connect(tmp_path / "slow.db")
    with connection:
        connection.execute(SLOW_VIEW)
    connection.close()
    sources: dict[str, dict[str, Any]] = {
        "steady": {"kind": "sqlite", "path": "steady.db", "breaker": {"enabled": False}},
        "down": {"kind": "sqlite", "path": "absent.db", "breaker": {"failures": 2, "reset_seconds": 20}},
        "slow": {"kind": "sqlite", "path": "slow.db", "timeout_seconds": 0.3},
    }
    catalog_data = {
        "version": 1,
        "departments": [
            {"name": name, "title": name.title(), "source": source, "tables": NUMBERS}
            for name, source in sources.items()
        ],
    }
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog_data))
    catalog = load_catalog(tmp_path / "catalog.yaml")
    clock = FakeClock()
    app = create_app(make_settings(), catalog, None, sources=GuardedAdapters(catalog, breaker_clock=clock))
    async with serving(app) as url:
        yield Deployment(url, clock)


STEADY = {"steady": {"status": "complete", "statements": 1}}
DOWN = {"status": "failed", "code": "SOURCE_UNAVAILABLE", "retryable": True, "statements": 1}


async def test_every_response_that_asked_departments_summarises_them(deployment: Deployment) -> None:
    response = await deployment.post("{ steady { numbers { n } } }")
    assert response.status_code == 200
    assert response.json() == {"data": {"steady": {"numbers": [{"n": 1}, {"n": 2}]}}, "extensions": {"sources": STEADY}}
    nothing_asked = await deployment.post("{ __typename }")
    assert nothing_asked.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_a_failed_department_is_null_and_summarised(deployment: Deployment, accept: str) -> None:
    response = await deployment.post("{ steady { numbers { n } } down { numbers { n } } }", accept)
    assert response.status_code == 200  # a partial answer is still an answer
    body = response.json()
    assert body["data"] == {"steady": {"numbers": [{"n": 1}, {"n": 2}]}, "down": {"numbers": None}}
    assert body["errors"][0]["path"] == ["down", "numbers"]
    assert body["extensions"] == {"sources": {**STEADY, "down": DOWN}}


async def test_a_strict_query_that_succeeds_is_an_ordinary_answer(deployment: Deployment) -> None:
    response = await deployment.post("query Q @strict { steady { numbers { n } } }")
    assert response.status_code == 200
    assert response.json() == {"data": {"steady": {"numbers": [{"n": 1}, {"n": 2}]}}, "extensions": {"sources": STEADY}}


async def test_a_strict_query_fails_whole_when_a_department_fails(deployment: Deployment) -> None:
    query = "query Q @strict { steady { numbers { n } } down { numbers { n } } }"
    response = await deployment.post(query)
    assert response.status_code == 503
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert "retry-after" not in response.headers  # unavailable, but no breaker has said for how long
    assert response.json() == {
        "errors": [
            {
                "message": "department 'down' is unavailable; the operation is @strict, so nothing is returned",
                "extensions": {"code": "SOURCE_UNAVAILABLE", "department": "down", "retryable": True},
            }
        ],
        "data": None,
        "extensions": {"sources": {**STEADY, "down": DOWN}},
    }
    legacy = await deployment.post(query, "application/json")  # the same body, but 200 for application/json
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert legacy.json()["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    # Two failures opened the breaker: now the strict failure says when to come back.
    refused = await deployment.post(query)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "20"
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {
        "code": "SOURCE_CIRCUIT_OPEN",
        "department": "down",
        "retryable": True,
        "retryAfter": 20,
    }
    assert refused.json()["extensions"]["sources"]["down"]["statements"] == 0


async def test_a_strict_failure_takes_the_status_of_how_its_departments_failed(deployment: Deployment) -> None:
    timed_out = await deployment.post("query @strict { steady { numbers { n } } slow { numbers { n } } }")
    assert timed_out.status_code == 504
    assert [error["extensions"]["code"] for error in timed_out.json()["errors"]] == ["SOURCE_TIMEOUT"]
    mixed = await deployment.post("query @strict { down { numbers { n } } slow { numbers { n } } }")
    assert mixed.status_code == 502
    errors = mixed.json()["errors"]
    assert [(e["extensions"]["department"], e["extensions"]["code"]) for e in errors] == [
        ("down", "SOURCE_UNAVAILABLE"),
        ("slow", "SOURCE_TIMEOUT"),
    ]
    assert all("path" not in error for error in errors)


async def test_strict_is_a_documented_query_directive(deployment: Deployment) -> None:
    introspection = await deployment.post("{ __schema { directives { name description locations } } }")
    directives = {d["name"]: d for d in introspection.json()["data"]["__schema"]["directives"]}
    assert directives["strict"]["locations"] == ["QUERY"]
    assert "All or nothing" in directives["strict"]["description"]
    assert {"include", "skip", "deprecated"} <= set(directives)
    misplaced = await deployment.post("{ steady @strict { numbers { n } } }")
    assert misplaced.status_code == 400
    assert misplaced.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_readyz_shows_each_breaker(deployment: Deployment) -> None:
    before = (await deployment.ready()).json()["departments"]
    assert before["steady"]["breaker"] == "disabled"
    # Start-up ran every department's first check: its result is the state, however recent.
    down = before["down"]
    assert down == {"ok": False, "latency_ms": down["latency_ms"], "code": "SOURCE_UNAVAILABLE", "breaker": "closed",
                    "checked_seconds_ago": down["checked_seconds_ago"]}  # fmt: skip
    assert before["down"]["checked_seconds_ago"] < 5  # checked at start-up; checks run every 5 s by default
    for _ in range(2):
        await deployment.post("{ down { numbers { n } } }")
    ready = await deployment.ready()
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "degraded"
    down = body["departments"]["down"]
    assert {key: down[key] for key in ("ok", "code", "breaker", "retryAfter")} == {
        "ok": False,
        "code": "SOURCE_CIRCUIT_OPEN",
        "breaker": "open",
        "retryAfter": 20,
    }
    assert body["departments"]["slow"]["ok"] is True  # SELECT 1 answers; only its view is slow
    assert body["departments"]["slow"]["breaker"] == "closed"
    deployment.clock.advance(20)
    assert (await deployment.ready()).json()["departments"]["down"]["breaker"] == "half_open"


async def test_readyz_answers_from_the_last_state_while_a_department_stalls(tmp_path: Path) -> None:
    """A department whose server accepts connections and never answers: every check of it stalls until its
    timeout, yet /readyz answers at once from the last state, and the other department stays ready."""
    connection = sqlite3.connect(tmp_path / "steady.db")
    with connection:
        connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    connection.close()
    async with black_hole() as port:
        stalled = {"kind": "postgres", "host": "127.0.0.1", "port": port, "database": "nothing", "user": "fedgate",
                   "timeout_seconds": 1, "health_check": {"interval_seconds": 0.1, "timeout_seconds": 0.5}}  # fmt: skip
        sources = {"steady": {"kind": "sqlite", "path": "steady.db", "health_check": {"interval_seconds": 0.1}},
                   "stalled": stalled}  # fmt: skip
        catalog_data = {
            "version": 1,
            "departments": [
                {"name": name, "title": name.title(), "source": source, "tables": NUMBERS}
                for name, source in sources.items()
            ],
        }
        (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog_data))
        catalog = load_catalog(tmp_path / "catalog.yaml")
        app = create_app(make_settings(), catalog, None)
        async with serving(app) as url, httpx.AsyncClient(timeout=30) as client:
            for _ in range(10):  # a check of 'stalled' is in flight most of the time: 0.5 s of every 0.6 s
                started = time.monotonic()
                response = await client.get(f"{url}/readyz")
                elapsed = time.monotonic() - started
                assert elapsed < 0.5, f"/readyz took {elapsed:.2f} s"
                assert response.status_code == 503
                departments = response.json()["departments"]
                assert departments["steady"]["ok"] is True
                assert departments["steady"]["checked_seconds_ago"] < 2
                assert {key: departments["stalled"][key] for key in ("ok", "code", "breaker")} == {
                    "ok": False,
                    "code": "SOURCE_TIMEOUT",
                    "breaker": "closed",  # checks never open a breaker
                }
                assert departments["stalled"]["latency_ms"] >= 500  # its last check ran its whole timeout
                await asyncio.sleep(0.05)
