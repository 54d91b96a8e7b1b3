"""Active health checks: every department's source checked in the background; ``/readyz`` reads the result.

Envoy keeps an upstream healthy with two mechanisms: *outlier detection* ejects a host on the failures of
real traffic, and *active health checking* probes each host on a timer; with both, a host that passes an
active check is un-ejected at once. fedgate does the same: the circuit breaker
(:mod:`gateway.execution.breaker`) is its outlier detection, opened only by real statements; this module is
its active check.

* **One task per department** (``source.health_check``), started and stopped by the app's lifespan: check,
  then wait ``interval_seconds``, and again. A check is the adapter's ``health()`` (``SELECT 1``; an HTTP
  source's health request) bounded by ``timeout_seconds``; it goes through neither the breaker nor the
  bulkhead, and a department whose check stalls delays no other department's.
* **Readiness with thresholds.** The first check decides; after that ``unhealthy_threshold`` failed checks
  in a row make a department not ready and ``healthy_threshold`` passed checks in a row ready again.
  :meth:`HealthChecker.readiness` answers from this last known state without any I/O, so ``/readyz``
  answers in microseconds whatever the departments do. A check still running past its timeout (an adapter
  that ignores cancellation) reads as failed with ``SOURCE_TIMEOUT``.
* **Re-admission.** When the checks see a department come back (``healthy_threshold`` passes in a row right
  after a failed check), an open or half-open breaker closes at once (:meth:`CircuitBreaker.readmit`)
  instead of waiting out its cool-down, which doubles with each failed probe. Checks that kept passing
  while real statements failed (a locked table, an overloaded server that still answers ``SELECT 1``) saw
  nothing come back and re-admit nothing: the breaker's own probe, a real statement, decides, because it
  tests exactly what failed. Failed checks never open a breaker: a check can fail for reasons of its own
  (a pool busy with slow statements that do answer), and a breaker opened by it would cut off a
  department that is serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gateway.errors import InternalError, SourceCircuitOpenError, SourceTimeoutError
from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import OVERRUN_GRACE, GuardedAdapters, SourceHealth
from gateway.metrics import HEALTH_CHECKS, code_label
from gateway.tasks import cancel_and_wait
from schema.sources import HealthCheckSettings

log = structlog.get_logger("fedgate.health")


@dataclass(slots=True)
class DepartmentChecks:
    """One department's checks so far: its readiness (``None`` until the first check) and the streaks."""

    settings: HealthCheckSettings
    healthy: bool | None = None
    passes: int = 0
    failures: int = 0
    #: A check failed since the last streak of passes reached the threshold: the next one is a recovery.
    recovering: bool = False
    #: The last failed check's error code.
    code: str | None = None
    latency_ms: float | None = None
    checked_at: float | None = None
    #: When the check in flight started (``None``: none in flight).
    running_since: float | None = None
    first_done: asyncio.Event = field(default_factory=asyncio.Event)


class HealthChecker:
    """The background health checks of every department of ``sources``, and the readiness they give."""

    def __init__(self, sources: GuardedAdapters, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = sources
        self.clock = clock
        self.departments = {
            department.name: DepartmentChecks(department.source.health_check)
            for department in sources.catalog.departments
        }
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start checking every department whose checks are enabled; return once each has finished its first
        check (each bounded by its timeout), so readiness is known from the start."""
        watched = [name for name, checks in self.departments.items() if checks.settings.enabled]
        self._tasks = [asyncio.create_task(self._watch(name), name=f"health-check:{name}") for name in watched]
        await asyncio.gather(*(self.departments[name].first_done.wait() for name in watched))

    async def stop(self) -> None:
        """Stop every check (before the sources close: a check would reopen a pool)."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)

    async def _watch(self, name: str) -> None:
        checks = self.departments[name]
        try:
            while True:
                await self.check(name)
                checks.first_done.set()
                await asyncio.sleep(checks.settings.interval_seconds)
        finally:
            checks.first_done.set()  # start() never waits for a loop that ended

    async def check(self, name: str) -> None:
        """Check ``name`` once now and apply the result (the background loop's step)."""
        checks = self.departments[name]
        started = checks.running_since = self.clock()
        try:
            error = await self.sources.check(name, checks.settings.timeout_seconds)
            code = None if error is None else error.code
        except Exception:  # a fault in an adapter: logged in full, and the check failed
            log.exception("health_check_error", department=name)
            code = InternalError.code
        finally:
            checks.running_since = None
        self._record(name, code, (self.clock() - started) * 1000)

    def _record(self, name: str, code: str | None, latency_ms: float) -> None:
        checks = self.departments[name]
        settings = checks.settings
        HEALTH_CHECKS.labels(name, code_label(code)).inc()
        checks.latency_ms = latency_ms
        checks.checked_at = self.clock()
        if code is not None:
            checks.failures += 1
            checks.passes = 0
            checks.code = code
            checks.recovering = True
            if checks.healthy is None or (checks.healthy and checks.failures >= settings.unhealthy_threshold):
                checks.healthy = False
                log.warning("department_unhealthy", department=name, code=code, failures=checks.failures)
            return
        checks.passes += 1
        checks.failures = 0
        if checks.healthy is None or (not checks.healthy and checks.passes >= settings.healthy_threshold):
            if checks.healthy is False:
                log.info("department_healthy", department=name, passes=checks.passes)
            checks.healthy = True
        if checks.passes == settings.healthy_threshold and checks.recovering:
            checks.recovering = False
            self.sources.breaker(name).readmit()

    def readiness(self) -> list[SourceHealth]:
        """Every department's last known readiness with its breaker's state, in catalog order; no I/O."""
        return [self._readiness(name, checks) for name, checks in self.departments.items()]

    def _readiness(self, name: str, checks: DepartmentChecks) -> SourceHealth:
        breaker = self.sources.breaker(name).snapshot()
        open_ = breaker.state is BreakerState.OPEN
        now = self.clock()
        ago = None if checks.checked_at is None else now - checks.checked_at
        if not checks.settings.enabled:  # the breaker alone: what real statements showed
            refused = SourceCircuitOpenError.code if open_ else None
            return SourceHealth(name, not open_, None, refused, breaker.state, breaker.retry_after)
        stalled = (
            checks.running_since is not None
            and now - checks.running_since > checks.settings.timeout_seconds + OVERRUN_GRACE
        )
        healthy = bool(checks.healthy) and not stalled
        if open_:
            code: str | None = SourceCircuitOpenError.code
        elif stalled:
            code = SourceTimeoutError.code
        else:
            code = None if healthy else checks.code
        return SourceHealth(
            name, healthy and not open_, checks.latency_ms, code, breaker.state, breaker.retry_after, ago
        )
