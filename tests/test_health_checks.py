"""Active health checks over in-memory departments: thresholds, re-admission, isolation, and readiness
answered from the last known state. (Real servers killed and restored: tests/test_source_resilience.py;
/readyz over HTTP while a department stalls: tests/test_partial_http.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.health_checks import HealthChecker
from gateway.service import Gateway
from schema.catalog import Catalog, load_catalog
from schema.sources import HealthCheckSettings
from tests.conftest import make_settings, run
from tests.support.fake_clock import FakeClock
from tests.support.memory_source import MemoryAdapter, memory_adapters

NUMBERS = {"name": "numbers", "primary_key": ["n"], "columns": [{"name": "n", "type": "integer", "nullable": False}]}


def _catalog(directory: Path, **health_checks: dict[str, Any]) -> Catalog:
    """Departments named by ``health_checks``, each with its ``health_check`` settings and a breaker that
    opens after two failures for a minute (so only a re-admission closes it within a test)."""
    departments = [
        {
            "name": name,
            "title": name.title(),
            "source": {
                "kind": "sqlite",
                "path": f"{name}.db",
                "breaker": {"failures": 2, "reset_seconds": 60},
                "health_check": settings,
            },
            "tables": [NUMBERS],
        }
        for name, settings in health_checks.items()
    ]
    path = directory / "catalog.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "departments": departments}))
    return load_catalog(path)


class Federation:
    """A started gateway over in-memory departments, their breakers on a fake clock, and a health checker."""

    def __init__(self, catalog: Catalog) -> None:
        self.adapters = memory_adapters(catalog, {f"{d.name}.numbers": [{"n": 1}] for d in catalog.departments})
        self.clock = FakeClock()
        self.sources = GuardedAdapters(catalog, self.adapters, breaker_clock=self.clock)
        self.gateway = Gateway(catalog, make_settings(), self.sources)
        self.checker = HealthChecker(self.sources)

    def __getitem__(self, department: str) -> MemoryAdapter:
        return self.adapters[department]

    def ready(self, department: str) -> tuple[bool, str | None]:
        (health,) = [health for health in self.checker.readiness() if health.department == department]
        return health.ok, health.code

    async def open_breaker(self, department: str) -> None:
        for _ in range(2):
            response = await run(self.gateway, f"{{ {department} {{ numbers {{ n }} }} }}")
            assert response.errors[0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert self.sources.breaker(department).state is BreakerState.OPEN


@pytest.fixture
async def federation(tmp_path: Path) -> Any:
    catalog = _catalog(tmp_path, a={"healthy_threshold": 2, "unhealthy_threshold": 3}, b={})
    federation = Federation(catalog)
    await federation.gateway.start()
    try:
        yield federation
    finally:
        await federation.checker.stop()
        await federation.gateway.stop()


async def test_the_first_check_decides_and_the_thresholds_hold_after_it(federation: Federation) -> None:
    assert federation.ready("a") == (False, None)  # never checked: not known to be ready
    await federation.checker.check("a")
    assert federation.ready("a") == (True, None)  # one pass at start-up is enough
    federation["a"].fail()
    for _ in range(2):
        await federation.checker.check("a")
        assert federation.ready("a") == (True, None)  # below unhealthy_threshold (3)
    with capture_logs() as logs:
        await federation.checker.check("a")
    assert federation.ready("a") == (False, "SOURCE_UNAVAILABLE")
    assert [(entry["event"], entry["code"]) for entry in logs] == [("department_unhealthy", "SOURCE_UNAVAILABLE")]
    federation["a"].heal()
    await federation.checker.check("a")
    assert federation.ready("a") == (False, "SOURCE_UNAVAILABLE")  # below healthy_threshold (2)
    await federation.checker.check("a")
    assert federation.ready("a") == (True, None)


async def test_a_department_seen_coming_back_is_readmitted_at_once(federation: Federation) -> None:
    federation["b"].fail()
    await federation.open_breaker("b")
    await federation.checker.check("b")  # the checks see it down...
    assert federation.ready("b") == (False, "SOURCE_CIRCUIT_OPEN")
    federation["b"].heal()
    with capture_logs() as logs:
        await federation.checker.check("b")  # ...and back: the breaker closes, a minute early
    assert federation.sources.breaker("b").state is BreakerState.CLOSED
    assert ("breaker_closed", "health_check") in [(entry["event"], entry.get("by")) for entry in logs]
    assert federation.ready("b") == (True, None)
    answered = await run(federation.gateway, "{ b { numbers { n } } }")
    assert answered.errors == []
    assert answered.statements == {"b": 1}


async def test_checks_that_kept_passing_while_statements_failed_readmit_nothing(federation: Federation) -> None:
    federation["b"].fail(table="numbers")  # statements fail; the health query still answers
    await federation.checker.check("b")
    await federation.open_breaker("b")
    for _ in range(3):
        await federation.checker.check("b")
    assert federation.sources.breaker("b").state is BreakerState.OPEN  # the breaker's own probe decides
    assert federation.ready("b") == (False, "SOURCE_CIRCUIT_OPEN")


async def test_failed_checks_never_open_a_breaker(federation: Federation) -> None:
    federation["b"].fail()
    for _ in range(5):
        await federation.checker.check("b")
    assert federation.sources.breaker("b").state is BreakerState.CLOSED
    assert federation.ready("b") == (False, "SOURCE_UNAVAILABLE")


async def test_a_stalled_department_delays_neither_another_department_nor_readiness(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, stalled={"interval_seconds": 0.1, "timeout_seconds": 0.3},
                       steady={"interval_seconds": 0.1})  # fmt: skip
    federation = Federation(catalog)
    federation["stalled"].stall(3600)
    await federation.gateway.start()
    try:
        async with asyncio.timeout(10):
            await federation.checker.start()  # waits for each first check, each bounded by its timeout
        assert federation.ready("stalled") == (False, "SOURCE_TIMEOUT")
        before = federation["steady"].health_checks
        for _ in range(10):
            started = time.monotonic()
            readiness = {health.department: health for health in federation.checker.readiness()}
            assert time.monotonic() - started < 0.05
            assert readiness["steady"].ok
            assert not readiness["stalled"].ok
            await asyncio.sleep(0.1)
        # 1 s went by while 'stalled' never answered: 'steady' was still checked every 0.1 s or so.
        assert federation["steady"].health_checks - before >= 4
        assert federation["stalled"].health_checks >= 2  # its checks end at their timeout and start again
    finally:
        await federation.checker.stop()
        await federation.gateway.stop()
    stopped = federation["steady"].health_checks
    await asyncio.sleep(0.3)
    assert federation["steady"].health_checks == stopped  # stop() ended every loop


class _DeafHealthAdapter(MemoryAdapter):
    """A health query that ignores being cancelled (a defective adapter) and hangs on for 3 s."""

    async def health(self) -> None:
        self.health_checks += 1
        try:
            await asyncio.sleep(3)
        except asyncio.CancelledError:
            await asyncio.sleep(3)


async def test_a_check_still_running_past_its_timeout_reads_as_timed_out(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, deaf={"timeout_seconds": 0.2})
    federation = Federation(catalog)
    federation.adapters["deaf"] = _DeafHealthAdapter(catalog.department("deaf"), {"numbers": []})
    federation.sources = GuardedAdapters(catalog, federation.adapters, breaker_clock=federation.clock)
    federation.checker = HealthChecker(federation.sources)
    checking = asyncio.create_task(federation.checker.check("deaf"))
    try:
        await asyncio.sleep(0.3)  # past its timeout (0.2 s), within the grace an adapter gets to stop (1 s)
        assert federation.ready("deaf") == (False, None)
        await asyncio.sleep(1.5)  # past the grace too: the check is stuck
        assert federation.ready("deaf") == (False, "SOURCE_TIMEOUT")
    finally:
        checking.cancel()
        await asyncio.gather(checking, return_exceptions=True)


async def test_a_department_with_checks_disabled_follows_its_breaker(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, a={"enabled": False})
    federation = Federation(catalog)
    await federation.gateway.start()
    try:
        await federation.checker.start()
        (health,) = federation.checker.readiness()
        assert (health.ok, health.latency_ms, health.code, health.checked_seconds_ago) == (True, None, None, None)
        federation["a"].fail()
        await federation.open_breaker("a")
        assert federation.ready("a") == (False, "SOURCE_CIRCUIT_OPEN")
        assert federation["a"].health_checks == 0  # never checked
    finally:
        await federation.checker.stop()
        await federation.gateway.stop()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"interval_seconds": 0.01}, "greater than or equal to 0.1"),
        ({"timeout_seconds": 0}, "greater than 0"),
        ({"healthy_threshold": 0}, "greater than or equal to 1"),
        ({"unhealthy_threshold": 101}, "less than or equal to 100"),
        ({"path": "/health"}, "Extra inputs are not permitted"),
    ],
)
def test_health_check_settings_are_checked(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        HealthCheckSettings.model_validate(settings)


def test_health_checks_default_to_safe_values() -> None:
    defaults = HealthCheckSettings()
    assert (defaults.enabled, defaults.interval_seconds, defaults.timeout_seconds) == (True, 5.0, 2.0)
    assert (defaults.healthy_threshold, defaults.unhealthy_threshold) == (1, 2)
