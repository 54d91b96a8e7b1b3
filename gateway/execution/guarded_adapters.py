"""The departments' adapters at run time: opened at start-up, each behind its own breaker, bulkhead and timeout.

A statement for a department goes through, in order:

1. its **circuit breaker** (:mod:`gateway.execution.breaker`): open, it fails at once with
   ``SOURCE_CIRCUIT_OPEN``, before queueing for anything;
2. its **bulkhead**, a semaphore of ``max_concurrency`` slots, waited for no longer than the statement's
   timeout (the smaller of the source's ``timeout_seconds`` and the time left before the request's deadline);
3. the breaker again, for leave to call (half-open, only one probe gets it);
4. the **adapter**, given what is left of that timeout, and abandoned :data:`OVERRUN_GRACE` seconds after
   it if it ignores it: no adapter can hold a request past its deadline by more than that.

Only what the adapter reports counts towards the breaker: a statement refused by the breaker, or that
never got a slot or any time, was never sent. Opening, health checks and closing are bounded the same way;
health checks go through neither the breaker nor the bulkhead (:mod:`gateway.execution.health_checks`
runs them in the background).

A department that is down at start-up does not stop the gateway: its adapter connects lazily on the
next query, and until then its fields fail with ``SOURCE_UNAVAILABLE`` while the others answer. Once
:meth:`GuardedAdapters.close_all` has run, no statement reaches an adapter (it would reopen a pool nobody closes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.base import NO_CONTEXT, Capabilities, FetchContext, PreparedQuery, Row, SourceAdapter
from adapters.registry import create_adapter
from gateway.errors import SourceCircuitOpenError, SourceError, SourceTimeoutError, SourceUnavailableError
from gateway.execution.breaker import BreakerState, CircuitBreaker, Clock
from gateway.execution.statement_telemetry import Observation, observed_statement
from gateway.metrics import BULKHEAD_IN_FLIGHT, BULKHEAD_QUEUED
from schema.catalog import Catalog

log = structlog.get_logger("fedgate.sources")

#: Seconds an adapter may overrun the timeout it was given before it is abandoned (time to cancel the
#: statement on the source). An adapter that honours its timeout never reaches this.
OVERRUN_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One department's readiness: reachable or not, how fast, and the error code if not."""

    department: str
    ok: bool
    #: How long the (last) check took; ``None`` when none was run.
    latency_ms: float | None
    code: str | None = None
    #: The department's circuit breaker: ``closed``, ``open``, ``half_open`` or ``disabled``.
    breaker: BreakerState = BreakerState.CLOSED
    #: Seconds until an open breaker lets a probe through.
    retry_after: float | None = None
    #: How old the state is: seconds since the last background check ended (``None``: no check yet, or live).
    checked_seconds_ago: float | None = None


