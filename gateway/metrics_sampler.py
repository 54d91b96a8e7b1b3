"""The gauges of what a worker holds: its breakers, its departments' readiness, its pools, its audit store.

That state lives in each worker's memory and changes without a request (a breaker's cool-down ends, a
health check passes), so each worker records it every ``telemetry.metrics.sample_interval_seconds`` (and
the worker answering a scrape records its own first): under several workers, a scrape of any one of them
shows every worker's, at most that old. Counters and histograms need no sampling: they are written as
things happen.
"""

from __future__ import annotations

import asyncio

import structlog

from gateway.audit.writer import AuditWriter
from gateway.execution.breaker import BreakerState
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.health_checks import HealthChecker
from gateway.metrics import (
    AUDIT_STORE_AVAILABLE,
    BREAKER_STATE,
    BULKHEAD_SLOTS,
    DEPARTMENT_READY,
    POOL_CONNECTIONS,
    POOL_MAX_CONNECTIONS,
    WORKERS,
)
from gateway.tasks import cancel_and_wait

log = structlog.get_logger("fedgate.metrics")


class MetricsSampler:
    """Records one worker's state in the gauges, now (:meth:`sample`) and on a timer (:meth:`start`)."""

    def __init__(
        self, sources: GuardedAdapters, checks: HealthChecker, audit: AuditWriter | None, interval: float
    ) -> None:
        self.sources = sources
        self.checks = checks
        self.audit = audit
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for health in self.checks.readiness():
            DEPARTMENT_READY.labels(health.department).set(1 if health.ok else 0)
            for state in BreakerState:
                BREAKER_STATE.labels(health.department, state.value).set(1 if state is health.breaker else 0)
        for name, adapter in self.sources.adapters.items():
            usage = adapter.pool_usage()
            if usage is not None:
                POOL_CONNECTIONS.labels(name, "in_use").set(usage.in_use)
                POOL_CONNECTIONS.labels(name, "idle").set(usage.idle)
                POOL_MAX_CONNECTIONS.labels(name).set(usage.max_size)
        if self.audit is not None:
            AUDIT_STORE_AVAILABLE.set(1 if self.audit.failure is None else 0)

    async def start(self) -> None:
        WORKERS.inc()
        for name, slots in self.sources.slots.items():
            BULKHEAD_SLOTS.labels(name).set(slots)
        self.sample()
        self._task = asyncio.create_task(self._run(), name="fedgate-metrics-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
            WORKERS.dec()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
            except Exception:  # a fault here must not stop the sampling, nor anything else
                log.exception("metrics_sample_failed")
