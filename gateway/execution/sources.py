"""The departments' adapters at run time: opened at start-up, each behind its own bulkhead and timeout.

A department that is down at start-up does not stop the gateway: its adapter connects lazily on the
next query, and until then its fields fail with ``SOURCE_UNAVAILABLE`` while the others answer.
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
from gateway.errors import SourceError, SourceTimeoutError
from schema.catalog import Catalog

log = structlog.get_logger("fedgate.sources")


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One department's readiness: reachable or not, how fast, and the error code if not."""

    department: str
    ok: bool
    latency_ms: float
    code: str | None = None


class Sources:
    """Every department's adapter, keyed by department name."""

    def __init__(self, catalog: Catalog, adapters: Mapping[str, SourceAdapter] | None = None) -> None:
        self.catalog = catalog
        self.adapters: dict[str, SourceAdapter] = dict(adapters or {})
        for department in catalog.departments:
            self.adapters.setdefault(department.name, create_adapter(department))
        self._bulkheads = {
            department.name: asyncio.Semaphore(department.source.concurrency) for department in catalog.departments
        }
        self._timeouts = {department.name: department.source.timeout_seconds for department in catalog.departments}

    def adapter(self, department: str) -> SourceAdapter:
        return self.adapters[department]

    def capabilities(self) -> dict[str, Capabilities]:
        return {name: adapter.capabilities for name, adapter in self.adapters.items()}

    def timeout(self, department: str) -> float:
        return self._timeouts[department]

    async def open_all(self) -> dict[str, SourceError | None]:
        """Open every adapter concurrently; failures are logged and returned, never raised."""

        async def open_one(name: str, adapter: SourceAdapter) -> SourceError | None:
            try:
                await adapter.open()
            except SourceError as error:
                log.warning("source_unavailable_at_startup", department=name, code=error.code)
                return error
            return None

        results = await asyncio.gather(*(open_one(name, adapter) for name, adapter in self.adapters.items()))
        return dict(zip(self.adapters, results, strict=True))

    async def close_all(self) -> None:
        await asyncio.gather(*(adapter.close() for adapter in self.adapters.values()), return_exceptions=True)

    async def fetch(
        self,
        department: str,
        prepared: PreparedQuery,
        values: Mapping[str, Any],
        deadline: float,
        context: FetchContext = NO_CONTEXT,
    ) -> list[Row]:
        """Run a prepared query within the department's timeout and the request's deadline."""
        timeout = min(self._timeouts[department], deadline - time.monotonic())
        if timeout <= 0:
            raise SourceTimeoutError(
                department, f"department '{department}' was not queried: the request ran out of time"
            )
        started = time.monotonic()
        bulkhead = self._bulkheads[department]
        try:
            async with asyncio.timeout(timeout):
                await bulkhead.acquire()
        except TimeoutError as exc:
            raise SourceTimeoutError(
                department, f"department '{department}' is saturated; no slot within {timeout:g} s"
            ) from exc
        try:
            remaining = timeout - (time.monotonic() - started)
            return await self.adapters[department].fetch(
                prepared, values, timeout=max(remaining, 0.001), context=context
            )
        finally:
            bulkhead.release()

    async def health(self) -> list[SourceHealth]:
        """Check every department concurrently."""

        async def check(name: str, adapter: SourceAdapter) -> SourceHealth:
            started = time.monotonic()
            try:
                await adapter.health()
            except SourceError as error:
                return SourceHealth(name, False, (time.monotonic() - started) * 1000, error.code)
            return SourceHealth(name, True, (time.monotonic() - started) * 1000)

        return list(await asyncio.gather(*(check(name, adapter) for name, adapter in self.adapters.items())))