class GuardedAdapters:
    """Every department's adapter, keyed by department name, each behind its breaker, bulkhead and timeout."""

    def __init__(
        self,
        catalog: Catalog,
        adapters: Mapping[str, SourceAdapter] | None = None,
        *,
        breaker_clock: Clock = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.adapters: dict[str, SourceAdapter] = dict(adapters or {})
        for department in catalog.departments:
            self.adapters.setdefault(department.name, create_adapter(department))
        #: How many statements each department may have in flight at once (its bulkhead's size).
        self.slots = {department.name: department.source.concurrency for department in catalog.departments}
        self._bulkheads = {name: asyncio.Semaphore(slots) for name, slots in self.slots.items()}
        self._timeouts = {department.name: department.source.timeout_seconds for department in catalog.departments}
        #: Each bulkhead's gauges: statements waiting for a slot, and holding one.
        self._gauges = {
            department.name: (BULKHEAD_QUEUED.labels(department.name), BULKHEAD_IN_FLIGHT.labels(department.name))
            for department in catalog.departments
        }
        self.breakers = {
            department.name: CircuitBreaker(
                department.name,
                department.source.breaker,
                probe_timeout=department.source.timeout_seconds,
                clock=breaker_clock,
            )
            for department in catalog.departments
        }
        #: After :meth:`close_all` no statement reaches an adapter (which would reopen its pool).
        self._closed = False

    def adapter(self, department: str) -> SourceAdapter:
        return self.adapters[department]

    def breaker(self, department: str) -> CircuitBreaker:
        return self.breakers[department]

    def capabilities(self) -> dict[str, Capabilities]:
        return {name: adapter.capabilities for name, adapter in self.adapters.items()}

    def timeout(self, department: str) -> float:
        return self._timeouts[department]

    async def open_all(self) -> dict[str, SourceError | None]:
        """Open every adapter concurrently; failures are logged and returned, never raised."""
        self._closed = False

        async def open_one(name: str, adapter: SourceAdapter) -> SourceError | None:
            try:
                async with asyncio.timeout(self._timeouts.get(name, 5.0) + OVERRUN_GRACE):
                    await adapter.open()
            except TimeoutError:
                log.warning("source_unavailable_at_startup", department=name, code=SourceTimeoutError.code)
                return SourceTimeoutError(name, f"department '{name}' did not answer while connecting")
            except SourceError as error:
                log.warning("source_unavailable_at_startup", department=name, code=error.code)
                return error
            return None

        results = await asyncio.gather(*(open_one(name, adapter) for name, adapter in self.adapters.items()))
        return dict(zip(self.adapters, results, strict=True))

    async def close_all(self) -> None:
        self._closed = True

        async def close_one(name: str, adapter: SourceAdapter) -> None:
            async with asyncio.timeout(self._timeouts.get(name, 5.0) + OVERRUN_GRACE):
                await adapter.close()

        await asyncio.gather(
            *(close_one(name, adapter) for name, adapter in self.adapters.items()), return_exceptions=True
        )

    async def fetch(
        self,
        department: str,
        prepared: PreparedQuery,
        values: Mapping[str, Any],
        deadline: float,
        context: FetchContext = NO_CONTEXT,
        *,
        sent: dict[str, int] | None = None,
    ) -> list[Row]:
        """Run a prepared query within the department's breaker, bulkhead, timeout and the request's deadline.

        ``sent`` counts, per department, the statements actually handed to the adapter. Every statement is
        observed (:mod:`gateway.execution.statement_telemetry`): its span, latency and error.
        """
        with observed_statement(department, self.adapters[department].kind) as observation:
            rows = await self._fetch(department, prepared, values, deadline, context, sent, observation)
            observation.answered(len(rows))
            return rows

    async def _fetch(
        self,
        department: str,
        prepared: PreparedQuery,
        values: Mapping[str, Any],
        deadline: float,
        context: FetchContext,
        sent: dict[str, int] | None,
        observation: Observation,
    ) -> list[Row]:
        self._refuse_if_closed(department)
        breaker = self.breakers[department]
        breaker.check()  # open: fail now, without queueing for a slot
        timeout = min(self._timeouts[department], deadline - time.monotonic())
        if timeout <= 0:
            raise SourceTimeoutError(
                department, f"department '{department}' was not queried: the request ran out of time"
            )
        started = time.monotonic()
        bulkhead = self._bulkheads[department]
        queued, in_flight = self._gauges[department]
        if bulkhead.locked():  # no free slot: wait for one, within the time left
            queued.inc()
            try:
                async with asyncio.timeout(timeout):
                    await bulkhead.acquire()
            except TimeoutError as exc:
                raise SourceTimeoutError(
                    department, f"department '{department}' is saturated; no slot within {timeout:g} s"
                ) from exc
            finally:
                queued.dec()
        else:
            await bulkhead.acquire()  # a free slot is taken at once
        in_flight.inc()
        try:
            self._refuse_if_closed(department)
            permit = breaker.admit()  # it may have opened while we waited, or another call holds the probe
            if sent is not None:
                sent[department] = sent.get(department, 0) + 1
            remaining = max(timeout - (time.monotonic() - started), 0.001)
            observation.sent()
            try:
                async with asyncio.timeout(remaining + OVERRUN_GRACE):
                    rows = await self.adapters[department].fetch(prepared, values, timeout=remaining, context=context)
            except TimeoutError as exc:
                log.warning("source_overran_timeout", department=department, timeout=round(remaining, 3))
                error = SourceTimeoutError(
                    department, f"department '{department}' did not answer within {remaining:.3g} s"
                )
                breaker.failed(permit, error)
                raise error from exc
            except SourceError as error:
                breaker.failed(permit, error)
                raise
            except BaseException:
                breaker.abandoned(permit)
                raise
            breaker.succeeded(permit)
            return rows
        finally:
            in_flight.dec()
            bulkhead.release()

    def _refuse_if_closed(self, department: str) -> None:
        if self._closed:
            raise SourceUnavailableError(department, f"department '{department}' was not queried: fedgate is stopping")

    async def check(self, department: str, timeout: float) -> SourceError | None:
        """Run the department's health query (:meth:`SourceAdapter.health`) within ``timeout``: the error it
        failed with, or ``None``. Moves no breaker; refused once :meth:`close_all` has run."""
        try:
            self._refuse_if_closed(department)
            async with asyncio.timeout(timeout):
                await self.adapters[department].health()
        except TimeoutError:
            return SourceTimeoutError(department, f"department '{department}' did not answer within {timeout:g} s")
        except SourceError as error:
            return error
        return None

    async def health(self) -> list[SourceHealth]:
        """Check every department now, concurrently (``/readyz`` answers from the background checks'
        last state instead: :mod:`gateway.execution.health_checks`). A department whose breaker is open is
        not ready, and its source is not called."""

        async def check(name: str) -> SourceHealth:
            breaker = self.breakers[name].snapshot()
            if breaker.state is BreakerState.OPEN:  # not touched while open; not ready either
                code = SourceCircuitOpenError.code
                return SourceHealth(name, False, 0.0, code, breaker.state, breaker.retry_after)
            started = time.monotonic()
            error = await self.check(name, self._timeouts.get(name, 5.0) + OVERRUN_GRACE)
            elapsed = (time.monotonic() - started) * 1000
            return SourceHealth(name, error is None, elapsed, None if error is None else error.code, breaker.state)

        return list(await asyncio.gather(*(check(name) for name in self.adapters)))
