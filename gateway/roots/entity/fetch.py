"""Fetching the rows of an entity field's statements within a running plan.

Key sets larger than the root's ``chunk_size`` are split into chunks, run concurrently; the first
failure cancels the others and is raised as itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from adapters.base import Row
from gateway.errors import SourceError
from gateway.plan.nodes import ScanNode
from gateway.plan.run import Run, concurrently
from gateway.roots.entity.plan import MemberScan


class EntityFetcher:
    """Runs the statements of one entity field through ``run``, ``chunk_size`` keys at most per statement."""

    def __init__(self, run: Run, chunk_size: int) -> None:
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
        results = await concurrently([self.run.fetch(node, {node.keys_parameter: chunk}) for chunk in chunks])
        return [row for rows in results for row in rows]

    async def member_rows(self, scan: MemberScan, keys: Sequence[Any]) -> list[Row] | SourceError:
        """A member's records for ``keys`` (per-parent paged), or the error that stopped them."""
        try:
            rows = await self.chunked(scan.node, keys)
        except SourceError as error:
            return error
        return self.run.residual_page(scan.node, rows)
