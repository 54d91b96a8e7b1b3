"""Table row counts from the departments' sources, for ordering cross-department semi-joins.

Gathered when the gateway starts, concurrently, for at most :data:`LIMIT_SECONDS` per source, so a slow
department cannot hold start-up back; a source that cannot say in time (down, slow, or a REST API) is
planned from the catalog's ``estimated_rows`` or a default. Counts only
decide which condition runs first; answers never depend on them.
"""

from __future__ import annotations

import asyncio

import structlog

from adapters.base import SourceAdapter
from gateway.planning.estimates import Statistics

log = structlog.get_logger("fedgate.statistics")

#: Longest wait for one source's counts at start-up.
LIMIT_SECONDS = 2.0


async def gather_statistics(adapters: dict[str, SourceAdapter]) -> Statistics:
    """``(department, table) → rows`` for every table whose source reports a count."""

    async def one(name: str, adapter: SourceAdapter) -> dict[tuple[str, str], int]:
        try:
            async with asyncio.timeout(LIMIT_SECONDS):
                counts = await adapter.table_rows()
        except Exception as exc:  # a hint only: never let it stop the gateway
            log.warning("statistics_unavailable", department=name, error=type(exc).__name__)
            return {}
        return {(name, table): rows for table, rows in counts.items()}

    results = await asyncio.gather(*(one(name, adapter) for name, adapter in adapters.items()))
    return {key: rows for result in results for key, rows in result.items()}
