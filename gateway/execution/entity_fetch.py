"""Fetching the rows of an entity field's statements within a running plan.

Key sets larger than the root's ``chunk_size`` are split into chunks, run concurrently; the first
failure cancels the others and is raised as itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from adapters.base import Row
from gateway.errors import SourceError
from gateway.execution.scan_run import ScanRun
from gateway.planning.entity_plan import MemberScan
from gateway.planning.plan import ScanNode

T = TypeVar("T")


async def all_of(awaitables: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; the first failure cancels the others and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(awaitable) for awaitable in awaitables]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0]  # noqa: B904 - the failure itself, with its own cause
    return [task.result() for task in tasks]


class EntityFetcher:
    """Runs the statements of one entity field through ``run``, ``chunk_size`` keys at most per statement."""

    def __init__(self, run: ScanRun, chunk_size: int) -> None:
        self.run = run
        self.chunk_size = chunk_size

    async def chunked(self, node: ScanNode, keys: Iterable[Any]) -> list[Row]:
        """``node`` run for ``keys`` in chunks of at most ``chunk_size`` (concurrently), rows concatenated."""
        assert node.keys_parameter is not None
        ordered = sorted(key for key in keys if key is not None)
        if not ordered:
            return []
        size = max(self.chunk_size, 1)
        chunks = [ordered[start : start + size] for start in range(0, len(ordered), size)]
        results = await all_of([self.run.fetch(node, {node.keys_parameter: chunk}) for chunk in chunks])
        return [row for rows in results for row in rows]

    async def member_rows(self, scan: MemberScan, keys: Sequence[Any]) -> list[Row] | SourceError:
        """A member's records for ``keys`` (per-parent paged), or the error that stopped them."""
        try:
            rows = await self.chunked(scan.node, keys)
        except SourceError as error:
            return error
        return self.run.residual_page(scan.node, rows)
