"""The circuit breaker's state machine, with an injected clock: threshold, fail fast, one probe, back-off."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from gateway.errors import (
    SourceAuthError,
    SourceCancelledError,
    SourceCircuitOpenError,
    SourceError,
    SourceQueryError,
    SourceResourceExhaustedError,
    SourceResponseError,
    SourceResponseTooLargeError,
    SourceTerminatedError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from gateway.execution.breaker import BreakerState, CircuitBreaker, counts_as_failure
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway
from schema.catalog import Catalog, load_catalog
from schema.sources import BreakerSettings
from tests.conftest import make_settings, run
from tests.support.fake_clock import FakeClock

DOWN = SourceUnavailableError("dept", "down")


def _breaker(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    config = BreakerSettings.model_validate({"failures": 3, "reset_seconds": 10, "max_reset_seconds": 35, **settings})
    return CircuitBreaker("dept", config, probe_timeout=2, clock=clock)


def _fail(breaker: CircuitBreaker, error: SourceError = DOWN) -> None:
    breaker.failed(breaker.admit(), error)


def test_it_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = _breaker(FakeClock())
    _fail(breaker)
    _fail(breaker)
    breaker.succeeded(breaker.admit())  # an answer resets the count
    _fail(breaker)
    _fail(breaker)
    assert breaker.state is BreakerState.CLOSED
    with capture_logs() as logs:
        _fail(breaker, SourceTimeoutError("dept", "slow"))
    assert breaker.state is BreakerState.OPEN
    (opened,) = logs
    assert opened["event"] == "breaker_opened"
    assert opened["failures"] == 3
    assert opened["code"] == "SOURCE_TIMEOUT"
    assert opened["cool_down_seconds"] == 10


def test_an_open_breaker_refuses_at_once_with_the_time_left() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        _fail(breaker)
    clock.advance(4)
    with pytest.raises(SourceCircuitOpenError) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(6)
    assert refused.value.extensions() == {
        "code": "SOURCE_CIRCUIT_OPEN",
        "department": "dept",
        "retryable": True,
        "retryAfter": 6,
    }
    with pytest.raises(SourceCircuitOpenError):
        breaker.check()
    assert breaker.snapshot().retry_after == pytest.approx(6)


def test_half_open_lets_exactly_one_probe_through_and_an_answer_closes() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        _fail(breaker)
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    with capture_logs() as logs:
        probe = breaker.admit()
    assert probe.probe
    assert [entry["event"] for entry in logs] == ["breaker_half_open"]
    for _ in range(3):  # every other call meanwhile fails fast
        with pytest.raises(SourceCircuitOpenError) as refused:
            breaker.admit()
        assert refused.value.retry_after == 2  # the probe's own timeout bounds the wait
    with capture_logs() as logs:
        breaker.succeeded(probe)
    assert [entry["event"] for entry in logs] == ["breaker_closed"]
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.admit().probe


def test_a_failed_probe_reopens_with_a_doubling_capped_cool_down() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        _fail(breaker)
    cool_downs = []
    for _ in range(4):
        opened_at = clock.now
        retry_after = breaker.snapshot().retry_after
        assert retry_after is not None
        cool_downs.append(retry_after)
        clock.advance(retry_after - 0.001)
        with pytest.raises(SourceCircuitOpenError):
            breaker.admit()
        clock.now = opened_at + retry_after
        with capture_logs() as logs:
            _fail(breaker)  # the probe fails
        assert logs[-1]["event"] == "breaker_opened"
        assert logs[-1]["probe_failed"] is True
        assert breaker.state is BreakerState.OPEN
    assert cool_downs == [10, 20, 35, 35]
    clock.advance(35)
    breaker.succeeded(breaker.admit())
    for _ in range(3):  # closing forgets the back-off
        _fail(breaker)
    assert breaker.snapshot().retry_after == 10


def test_a_late_answer_from_before_the_breaker_opened_changes_nothing() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    early = breaker.admit()
    for _ in range(3):
        _fail(breaker)
    breaker.succeeded(early)
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    probe = breaker.admit()
    breaker.failed(early, DOWN)  # neither counts against the probe nor reopens
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED


def test_an_abandoned_probe_frees_the_slot_for_the_next_call() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        _fail(breaker)
    clock.advance(10)
    breaker.abandoned(breaker.admit())
    assert breaker.admit().probe


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        (SourceUnavailableError("dept", "x"), True),
        (SourceTimeoutError("dept", "x"), True),
        (SourceResponseError("dept", "x"), True),
        (SourceQueryError("dept", "x"), False),
        (SourceResponseTooLargeError("dept", "x"), False),
        (SourceAuthError("dept", "x"), False),
        (SourceTerminatedError("dept", "x"), True),
        (SourceResourceExhaustedError("dept", "x"), True),
        (SourceCancelledError("dept", "x"), False),
    ],
    ids=lambda value: value.code if isinstance(value, SourceError) else str(value),
)
def test_only_failures_of_the_source_itself_count(error: SourceError, counted: bool) -> None:
    assert counts_as_failure(error) is counted
    breaker = _breaker(FakeClock())
    for _ in range(3):
        _fail(breaker, error)
    assert breaker.state is (BreakerState.OPEN if counted else BreakerState.CLOSED)


def test_an_answer_refusing_the_query_resets_the_count_and_closes_a_half_open_breaker() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker)
    _fail(breaker)
    _fail(breaker, SourceQueryError("dept", "bad query"))
    _fail(breaker)
    assert breaker.state is BreakerState.CLOSED
    _fail(breaker)
    _fail(breaker)
    clock.advance(10)
    _fail(breaker, SourceQueryError("dept", "bad query"))  # the probe got an answer: the source is back
    assert breaker.state is BreakerState.CLOSED


def test_a_credential_failure_is_no_verdict_either_way() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker)
    _fail(breaker)
    _fail(breaker, SourceAuthError("dept", "token exchange refused"))  # neither counts nor resets
    _fail(breaker)
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    _fail(breaker, SourceAuthError("dept", "token exchange refused"))  # the probe tells nothing
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit().probe  # so the next call probes


def test_an_operators_cancel_is_no_verdict_either_way() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    cancelled = SourceCancelledError("dept", "an operator cancelled it")
    _fail(breaker)
    _fail(breaker)
    _fail(breaker, cancelled)  # neither counts nor resets: one statement stopped on purpose
    _fail(breaker)
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    _fail(breaker, cancelled)  # the probe was cancelled: it tells nothing
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit().probe


def test_a_readmission_closes_an_open_or_half_open_breaker_at_once() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    assert not breaker.readmit()  # closed: nothing to do
    for _ in range(3):
        _fail(breaker)
    clock.advance(1)  # well within the cool-down
    with capture_logs() as logs:
        assert breaker.readmit()
    assert [(entry["event"], entry["by"]) for entry in logs] == [("breaker_closed", "health_check")]
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.admit().probe
    for _ in range(3):
        _fail(breaker)
    clock.advance(40)
    probe = breaker.admit()  # half-open, its probe in flight
    assert probe.probe
    assert breaker.readmit()
    breaker.failed(probe, DOWN)  # a probe from before the re-admission decides nothing now
    assert breaker.state is BreakerState.CLOSED


def test_a_readmission_keeps_the_back_off_until_a_statement_gets_an_answer() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        _fail(breaker)
    assert breaker.snapshot().retry_after == 10
    breaker.readmit()
    for _ in range(3):  # the statements fail again: the re-admission was premature
        _fail(breaker)
    assert breaker.snapshot().retry_after == 20  # doubled, as after a failed probe
    breaker.readmit()
    breaker.succeeded(breaker.admit())  # an answer: the source is back for real
    for _ in range(3):
        _fail(breaker)
    assert breaker.snapshot().retry_after == 10


def test_a_disabled_breaker_never_opens() -> None:
    breaker = _breaker(FakeClock(), enabled=False)
    for _ in range(50):
        _fail(breaker)
    assert breaker.state is BreakerState.DISABLED
    assert not breaker.admit().probe
    assert not breaker.readmit()
    assert breaker.state is BreakerState.DISABLED


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"failures": 0}, "greater than or equal to 1"),
        ({"reset_seconds": 0.01}, "greater than or equal to 0.1"),
        ({"reset_seconds": 30, "max_reset_seconds": 10}, "max_reset_seconds must be at least reset_seconds"),
        ({"retries": 3}, "Extra inputs are not permitted"),
    ],
)
def test_breaker_settings_are_checked(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BreakerSettings.model_validate(settings)


# --- through the sources, on a real SQLite department --------------------------------------------------

ONE_DEPARTMENT = {
    "version": 1,
    "departments": [
        {
            "name": "registry",
            "title": "Registry",
            "source": {"kind": "sqlite", "path": "registry.db", "breaker": {"failures": 2, "reset_seconds": 5}},
            "tables": [
                {
                    "name": "numbers",
                    "primary_key": ["n"],
                    "columns": [{"name": "n", "type": "integer", "nullable": False}],
                }
            ],
        }
    ],
}
QUERY = "{ registry { numbers { n } } }"


def _registry(directory: Path) -> Catalog:
    (directory / "catalog.yaml").write_text(yaml.safe_dump(ONE_DEPARTMENT))
    return load_catalog(directory / "catalog.yaml")


def _create(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO numbers VALUES (7)")
    connection.close()


async def test_an_open_breaker_does_not_call_the_source_and_one_probe_closes_it(tmp_path: Path) -> None:
    catalog = _registry(tmp_path)
    clock = FakeClock()
    sources = GuardedAdapters(catalog, breaker_clock=clock)
    gateway = Gateway(catalog, make_settings(), sources)
    await gateway.start()  # the file does not exist yet: the department is down
    try:
        for _ in range(2):
            down = await run(gateway, QUERY)
            assert down.statements == {"registry": 1}
            assert down.errors[0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert sources.breaker("registry").state is BreakerState.OPEN
        _create(tmp_path / "registry.db")  # back, but the breaker does not know yet
        refused = await run(gateway, QUERY)
        assert refused.statements == {}  # the adapter was not called
        assert refused.data == {"registry": {"numbers": None}}
        assert refused.errors[0]["extensions"] == {
            "code": "SOURCE_CIRCUIT_OPEN",
            "department": "registry",
            "retryable": True,
            "retryAfter": 5,
        }
        clock.advance(5)
        probe, other = await asyncio.gather(run(gateway, QUERY), run(gateway, QUERY))
        assert probe.data == {"registry": {"numbers": [{"n": 7}]}}
        assert probe.statements == {"registry": 1}
        assert other.statements == {}  # concurrent with the probe: failed fast
        assert other.errors[0]["extensions"]["code"] == "SOURCE_CIRCUIT_OPEN"
        assert sources.breaker("registry").state is BreakerState.CLOSED
        assert (await run(gateway, QUERY)).errors == []
    finally:
        await gateway.stop()
